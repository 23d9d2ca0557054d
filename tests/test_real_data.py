"""Real public attack logs from ../shared/data (skipped with a reason when absent, required in CI)."""

from __future__ import annotations

import json

from sleuth.config import Config
from sleuth.ingest import ingest
from sleuth.sources import resolve
from sleuth.timewindow import TimeWindow
from tests.conftest import run_cli, shared


def ingest_all(path, tmp_path):
    window = TimeWindow()
    summary = ingest(resolve([str(path)], window, Config()), tmp_path / "case", window, Config())
    return summary.manifest["totals"], summary


def test_invictus_keeps_all_2900_records(tmp_path):
    totals, summary = ingest_all(shared("invictus-aws-dataset"), tmp_path)
    assert (totals["read"], totals["kept"], totals["duplicate"], totals["skipped"]) == (2900, 2900, 0, {})
    assert totals["inputs_skipped"] == 0 and all(not r.warnings for r in summary.inputs)


def test_stratus_arrays_with_fake_regions_and_zero_padded_ips(tmp_path):
    totals, _ = ingest_all(shared("stratus-detonation-logs"), tmp_path)
    assert (totals["read"], totals["kept"], totals["skipped"]) == (310, 310, {})
    out = run_cli(["search", "-s", tmp_path / "case", "--ip", "35.249.253.0/24", "-f", "json"]).stdout
    matches = json.loads(out)["events"]
    assert matches and all(e["src_ip"].startswith("035.249.253.") for e in matches)


def test_panther_records_sharing_event_id_1_are_all_kept(tmp_path):
    path = shared("panther-samples/compromised-root-creds") / "cloudtrail.json"
    totals, _ = ingest_all(path, tmp_path)
    assert (totals["read"], totals["kept"], totals["duplicate"]) == (16, 16, 0)


def test_search_stoplogging_in_invictus():
    out = run_cli(["search", "-s", shared("invictus-aws-dataset"), "--action", "StopLogging", "-f", "json"]).stdout
    events = json.loads(out)["events"]
    assert len(events) == 3
    for event in events:
        assert event["principal"] == "arn:aws:iam::123837392027:user/bert-jan"
        assert event["src_ip"] == "192.168.10.20"
        assert event["user_agent"].startswith("stratus-red-team_")


def test_invictus_tampering_in_sources():
    data = json.loads(run_cli(["sources", "-s", shared("invictus-aws-dataset"), "-f", "json"]).stdout)
    actions = {t["action"] for t in data["tampering"]}
    assert {"StopLogging", "DeleteTrail", "PutEventSelectors", "DeleteFlowLogs"} <= actions
    assert data["ignored_files"]  # the dataset's README and LICENSE are not logs
