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
from tests.conftest import BROKEN, FIXTURES, INCIDENT, SHAPES, raw_records, run_cli


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
    # the same files under another path are recognised by their content and not read again
    other = tmp_path / "copy"
    shutil.copytree(INCIDENT, other)
    third = do_ingest([other], case)
    assert third.inputs == [] and all("same content as" in name for name in third.unchanged)
    assert len(events(case)) == 123
    # the same records in a new file are duplicates of what the case holds
    records = raw_records(INCIDENT / "AWSLogs" / "123456789012" / "CloudTrail" / "us-east-1" / "2026" / "03" / "01")
    repacked = tmp_path / "repacked.json"
    repacked.write_text(json.dumps({"Records": records}, indent=1))
    fourth = do_ingest([repacked], case)
    assert (fourth.inputs[0].kept, fourth.inputs[0].duplicate) == (0, 40)
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


def frame_rows(case, name):
    return store.scan(case, name).select(pl.len()).collect().item()


def test_a_changed_input_replaces_its_rows_in_every_frame(tmp_path):
    flows = tmp_path / "logs" / "flows.log"
    flows.parent.mkdir()
    lines = (FIXTURES / "vpcflow" / "default-v2.log").read_text().splitlines(keepends=True)
    flows.write_text("".join(lines[:3]))
    case = tmp_path / "case"
    do_ingest([flows.parent], case)
    before = frame_rows(case, "flows") + frame_rows(case, "flow_status")
    flows.write_text("".join(lines[:4]))
    summary = do_ingest([flows.parent], case)
    assert summary.inputs[0].kept == before + 1
    assert frame_rows(case, "flows") + frame_rows(case, "flow_status") == before + 1
    manifest = json.loads((case / "manifest.json").read_text())
    assert len(manifest["inputs"]) == 1 and manifest["totals"]["kept"] == before + 1


def test_the_same_content_under_another_path_is_not_read_again(tmp_path):
    case = tmp_path / "case"
    do_ingest([FIXTURES / "vpcflow" / "default-v2.log"], case)
    copy = tmp_path / "copy.log"
    shutil.copy(FIXTURES / "vpcflow" / "default-v2.log", copy)
    rows = frame_rows(case, "flows")
    summary = do_ingest([copy], case)
    assert summary.inputs == [] and "same content as" in summary.unchanged[0]
    assert frame_rows(case, "flows") == rows


def test_a_wider_window_reads_the_input_again(tmp_path):
    case = tmp_path / "case"
    do_ingest([INCIDENT], case, window=TimeWindow.from_options("2026-03-03", None, None))
    assert len(events(case)) == 33
    summary = do_ingest([INCIDENT], case)
    assert len(events(case)) == 123
    assert summary.manifest["totals"]["kept"] == 123
    again = do_ingest([INCIDENT], case, window=TimeWindow.from_options("2026-03-02", None, None))
    assert again.inputs == [] and len(events(case)) == 123  # covered by the unbounded ingest


def test_flows_without_time_are_counted_outside_a_window(tmp_path):
    path = tmp_path / "tgw.log"
    path.write_text("version account-id srcaddr dstaddr bytes action log-status\n"
                    "2 123456789012 10.0.0.1 10.0.0.2 100 ACCEPT OK\n")  # fmt: skip
    window = TimeWindow.from_options("2026-01-01", None, None)
    summary = do_ingest([path], tmp_path / "case", window=window)
    report = summary.inputs[0]
    assert (report.read, report.kept, report.skipped["outside the time window"]) == (1, 0, 1)


def test_overlapping_sources_are_counted_once(tmp_path):
    case = tmp_path / "case"
    do_ingest([INCIDENT, FIXTURES / "vpcflow" / "default-v2.log"], case)
    alone = open_dataset([str(case)], TimeWindow(), Config())
    twice = open_dataset([str(case), str(tmp_path / "." / "case"), str(INCIDENT)], TimeWindow(), Config())
    for name in ("events", "flows", "flow_status"):
        assert twice.frames[name].collect().height == alone.frames[name].collect().height, name
    from sleuth.ingest import totals

    assert totals(twice.inputs) == totals(alone.inputs)
    assert len(twice.sources.in_case) == 6


def test_a_case_hashed_by_another_polars_version_is_rehashed(tmp_path):
    case = tmp_path / "case"
    do_ingest([INCIDENT], case)
    manifest = json.loads((case / "manifest.json").read_text())
    manifest["content_hash"] = "polars-0.0.1"
    for part in store.partition_files(case, "events"):  # as if another version had hashed them
        pl.read_parquet(part).with_columns((pl.col("content_hash") + 1).alias("content_hash")).write_parquet(part)
    (case / "manifest.json").write_text(json.dumps(manifest))
    assert open_dataset([str(case), str(INCIDENT)], TimeWindow(), Config()).events.collect().height == 123
    records = raw_records(INCIDENT / "AWSLogs" / "123456789012" / "CloudTrail" / "us-east-1" / "2026" / "03" / "01")
    (tmp_path / "again.json").write_text(json.dumps({"Records": records}, indent=1))
    summary = do_ingest([tmp_path / "again.json"], case)
    assert summary.inputs[0].duplicate == 40 and len(events(case)) == 123
    assert json.loads((case / "manifest.json").read_text())["content_hash"].startswith("polars-")
