"""The case store: accounting, the duplicate rule, idempotence, and a case as a source."""

from __future__ import annotations

import json
import shutil

import polars as pl

from sleuth import store
from sleuth.config import Config
from sleuth.dataset import open_dataset
from sleuth.ingest import ingest
from sleuth.sources import resolve
from sleuth.timewindow import TimeWindow
from tests.conftest import BROKEN, INCIDENT, SHAPES, raw_records, run_cli


def do_ingest(sources, case, config=None, window=None):
    config, window = config or Config(), window or TimeWindow()
    return ingest(resolve([str(s) for s in sources], window, config), case, window, config)


def events(case):
    return store.scan(case, "events").collect()


def test_manifest_and_partitions(tmp_path):
    case = tmp_path / "case"
    summary = do_ingest([INCIDENT], case)
    manifest = json.loads((case / "manifest.json").read_text())
    assert manifest["schema"] == "sleuth/manifest/v1" and manifest["sleuth_version"]
    assert manifest["totals"]["read"] == 156 and manifest["totals"]["kept"] == 123
    assert manifest["totals"]["duplicate"] == 33 and manifest["digests"]
    entry = manifest["inputs"][0]
    assert {"path", "size", "sha256", "format", "records", "time_range"} <= set(entry)
    assert sorted(p.name for p in (case / "events").iterdir()) == ["day=2026-03-01", "day=2026-03-02", "day=2026-03-03"]
    assert len(events(case)) == 123 == len({r["eventID"] for r in raw_records(INCIDENT)})
    assert manifest["time_range"][0].startswith("2026-03-01")
    assert summary.manifest == manifest


def test_accounting_adds_up_per_input(tmp_path):
    summary = do_ingest([INCIDENT, BROKEN, SHAPES], tmp_path / "case")
    for report in summary.inputs:
        assert report.read == report.kept + report.duplicate + sum(report.skipped.values()), report.path
    assert sum(r.kept for r in summary.inputs) == len(events(tmp_path / "case"))


def test_duplicates_across_batches_are_dropped_from_the_store(tmp_path):
    # one file per batch: the organization-trail copy lands in another batch than the original
    case = tmp_path / "case"
    summary = do_ingest([INCIDENT], case, Config(batch_files=1))
    assert sum(r.duplicate for r in summary.inputs) == 33
    assert len(events(case)) == 123
    copy = next(r for r in summary.inputs if "o-exampleorg1" in r.path)
    assert (copy.kept, copy.duplicate) == (0, 33)


def test_ingesting_again_adds_nothing(tmp_path):
    case = tmp_path / "case"
    do_ingest([INCIDENT], case)
    again = do_ingest([INCIDENT], case)
    assert len(again.unchanged) == 6 and again.inputs == []
    # the same records under another path are duplicates of what the case holds
    other = tmp_path / "copy"
    shutil.copytree(INCIDENT, other)
    third = do_ingest([other], case)
    assert sum(r.duplicate for r in third.inputs) == 156 and sum(r.kept for r in third.inputs) == 0
    assert len(events(case)) == 123


def test_same_id_different_content_is_kept(tmp_path):
    records = raw_records(SHAPES / "s3-delivery.json")
    records[1]["eventID"] = records[0]["eventID"]
    path = tmp_path / "reused-ids.json"
    path.write_text(json.dumps({"Records": records}))
    summary = do_ingest([path], tmp_path / "case")
    assert summary.inputs[0].kept == 3 and summary.inputs[0].duplicate == 0


def test_time_window_at_ingest(tmp_path):
    window = TimeWindow.from_options("2026-03-03", None, None)
    summary = do_ingest([INCIDENT], tmp_path / "case", window=window)
    assert events(tmp_path / "case")["time"].min().isoformat().startswith("2026-03-03")
    assert sum(r.skipped["outside the time window"] for r in summary.inputs) == 40 + 5  # day-2 file, slack day


def test_case_is_a_source_and_gives_what_the_files_give(tmp_path):
    case = tmp_path / "case"
    do_ingest([INCIDENT], case)
    from_case = open_dataset([str(case)], TimeWindow(), Config()).events.collect()
    from_files = open_dataset([str(INCIDENT)], TimeWindow(), Config()).events.collect()
    key = ["event_id", "content_hash"]
    assert from_case.sort(key).drop("origin_index").equals(from_files.sort(key).drop("origin_index"))
    both = open_dataset([str(case), str(INCIDENT)], TimeWindow(), Config()).events.collect()
    assert len(both) == 123


def test_case_days_outside_the_window_are_not_opened(tmp_path):
    case = tmp_path / "case"
    do_ingest([INCIDENT], case)
    window = TimeWindow.from_options("2026-03-03", None, None)
    assert [p.parent.name for p in store.partition_files(case, "events", window)] == ["day=2026-03-03"]
    assert store.scan(case, "events", window).select(pl.len()).collect().item() == 33


def test_ingest_refuses_a_folder_that_is_not_a_case(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    result = run_cli(["ingest", "-s", INCIDENT, "-o", tmp_path], exit_code=1)
    assert "is not a sleuth case" in result.stderr


def test_ingest_json_summary(tmp_path):
    out = run_cli(["ingest", "-s", INCIDENT, "-o", tmp_path / "c", "-f", "json", "-q"]).stdout
    data = json.loads(out)
    assert data["schema"] == "sleuth/ingest/v1"
    assert data["run"]["kept"] == 123 and data["run"]["duplicate"] == 33 and data["run"]["digest_files"] == 1
