#!/usr/bin/env python3
"""Precision and speed of sleuth's detections on the benign benchmark corpus.

    python bench/gen_cloudtrail.py --out /tmp/ctbench --records 1000000 --seed 1
    sleuth ingest -s /tmp/ctbench -o /tmp/ctcase -q
    python bench/detect_fp.py --case /tmp/ctcase [--repeat 3] [--out bench/results-detect.json]

The corpus plants no attack, so every finding is a false positive (or something the generator
does that a responder would rightly look at: the report lists the findings of Medium and above so
they can be judged). Reports findings per million events by severity band, per detection, and the
time to run every registered detection over the events (median of --repeat runs; loading the case
is timed apart).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sleuth import __version__
from sleuth.config import Config
from sleuth.correlate.detect import findings_from_hits, registry, run_detections
from sleuth.correlate.detect.base import Context
from sleuth.dataset import open_dataset
from sleuth.severity import ORDER
from sleuth.timewindow import TimeWindow

TARGET_MEDIUM_PER_MILLION = 5
TARGET_SECONDS_PER_MILLION = 10


def _enrichment():
    """The offline geolocation (shipped data, as `sleuth findings` uses it) and an empty intel list."""
    try:
        from sleuth.enrich.geo import GeoResolver
        from sleuth.enrich.intel import IntelList
    except ImportError:  # an older tree without sleuth.enrich
        return None, None
    return GeoResolver(), IntelList.load(())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", required=True, help="a case store (sleuth ingest -o) of the benign corpus")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results-detect.json"))
    args = parser.parse_args()
    config = Config()

    started = time.perf_counter()
    dataset = open_dataset([args.case], TimeWindow(), config)
    events = dataset.frames["events"].collect()
    flows = dataset.frames["flows"].collect()
    load_seconds = time.perf_counter() - started
    geo, intel = _enrichment()
    context = Context(events=events, flows=flows, config=config, geo=geo, intel=intel)

    runs, per_detection = [], {}
    findings = entities = None
    for _ in range(args.repeat):
        started = time.perf_counter()
        hits, stats = run_detections(context)
        findings, entities = findings_from_hits(hits, config)
        runs.append(time.perf_counter() - started)
        for stat in stats:
            per_detection.setdefault(stat.id, []).append(stat.seconds)
            if stat.error:
                sys.exit(f"detection {stat.id} failed: {stat.error}")
    assert findings is not None and entities is not None

    million = len(events) / 1_000_000
    bands = {band: int((findings["severity_label"] == band).sum()) for band in ORDER}
    medium_or_above = sum(bands[band] for band in ORDER[ORDER.index("Medium") :])
    by_type = (
        findings.group_by("type", "severity_label")
        .agg(pl.len().alias("findings"))
        .sort("findings", "type", descending=[True, False])
    )
    serious = findings.filter(pl.col("severity") >= 4.0).sort("severity", "first_seen", descending=[True, False])
    median = statistics.median(runs)
    result = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "sleuth": __version__,
        "polars": pl.__version__,
        "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores",
        "case": args.case,
        "events": len(events),
        "flows": len(flows),
        "detections": sorted(registry().modules),
        "load_seconds": round(load_seconds, 3),
        "detect_seconds": [round(r, 3) for r in runs],
        "detect_seconds_median": round(median, 3),
        "detect_seconds_per_million_events": round(median / million, 3) if million else None,
        "per_detection_seconds_median": {k: round(statistics.median(v), 3) for k, v in sorted(per_detection.items())},
        "findings": len(findings),
        "findings_by_band": bands,
        "findings_per_million_by_band": {band: round(n / million, 2) for band, n in bands.items()} if million else {},
        "medium_or_above_per_million": round(medium_or_above / million, 2) if million else None,
        "findings_by_type": by_type.to_dicts(),
        "medium_or_above": [
            {"type": r["type"], "severity": r["severity"], "title": r["title"], "first_seen": str(r["first_seen"])}
            for r in serious.head(50).iter_rows(named=True)
        ],
        "targets": {
            "medium_or_above_per_million": f"< {TARGET_MEDIUM_PER_MILLION}",
            "seconds_per_million_events": f"< {TARGET_SECONDS_PER_MILLION}",
        },
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"{len(events):,} events, {len(flows):,} flows; load {load_seconds:.2f} s; detections median {median:.2f} s "
          f"(runs {', '.join(f'{r:.2f}' for r in runs)})")  # fmt: skip
    bands_text = ", ".join(f"{b} {v}" for b, v in result["findings_per_million_by_band"].items())
    print(f"findings per million events: {bands_text}")
    print(f"Medium or above per million: {result['medium_or_above_per_million']} "
          f"(target < {TARGET_MEDIUM_PER_MILLION})")  # fmt: skip
    for row in by_type.iter_rows(named=True):
        print(f"  {row['findings']:6}  {row['severity_label']:13} {row['type']}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
