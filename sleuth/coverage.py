"""`sleuth sources`: what the given logs cover, where they are silent, and who tampered with logging."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from importlib import resources

import polars as pl

from sleuth.config import Config
from sleuth.dataset import Dataset, input_warnings
from sleuth.ingest import totals
from sleuth.reader import InputReport


@dataclass
class Gap:
    account: str
    start: datetime  # first silent hour
    end: datetime  # the hour after the last silent hour
    hours: int


@dataclass
class Coverage:
    totals: dict
    cells: pl.DataFrame  # account x region x day: events, errors, first, last
    gaps: list[Gap]
    tampering: pl.DataFrame  # logging-tampering events with who and when
    skipped_inputs: list[InputReport]
    warnings: list[str]
    digests: int
    pruned: int
    ignored: list[str] = field(default_factory=list)
    flows: pl.DataFrame = field(default_factory=pl.DataFrame)  # account x interface x day
    findings: pl.DataFrame = field(default_factory=pl.DataFrame)  # producer x type x severity label


@cache
def tampering_actions() -> pl.DataFrame:
    """The logging and monitoring tampering calls, from sleuth/data/tampering.csv."""
    with resources.files("sleuth.data").joinpath("tampering.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        if not (row.get("service") and row.get("action") and row.get("what") and row.get("restore")):
            raise ValueError(f"sleuth/data/tampering.csv: incomplete row {row}")
    schema = {"service": pl.String, "action": pl.String, "what": pl.String, "restore": pl.String}
    return pl.DataFrame(rows, schema=schema)


def coverage(dataset: Dataset, config: Config) -> Coverage:
    events = dataset.events
    cells = (
        events.group_by("account", "region", pl.col("time").dt.date().alias("day"))
        .agg(
            pl.len().alias("events"),
            pl.col("error_code").is_not_null().sum().alias("errors"),
            pl.col("time").min().alias("first"),
            pl.col("time").max().alias("last"),
        )
        .sort("account", "region", "day", nulls_last=True)
        .collect()
    )
    tampering = (
        events.join(tampering_actions().lazy(), on=["service", "action"], how="inner")
        .select(
            "time", "account", "region", "action", "what", "principal", "src_ip", "user_agent", "error_code", "event_id"
        )
        .sort("time")
        .collect()
    )
    return Coverage(
        totals=totals(dataset.inputs, len(dataset.sources.digests)),
        cells=cells,
        gaps=find_gaps(events, config.gap_min_hours),
        tampering=tampering,
        skipped_inputs=[r for r in dataset.inputs if r.error],
        warnings=input_warnings(dataset.inputs),
        digests=len(dataset.sources.digests),
        pruned=dataset.sources.pruned,
        ignored=dataset.sources.ignored,
        flows=flow_coverage(dataset),
        findings=finding_coverage(dataset),
    )


def flow_coverage(dataset: Dataset) -> pl.DataFrame:
    """Flow records and bytes per account, interface and day, with the NODATA/SKIPDATA facts beside them."""
    keys = ["account", "interface_id", pl.col("start").dt.date().alias("day")]
    flows = (
        dataset.frames["flows"]
        .group_by(keys)
        .agg(
            pl.len().alias("flows"),
            pl.col("bytes").sum().alias("bytes"),
            (pl.col("action") == "REJECT").sum().alias("rejected"),
        )
    )
    status = (
        dataset.frames["flow_status"]
        .group_by(keys)
        .agg(
            (pl.col("log_status") == "NODATA").sum().alias("nodata"),
            (pl.col("log_status") == "SKIPDATA").sum().alias("skipdata"),
        )
    )
    joined = flows.join(status, on=["account", "interface_id", "day"], how="full", coalesce=True)
    return (
        joined.with_columns(pl.col("flows", "bytes", "rejected", "nodata", "skipdata").fill_null(0))
        .sort("account", "interface_id", "day", nulls_last=True)
        .collect()
    )


def finding_coverage(dataset: Dataset) -> pl.DataFrame:
    return (
        dataset.frames["findings"]
        .group_by("producer", "type", "severity_label")
        .agg(pl.len().alias("findings"), pl.col("severity").max().alias("max_severity"))
        .sort(["max_severity", "findings", "type"], descending=[True, True, False])
        .collect()
    )


def find_gaps(events: pl.LazyFrame, min_hours: int) -> list[Gap]:
    """Runs of at least `min_hours` hours without any event, between an account's first and last event."""
    hours = (
        events.select("account", pl.col("time").dt.truncate("1h").alias("hour"))
        .unique()
        .sort("account", "hour")
        .with_columns(pl.col("hour").shift(-1).over("account").alias("next"))
        .filter(pl.col("next").is_not_null())
        .with_columns(((pl.col("next") - pl.col("hour")).dt.total_hours() - 1).alias("silent"))
        .filter(pl.col("silent") >= min_hours)
        .collect()
    )
    return [
        Gap(account, hour + timedelta(hours=1), next_hour, int(silent))
        for account, hour, next_hour, silent in hours.select("account", "hour", "next", "silent").iter_rows()
    ]
