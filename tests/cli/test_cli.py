"""The CLI contract: exit codes, formats, stdout for results and stderr for the rest."""

from __future__ import annotations

import csv
import io
import json

from tests.conftest import BROKEN, INCIDENT, SHAPES, raw_records, run_cli


def test_version_and_help():
    assert "sleuth" in run_cli(["--version"]).stdout
    for command in ("ingest", "sources", "search"):
        assert "--source" in run_cli([command, "--help"]).stdout


def test_search_json_contract():
    out = run_cli(["search", "-s", INCIDENT, "--action", "StopLogging", "-f", "json"]).stdout
    data = json.loads(out)
    assert data["schema"] == "sleuth/search/v1"
    assert data["count"] == data["total"] == 1
    event = data["events"][0]
    assert event["action"] == "StopLogging"
    assert event["src_ip"] == "203.0.113.66"
    assert event["principal"] == "arn:aws:iam::123456789012:role/admin-role"
    assert event["session"] == "AROAEXAMPLEADMINROLE:maint"
    assert event["request"] == {"name": "arn:aws:cloudtrail:us-east-1:123456789012:trail/main"}
    assert event["time"] == "2026-03-03T10:12:00Z"


def test_search_filters_combine():
    def count(*flags: str) -> int:
        return json.loads(run_cli(["search", "-s", INCIDENT, "-f", "json", *flags]).stdout)["total"]

    assert count("--ip", "203.0.113.0/24") == 13
    assert count("--ip", "203.0.113.66", "--errors") == 2
    assert count("--principal", "alice", "--ip", "203.0.113.66") == 11
    assert count("--principal", "admin-role") == 2
    assert count("--principal", "arn:aws:iam::123456789012:user/al*") == 121
    iam_lists = {
        r["eventID"]
        for r in raw_records(INCIDENT)
        if r["eventName"].startswith("List") and r["eventSource"] == "iam.amazonaws.com"
    }
    assert count("--action", "List*", "--service", "iam") == len(iam_lists) > 2
    assert count("--access-key", "ASIAEXAMPLESESSION01") == 2
    assert count("--since", "2026-03-03T10:00:00Z", "--until", "2026-03-03T10:02:00Z") == 2


def test_search_limit_keeps_earliest():
    data = json.loads(run_cli(["search", "-s", INCIDENT, "--limit", "2", "-f", "json"]).stdout)
    assert data["count"] == 2 and data["total"] == 123
    assert [e["time"] for e in data["events"]] == sorted(e["time"] for e in data["events"])


def test_jsonl_and_csv_one_row_per_event():
    lines = run_cli(["search", "-s", INCIDENT, "--ip", "203.0.113.66", "-f", "jsonl"]).stdout.splitlines()
    assert len(lines) == 13 and all(json.loads(line)["src_ip"] == "203.0.113.66" for line in lines)
    rows = list(csv.DictReader(io.StringIO(run_cli(["search", "-s", INCIDENT, "--errors", "-f", "csv"]).stdout)))
    assert {row["error_code"] for row in rows} == {"Failed authentication", "AccessDenied"}


def test_results_on_stdout_status_on_stderr(tmp_path):
    result = run_cli(["ingest", "-s", BROKEN, "-o", tmp_path / "case"])
    assert "warning" not in result.stdout
    assert "broken/empty.json: skipped: empty file" in result.stderr
    assert "records from 7 inputs" in result.stdout


def test_strict_turns_warnings_into_exit_1(tmp_path):
    run_cli(["search", "-s", SHAPES, "--strict"])
    result = run_cli(["search", "-s", BROKEN, "--strict"], exit_code=1)
    assert "under --strict" in result.stderr


def test_missing_source_exits_1_with_fix():
    result = run_cli(["search", "-s", "/nonexistent/logs"], exit_code=1)
    assert "/nonexistent/logs: no such file or folder" in result.stderr
    assert "fix:" in result.stderr


def test_no_source_at_all_names_the_fix():
    assert "SLEUTH_SOURCES" in run_cli(["search"], exit_code=1).stderr


def test_sources_from_environment():
    out = run_cli(["search", "-f", "json", "--errors"], env={"SLEUTH_SOURCES": str(INCIDENT)}).stdout
    assert json.loads(out)["total"] == 2


def test_usage_errors_exit_2():
    run_cli(["search", "-s", INCIDENT, "--format", "yaml"], exit_code=2)
    run_cli(["search", "-s", INCIDENT, "--since", "yesterday-ish"], exit_code=2)
    run_cli(["search", "-s", INCIDENT, "--last", "24h", "--since", "2026-01-01"], exit_code=2)
    assert "not an IP address" in run_cli(["search", "-s", INCIDENT, "--ip", "nope"], exit_code=2).stderr


def test_output_file_format_from_extension_and_no_overwrite(tmp_path):
    target = tmp_path / "out.json"
    run_cli(["search", "-s", INCIDENT, "--errors", "-o", target])
    assert json.loads(target.read_text())["total"] == 2
    assert "--force" in run_cli(["search", "-s", INCIDENT, "-o", target], exit_code=1).stderr
    run_cli(["search", "-s", INCIDENT, "--action", "StopLogging", "-o", target, "--force"])
    assert json.loads(target.read_text())["total"] == 1


def test_empty_csv_still_has_its_header():
    out = run_cli(["search", "-s", INCIDENT, "--action", "NoSuchCall", "-f", "csv"]).stdout
    assert out.startswith("event_id,time,account,") and len(out.splitlines()) == 1


def test_markdown_output_is_a_table():
    out = run_cli(["search", "-s", INCIDENT, "--errors", "-f", "markdown"]).stdout
    assert out.startswith("## Events (2)")
    assert "| time | principal | action |" in out


def test_sources_json_reports_coverage_duplicates_digests_and_tampering():
    data = json.loads(run_cli(["sources", "-s", INCIDENT, "-f", "json"]).stdout)
    assert data["schema"] == "sleuth/sources/v1"
    totals = data["totals"]
    assert (totals["read"], totals["kept"], totals["duplicate"]) == (156, 123, 33)
    assert data["digest_files"] == 1
    cells = {(c["region"], c["day"]): c["events"] for c in data["coverage"]}
    assert cells == {
        ("us-east-1", "2026-03-01"): 40,
        ("us-east-1", "2026-03-02"): 40,
        ("us-east-1", "2026-03-03"): 33,
        ("us-west-2", "2026-03-01"): 5,
        ("us-west-2", "2026-03-02"): 5,
    }
    [tamper] = data["tampering"]
    assert (tamper["action"], tamper["src_ip"]) == ("StopLogging", "203.0.113.66")
    assert tamper["principal"].endswith(":role/admin-role")
    assert {(g["start"], g["hours"]) for g in data["gaps"]} == {
        ("2026-03-01T17:00:00Z", 16),
        ("2026-03-02T17:00:00Z", 16),
    }


def test_sources_lists_skipped_inputs_with_reasons():
    data = json.loads(run_cli(["sources", "-s", BROKEN, "-f", "json"]).stdout)
    reasons = {item["path"].rsplit("/", 1)[1]: item["reason"] for item in data["skipped_inputs"]}
    assert reasons["empty.json"] == "empty file"
    assert reasons["not-cloudtrail.json"].startswith("not a recognised log format")
    assert reasons["invalid.json"].startswith("invalid JSON")
    assert data["totals"]["skipped"] == {"invalid JSON": 1, "no eventTime": 1}
