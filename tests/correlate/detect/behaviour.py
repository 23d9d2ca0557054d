"""Helpers for the tests of the behavioural detections: contexts from hand-built rows, fake geolocation
and threat-intel objects with the interfaces of sleuth.enrich, and real data loaded once per file."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import polars as pl

from sleuth import schema
from sleuth.config import Config
from sleuth.correlate.detect.base import HITS, Context
from sleuth.dataset import open_dataset
from sleuth.timewindow import TimeWindow
from tests.correlate.frames import ACCOUNT, T0, at, event, events_frame, flow

__all__ = [
    "ACCOUNT",
    "T0",
    "FakeGeo",
    "FakeIntel",
    "at",
    "context",
    "event",
    "events_frame",
    "flow",
    "real",
    "roles",
    "single",
]


def context(events=(), flows=(), *, geo=None, intel=None, **config) -> Context:
    """A Context over hand-built rows (dicts of canonical columns; absent columns are null)."""
    events_df = events_frame(list(events)) if events else schema.empty("events")
    flows_df = (
        schema.conform(pl.DataFrame(list(flows), infer_schema_length=None), "flows") if flows else schema.empty("flows")
    )
    return Context(events_df, flows_df, Config(**config), geo, intel)


def single(hits: pl.DataFrame) -> dict:
    """The one hit of `hits` (checked against the contract's schema), as a dict."""
    assert dict(hits.schema) == HITS
    assert len(hits) == 1, hits.select("key_id", "title", "severity").rows()
    return hits.row(0, named=True)


def roles(hit: dict) -> set[tuple[str, str, str]]:
    return {(e["entity_type"], e["entity_id"], e["role"]) for e in hit["entities"]}


class FakeGeo:
    """GeoResolver's `frame` over a fixed table: ip -> (kind, country_code, aso, latitude, longitude)."""

    def __init__(self, table: dict[str, tuple]):
        self.table = table

    def frame(self, ips) -> pl.DataFrame:
        rows = []
        for ip in dict.fromkeys(ips):
            kind, cc, aso, lat, lon = self.table.get(ip, ("public", None, None, None, None))
            rows.append({"ip": ip, "ip_kind": kind, "country_code": cc, "country": cc, "asn": None, "aso": aso,
                         "city": None, "latitude": lat, "longitude": lon, "location": cc})  # fmt: skip
        schema_ = {"ip": pl.String, "ip_kind": pl.String, "country_code": pl.String, "country": pl.String,
                   "asn": pl.Int64, "aso": pl.String, "city": pl.String, "latitude": pl.Float64,
                   "longitude": pl.Float64, "location": pl.String}  # fmt: skip
        return pl.DataFrame(rows, schema=schema_)


class FakeIntel:
    """IntelList's `match`, `frame` and `len` over a fixed set of addresses."""

    def __init__(self, listed: dict[str, str]):
        self.listed = listed

    def __len__(self) -> int:
        return len(self.listed)

    def match(self, ip):
        from sleuth.netaddr import parse_ip

        address = parse_ip(ip) if isinstance(ip, str) else None
        return self.listed.get(str(address)) if address else None

    def frame(self, ips) -> pl.DataFrame:
        rows = [(ip, self.match(ip), "test-list.txt") for ip in dict.fromkeys(ips) if self.match(ip)]
        return pl.DataFrame(rows, schema={"ip": pl.String, "intel_reason": pl.String, "intel_source": pl.String},
                            orient="row")  # fmt: skip


@cache
def _load(path: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    dataset = open_dataset([path], TimeWindow(), Config())
    return dataset.events.collect(), dataset.frames["flows"].collect()


def real(path: Path, *, geo=None, intel=None) -> Context:
    """A Context over real data (loaded once per path)."""
    events, flows = _load(str(path))
    return Context(events, flows, Config(), geo, intel)
