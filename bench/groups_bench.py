#!/usr/bin/env python3
"""Time finding groups: 10,000 findings over the 1M-event benchmark case.

    python bench/gen_cloudtrail.py --out /tmp/ctbench --records 1000000 --seed 1
    sleuth ingest -s /tmp/ctbench -o /tmp/ctcase -q
    python bench/groups_bench.py --case /tmp/ctcase [--findings 10000] [--repeat 3] [--out bench/results-groups.json]

The benign corpus yields few findings, so the findings are made from sampled events of the case
(each names the event's principal, key, session and address, as a detection's finding does), and
grouped with what `find_groups` computes over the whole case: the hubs of the events and the
credential lineage. The time covers those two passes over the 1M events plus the grouping itself.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sleuth import schema
from sleuth.config import Config
from sleuth.correlate.graph import hub_keys
from sleuth.correlate.groups import group_findings
from sleuth.correlate.lineage import credential_links
from sleuth.dataset import open_dataset
from sleuth.timewindow import TimeWindow


def synthetic_findings(events: pl.DataFrame, count: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    sample = events.sample(n=min(count, len(events)), seed=seed, shuffle=True).with_row_index("n")
    findings = sample.select(
        pl.concat_str(pl.lit("bench-"), pl.col("n").cast(pl.String)).alias("finding_id"),
        pl.lit("sleuth").alias("producer"),
        pl.lit("sleuth:Discovery/bench").alias("type"),
        pl.col("action").alias("title"),
        (pl.col("n") % 10).cast(pl.Float64).alias("severity"),
        pl.col("account"),
        pl.col("region"),
        pl.col("time").alias("first_seen"),
        pl.col("time").alias("last_seen"),
        pl.lit(["Discovery"]).alias("tactics"),
    )
    entity_columns = {
        "AwsUser": "principal",
        "AccessKey": "access_key",
        "AwsRoleSession": "session",
        "IpAddress": "src_ip",
    }
    parts = [
        sample.select(
            pl.concat_str(pl.lit("bench-"), pl.col("n").cast(pl.String)).alias("finding_id"),
            pl.lit(kind).alias("entity_type"),
            pl.col(column).alias("entity_id"),
            pl.lit("actor").alias("role"),
        ).filter(pl.col("entity_id").is_not_null())
        for kind, column in entity_columns.items()
    ]
    return schema.conform(findings, "findings"), schema.conform(pl.concat(parts), "finding_entities")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", type=Path, required=True)
    parser.add_argument("--findings", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    config = Config()
    dataset = open_dataset([str(args.case)], TimeWindow(), config)
    events = dataset.events.select(
        "time", "account", "region", "action", "principal", "access_key", "session", "src_ip"
    ).collect()
    findings, entities = synthetic_findings(events, args.findings, seed=1)
    times, groups = [], []
    for _ in range(args.repeat):
        start = time.perf_counter()
        hubs = hub_keys(dataset.events, config)
        links = credential_links(dataset.events)
        groups = group_findings(findings, entities, config, links, hubs)
        times.append(time.perf_counter() - start)
    result = {
        "date": datetime.date.today().isoformat(),
        "machine": platform.machine(),
        "cpus": __import__("os").cpu_count(),
        "events": len(events),
        "findings": len(findings),
        "groups": len(groups),
        "largest_group": max((len(g.finding_ids) for g in groups), default=0),
        "seconds": [round(t, 3) for t in times],
        "median_seconds": round(statistics.median(times), 3),
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
