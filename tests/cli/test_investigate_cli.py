"""`sleuth investigate` through the CLI: golden reports, the JSON contract, --fail-on, exit 4."""

from __future__ import annotations

import json

import pytest

from tests.conftest import INCIDENT, ROOT, check_golden, run_cli

FIXED = {"SOURCE_DATE_EPOCH": "1767225600"}  # the run's time in reports: fixed for golden files


@pytest.mark.parametrize("fmt", ["table", "markdown", "json"])
def test_investigation_golden(fmt, update_golden, monkeypatch):
    monkeypatch.chdir(ROOT)  # input paths as given (relative): the same text in every checkout
    result = run_cli(["investigate", "-s", "fixtures/incident", "alice", "-f", fmt], env=FIXED)
    check_golden(f"investigate-alice.{fmt}", result.stdout, update_golden)


def test_json_contract_has_the_handbook_keys():
    data = json.loads(run_cli(["investigate", "-s", INCIDENT, "alice", "-f", "json"], env=FIXED).stdout)
    assert data["schema"] == "sleuth/investigation/v1"
    for key in ("target", "scope", "baseline", "severity", "summary", "indicators", "timeline", "entities",
                "findings", "groups", "remediation", "inputs"):  # fmt: skip
        assert key in data, key
    assert set(data["scope"]) == {"start", "end"} and set(data["baseline"]) == {"start", "end"}
    assert all(len(item["sha256"]) == 64 for item in data["inputs"])
    assert {i["type"] for i in data["indicators"]} >= {"TTP_OBSERVED", "LOGGING_TAMPERING", "CREDENTIAL_LINEAGE"}


def test_markdown_is_clean_for_a_ticket(tmp_path):
    report = tmp_path / "report.md"
    run_cli(["investigate", "-q", "-s", INCIDENT, "alice", "-o", report], env=FIXED)
    text = report.read_text()
    assert "```mermaid" in text and "<details>" in text and "\x1b" not in text
    assert text.startswith("Critical") or text.startswith("High")


def test_fail_on_exits_3_and_unknown_targets_exit_4():
    run_cli(["investigate", "-q", "-s", INCIDENT, "alice", "--fail-on", "high", "-f", "json"], exit_code=3)
    critical = run_cli(
        ["investigate", "-q", "-s", INCIDENT, "alice", "--fail-on", "critical", "-f", "json"], exit_code=3
    )
    assert json.loads(critical.stdout)["severity"] == "Critical"  # the report is written before the exit
    run_cli(["investigate", "-q", "-s", INCIDENT, "alice", "-f", "json"], exit_code=0)
    result = run_cli(["investigate", "-q", "-s", INCIDENT, "nobody-at-all"], exit_code=4)
    assert "fix:" in result.stderr


def test_markdown_for_a_large_incident_stays_ticket_sized():
    """bert-jan's 2,700 events: every table keeps its first rows (the JSON all of them), long ones fold."""
    from tests.conftest import shared

    text = run_cli(["investigate", "-s", shared("invictus-aws-dataset"), "bert-jan", "-f", "markdown"]).stdout
    assert len(text) < 65_536  # a GitHub comment's limit
    assert "## New user agents (15 of 140; -f json has every row)" in text
    assert "<details><summary>New user agents (15 of 140; -f json has every row)</summary>" in text
    assert "## Timeline (50 of " in text and "## Affected resources (15 of 225; -f json has every row)" in text
