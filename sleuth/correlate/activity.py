"""Shared aggregations of activity: call volume over time, calls by API, addresses with their geo data."""

from __future__ import annotations

import threading
from datetime import datetime

import polars as pl

from sleuth.correlate.baseline import Scope, api_name, bucket_every
from sleuth.correlate.entities import failed, normalized_ip

GEO_COLUMNS = ("ip_kind", "country_code", "country", "asn", "aso", "city", "latitude", "longitude", "location")


def warm_geo(geo, dataset=None, config=None) -> None:
    """Ready the resolver: with a case store, its addresses' cached geo data (sleuth.derived.preload_geo);
    else load the resolver's data in a background thread (~0.2 s of Python that would otherwise wait
    for the first lookup), while polars, which releases the GIL, reads the data."""
    if geo is None:
        return
    if dataset is not None:
        from sleuth.derived import preload_geo

        if preload_geo(dataset, config, geo):
            return
    threading.Thread(target=geo.lookup, args=("1.1.1.1",), daemon=True).start()


def with_geo(frame: pl.DataFrame, geo, ip_column: str = "ip") -> pl.DataFrame:
    """`frame` with the geo columns of its `ip_column` (nulls when no resolver is given)."""
    if geo is None or frame.is_empty():
        return frame.with_columns([pl.lit(None, pl.String).alias(name) for name in GEO_COLUMNS if name not in frame])
    table = geo.frame(frame[ip_column].drop_nulls().unique().to_list())
    table = table.select("ip", *GEO_COLUMNS).rename({"ip": ip_column})
    return frame.join(table, on=ip_column, how="left")


def calls(events: pl.DataFrame) -> pl.DataFrame:
    """Events reduced to what profiles count: time, api, failed, ip, user agent."""
    return events.select(
        "time",
        api_name().alias("api"),
        failed().alias("failed"),
        normalized_ip().alias("ip"),
        pl.col("src_ip"),
        pl.col("user_agent"),
        pl.col("principal"),
        pl.col("session"),
        pl.col("access_key"),
        pl.col("event_id"),
    )


def volume(activity: pl.DataFrame, scope: Scope, first_seen: datetime | None = None) -> pl.DataFrame:
    """Successes and failures per bucket of the scope, with the baseline's mean per bucket.

    Columns: bucket (start time), success, failure, baseline (mean calls per bucket of that size, over
    the part of the baseline after `first_seen`, the entity's first activity: a user created two days
    before the scope averages over two days, not 45)."""
    every = bucket_every(scope)
    inside = activity.filter(scope.in_scope())
    first = scope.start.replace(minute=0, second=0, microsecond=0)
    grid = pl.datetime_range(first, scope.end, every, closed="left", eager=True)  # the end is exclusive
    buckets = pl.DataFrame({"bucket": grid.dt.truncate(every)}).unique().sort("bucket")
    counted = (
        inside.with_columns(pl.col("time").dt.truncate(every).alias("bucket"))
        .group_by("bucket")
        .agg((~pl.col("failed")).sum().alias("success"), pl.col("failed").sum().alias("failure"))
    )
    baseline_calls = activity.filter(scope.in_baseline()).height
    bucket_hours = 1 if every == "1h" else 24
    baseline_from = max(scope.baseline_start, first_seen) if first_seen else scope.baseline_start
    baseline_hours = max((scope.start - baseline_from).total_seconds() / 3600, 1)
    mean = baseline_calls / baseline_hours * bucket_hours
    return (
        buckets.join(counted, on="bucket", how="left")
        .with_columns(
            pl.col("success").fill_null(0).cast(pl.UInt32),
            pl.col("failure").fill_null(0).cast(pl.UInt32),
            pl.lit(round(mean, 2)).alias("baseline"),
        )
        .sort("bucket")
    )


def by_api(activity: pl.DataFrame) -> pl.DataFrame:
    """Calls per API with successes, failures, first and last time, busiest first."""
    return (
        activity.group_by("api")
        .agg(
            (~pl.col("failed")).sum().alias("success"),
            pl.col("failed").sum().alias("failure"),
            pl.col("time").min().alias("first_seen"),
            pl.col("time").max().alias("last_seen"),
        )
        .with_columns((pl.col("success") + pl.col("failure")).alias("calls"))
        .sort(["calls", "api"], descending=[True, False])
    )


def by_value(activity: pl.DataFrame, column: str) -> pl.DataFrame:
    """Calls per value of `column` (an address, a user agent ...) with successes and failures."""
    return (
        activity.filter(pl.col(column).is_not_null())
        .group_by(column)
        .agg(
            pl.len().alias("calls"),
            pl.col("failed").sum().alias("failure"),
            pl.col("time").min().alias("first_seen"),
            pl.col("time").max().alias("last_seen"),
        )
        .sort(["calls", column], descending=[True, False])
    )


def sparkline(values: list[int | float]) -> str:
    """Counts as a row of unicode bars, scaled to the largest (blank for zero)."""
    bars = " ▁▂▃▄▅▆▇█"
    top = max(values, default=0)
    if top <= 0:
        return " " * len(values)
    return "".join(bars[0] if v <= 0 else bars[max(1, round(v / top * 8))] for v in values)
