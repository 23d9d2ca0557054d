"""The summary view (Detective's summary page): the scope window of a case at a glance."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from sleuth.config import Config
from sleuth.correlate import activity as act
from sleuth.correlate.baseline import Scope, bucket_every, last_record, resolve_scope
from sleuth.correlate.entities import failed, instance_launches, instance_of_session, normalized_ip, principal_type
from sleuth.correlate.flows import interface_ends, orient
from sleuth.dataset import Dataset
from sleuth.severity import ORDER

TOP = 10


@dataclass
class Summary:
    scope: Scope
    totals: dict  # events, failures, principals, instances, flows, findings in the scope
    busiest: pl.DataFrame  # principals and instances with the most calls: type, id, calls, success, failure, timeline
    failing: pl.DataFrame  # principals with the most failed calls
    flow_volume: pl.DataFrame  # instances (or interfaces) with the most flow bytes: id, bytes_in, bytes_out
    new_geolocations: pl.DataFrame  # location, addresses, principals, first_seen, calls
    findings: pl.DataFrame  # severity_label, count, highest (title of the most severe)


def build_summary(
    dataset: Dataset,
    config: Config,
    geo=None,
    scope: tuple[datetime, datetime] | None = None,
    baseline_days: int | None = None,
    intel=None,
    detect: bool = True,
) -> Summary:
    """Detective's summary page over the scope (default: the last `scope_hours` of the data); its
    findings are GuardDuty's and sleuth's own (unless `detect` is False)."""
    act.warm_geo(geo, dataset, config)
    if detect:
        from sleuth.correlate.detect import with_detections

        dataset = with_detections(dataset, config, geo, intel)
    window = resolve_scope(last_record(dataset), config, scope, baseline_days)
    scoped = dataset.events.filter(window.in_scope())
    actors = _actors(scoped, window)
    return Summary(
        scope=window,
        totals=_totals(dataset, scoped, window),
        busiest=actors.sort(["calls", "id"], descending=[True, False]).head(TOP),
        failing=actors.filter(pl.col("failure") > 0).sort(["failure", "id"], descending=[True, False]).head(TOP),
        flow_volume=_flow_volume(dataset, window),
        new_geolocations=_new_geolocations(dataset, window, geo),
        findings=_findings(dataset, window),
    )


def _actors(scoped: pl.LazyFrame, scope: Scope) -> pl.DataFrame:
    """Calls per principal, role session and instance, with an hourly (or daily) sparkline."""
    every = bucket_every(scope)
    slots = max(1, math.ceil(scope.hours if every == "1h" else scope.hours / 24))  # the end is exclusive
    base = scoped.select(
        "time",
        failed().alias("failed"),
        principal_type().alias("principal_type"),
        "principal",
        "session",
        instance_of_session().alias("instance"),
    )
    kinds = [
        base.select("time", "failed", pl.col("principal_type").alias("type"), pl.col("principal").alias("id")),
        base.select("time", "failed", pl.lit("AwsRoleSession").alias("type"), pl.col("session").alias("id")),
        base.select("time", "failed", pl.lit("Ec2Instance").alias("type"), pl.col("instance").alias("id")),
    ]
    slot = ((pl.col("time") - pl.lit(scope.start)).dt.total_seconds() // (3600 if every == "1h" else 86400)).cast(
        pl.Int64
    )
    counted = (
        pl.concat(kinds)
        .filter(pl.col("id").is_not_null() & pl.col("type").is_not_null())
        .with_columns(slot.alias("slot"))
        .group_by("type", "id")
        .agg(
            (~pl.col("failed")).sum().alias("success"),
            pl.col("failed").sum().alias("failure"),
            pl.col("slot").value_counts().alias("slots"),
        )
        .with_columns((pl.col("success") + pl.col("failure")).alias("calls"))
        .collect()
    )
    timelines = [_timeline(row, slots) for row in counted["slots"].to_list()]
    return counted.drop("slots").with_columns(pl.Series("timeline", timelines, pl.String))


def _timeline(slot_counts: list[dict], slots: int) -> str:
    values = [0] * slots
    for item in slot_counts:
        index = item["slot"]
        if index is not None and 0 <= index < slots:
            values[index] = item["count"]
    return act.sparkline(values)


def _totals(dataset: Dataset, scoped: pl.LazyFrame, scope: Scope) -> dict:
    counts = scoped.select(
        pl.len().alias("events"),
        failed().sum().alias("failures"),
        pl.col("principal").drop_nulls().n_unique().alias("principals"),
        normalized_ip().drop_nulls().n_unique().alias("addresses"),
    ).collect()
    flows = dataset.frames["flows"].filter(scope.in_scope("start")).select(pl.len()).collect().item()
    findings = _scoped_findings(dataset, scope).select(pl.len()).collect().item()
    return {**counts.to_dicts()[0], "flows": flows, "findings": findings}


_ORIENTED = ["instance_id", "interface_id", "src_addr", "dst_addr", "src_port", "dst_port", "flow_direction"]


def _flow_volume(dataset: Dataset, scope: Scope) -> pl.DataFrame:
    """Bytes in and out per instance: named by the flows, or the one launched with the interface (its
    RunInstances response), else the interface."""
    flows = (
        dataset.frames["flows"]
        .filter(scope.in_scope("start") & (pl.col("action") == "ACCEPT"))
        .select(*_ORIENTED, "bytes")
        .collect()
    )
    out = pl.col("_outbound")  # from the interface's side (flows.orient): its own address sent it
    # Each interface's own address from all its flows in the scope, rejected ones too.
    ends = interface_ends(
        dataset.frames["flows"], flows["interface_id"].drop_nulls().unique().to_list(), scope.in_scope("start")
    )
    per_interface = (
        orient(flows, ends)
        .select(
            "instance_id",
            "interface_id",
            pl.when(out).then(0).otherwise("bytes").alias("bytes_in"),
            pl.when(out).then("bytes").otherwise(0).alias("bytes_out"),
        )
        .group_by("instance_id", "interface_id")
        .agg(pl.col("bytes_in").sum(), pl.col("bytes_out").sum(), pl.len().alias("flows"))
    )
    if per_interface["instance_id"].null_count():  # flows that name only an interface: which instance?
        launched = (
            instance_launches(dataset.events)
            .select("interface_id", pl.col("instance_id").alias("launched"))
            .drop_nulls()
            .unique("interface_id", keep="first")
        )
        per_interface = per_interface.join(launched, on="interface_id", how="left")
    else:
        per_interface = per_interface.with_columns(pl.lit(None, pl.String).alias("launched"))
    return (
        per_interface.with_columns(pl.coalesce("instance_id", "launched", "interface_id").alias("id"))
        .filter(pl.col("id").is_not_null())
        .group_by("id")
        .agg(
            pl.col("interface_id").drop_nulls().unique().sort().alias("interfaces"),
            pl.col("bytes_in").sum(),
            pl.col("bytes_out").sum(),
            pl.col("flows").sum(),
        )
        .with_columns((pl.col("bytes_in") + pl.col("bytes_out")).alias("bytes"))
        .sort(["bytes", "id"], descending=[True, False])
        .head(TOP)
    )


def _new_geolocations(dataset: Dataset, scope: Scope, geo) -> pl.DataFrame:
    """Locations the account's callers came from in the scope and never in the baseline."""
    schema = {
        "location": pl.String,
        "addresses": pl.List(pl.String),
        "principals": pl.List(pl.String),
        "first_seen": pl.Datetime("us", "UTC"),
        "calls": pl.UInt32,
    }
    if geo is None:
        return pl.DataFrame(schema=schema)
    windowed = dataset.events.filter((pl.col("time") >= scope.baseline_start) & (pl.col("time") < scope.end))
    per_raw = (  # the distinct raw addresses first: normalizing them is then cheap
        windowed.select("src_ip", "time", "principal")
        .filter(pl.col("src_ip").is_not_null())
        .with_columns(scope.in_scope().alias("in_scope"))
        .group_by("src_ip", "in_scope")
        .agg(pl.len().alias("calls"), pl.col("time").min().alias("first_seen"), pl.col("principal").unique())
        .collect()
    )
    per_ip = (
        per_raw.with_columns(normalized_ip().alias("ip"))
        .filter(pl.col("ip").is_not_null())
        .group_by("ip", "in_scope")
        .agg(pl.col("calls").sum(), pl.col("first_seen").min(), _principals().unique())
    )
    located = act.with_geo(per_ip, geo).filter(pl.col("location").is_not_null())
    known = located.filter(~pl.col("in_scope"))["location"].unique().implode()
    new = located.filter(pl.col("in_scope") & ~pl.col("location").is_in(known))
    return (
        new.group_by("location")
        .agg(
            pl.col("ip").unique().sort().alias("addresses"),
            _principals().drop_nulls().unique().sort().alias("principals"),
            pl.col("first_seen").min(),
            pl.col("calls").sum().cast(pl.UInt32),  # each address's calls once, however many principals
        )
        .sort("first_seen", "location")
        .cast(schema)
    )


def _principals() -> pl.Expr:
    """The principal lists of a group's rows, as one list."""
    return pl.col("principal").list.explode(keep_nulls=False, empty_as_null=False)


def _scoped_findings(dataset: Dataset, scope: Scope) -> pl.LazyFrame:
    """Findings active in the scope: last seen at or after its start, first seen before its end."""
    return dataset.frames["findings"].filter(
        (pl.col("last_seen").fill_null(pl.col("first_seen")) >= scope.start) & (pl.col("first_seen") < scope.end)
    )


def _findings(dataset: Dataset, scope: Scope) -> pl.DataFrame:
    found = (
        _scoped_findings(dataset, scope)
        .sort("severity", descending=True)
        .group_by("severity_label", maintain_order=True)
        .agg(pl.len().alias("count"), pl.col("title").first().alias("most_severe"))
        .collect()
    )
    rank = {label: i for i, label in enumerate(reversed(ORDER))}
    return found.sort(pl.col("severity_label").replace_strict(rank, default=len(rank)))
