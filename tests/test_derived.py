"""Derived tables cached beside a case: reused while the case is unchanged, recomputed after."""

from __future__ import annotations

import polars as pl
import pytest

from sleuth.config import Config
from sleuth.correlate import detect
from sleuth.correlate.detect import cached_detect
from sleuth.dataset import open_dataset
from sleuth.timewindow import TimeWindow
from tests.conftest import INCIDENT, ROOT, run_cli


@pytest.fixture
def case(tmp_path):
    path = tmp_path / "case"
    run_cli(["ingest", "-q", "-s", INCIDENT, "-o", path])
    return path


def findings_of(case):
    return cached_detect(open_dataset([str(case)], TimeWindow(), Config()), Config()).findings


def test_detections_are_cached_and_reused(case, monkeypatch):
    first = findings_of(case)
    assert len(first) and list((case / "derived" / "detections").glob("*.findings.parquet"))

    def fail(*args, **kwargs):
        raise AssertionError("the cached detections should have been read")

    monkeypatch.setattr(detect, "detect", fail)
    assert findings_of(case).equals(first)


def test_a_changed_case_or_tunable_recomputes(case, monkeypatch):
    findings_of(case)
    calls = []
    real = detect.detect
    monkeypatch.setattr(detect, "detect", lambda *a, **k: calls.append(1) or real(*a, **k))
    run_cli(["ingest", "-q", "-s", ROOT / "fixtures" / "guardduty", "-o", case])
    findings_of(case)
    assert calls == [1]
    cached_detect(open_dataset([str(case)], TimeWindow(), Config()), Config(brute_force_failures=5))
    assert calls == [1, 1]
    assert len(list((case / "derived" / "detections").glob("*.findings.parquet"))) == 1  # the old key is gone


def test_raw_sources_are_not_cached(tmp_path):
    dataset = open_dataset([str(INCIDENT)], TimeWindow(), Config())
    assert isinstance(cached_detect(dataset, Config()).findings, pl.DataFrame)
    assert not list(INCIDENT.rglob("derived"))


def test_ingest_prepare_builds_the_derived_tables(tmp_path, monkeypatch):
    case = tmp_path / "prepared"
    run_cli(["ingest", "-q", "-s", INCIDENT, "-o", case, "--prepare"])
    assert {path.name for path in (case / "derived").iterdir()} == {"detections", "lineage", "hubs", "geo"}

    def fail(*args, **kwargs):
        raise AssertionError("the prepared detections should have been read")

    monkeypatch.setattr(detect, "detect", fail)
    run_cli(["investigate", "-q", "-s", case, "alice", "-f", "json"])


def test_a_case_keeps_its_addresses_geo_data(tmp_path, monkeypatch):
    """The first profile looks the case's addresses up once; later ones read them back, unchanged."""
    from sleuth.derived import preload_geo
    from sleuth.enrich import geo as geo_module
    from sleuth.enrich.geo import GeoResolver
    from tests.conftest import shared

    case = tmp_path / "panther"
    run_cli(["ingest", "-q", "-s", shared("panther-samples/compromised-root-creds"), "-o", case])
    dataset = open_dataset([str(case)], TimeWindow(), Config())
    first = GeoResolver()
    assert preload_geo(dataset, Config(), first)
    assert list((case / "derived" / "geo").glob("*.addresses.parquet"))

    def fail():
        raise AssertionError("a cached address was looked up again")

    monkeypatch.setattr(geo_module, "geoip2fast_reader", fail)
    again = GeoResolver()
    assert preload_geo(dataset, Config(), again)
    attacker = again.lookup("92.55.146.245")
    assert attacker == first.lookup("92.55.146.245") and attacker.country == "Romania"
    assert not preload_geo(open_dataset([str(INCIDENT)], TimeWindow(), Config()), Config(), GeoResolver())
    # A question over a window reads the same cache (every address of the case), and evicts nothing.
    from datetime import UTC, datetime

    windowed = open_dataset([str(case)], TimeWindow(datetime(2020, 11, 1, tzinfo=UTC), None), Config())
    later = GeoResolver()
    assert preload_geo(windowed, Config(), later) and later.lookup("92.55.146.245") == attacker
    assert len(list((case / "derived" / "geo").glob("*.addresses.parquet"))) == 1
