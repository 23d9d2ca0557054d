"""sleuth findings and the flow / finding parts of sleuth sources, through the CLI."""

from __future__ import annotations

import json

import pytest

from tests.conftest import FIXTURES, INCIDENT, run_cli, shared

GUARDDUTY = FIXTURES / "guardduty"
EXPORT = GUARDDUTY / "s3-export.jsonl"


def findings(*args: str) -> dict:
    return json.loads(run_cli(["findings", "-s", EXPORT, "-f", "json", *args]).stdout)


def test_most_severe_first_with_entities_and_tactics():
    data = findings()
    assert data["schema"] == "sleuth/findings/v1" and data["total"] == 8
    severities = [f["severity"] for f in data["findings"]]
    assert severities == sorted(severities, reverse=True)
    top = data["findings"][0]
    assert (top["type"], top["severity_label"]) == ("AttackSequence:IAM/CompromisedCredentials", "Critical")
    exfil = next(f for f in data["findings"] if f["finding_id"] == "gd0000000000000000000000000000001")
    assert exfil["tactics"] and exfil["severity_label"] == "High"
    assert {"type": "AccessKey", "role": "actor"}.items() <= next(
        e for e in exfil["entities"] if e["type"] == "AccessKey"
    ).items()


def test_filters():
    assert [f["severity"] for f in findings("--min-severity", "high")["findings"]] == [9.0, 8.9, 8.0, 8.0, 7.0]
    assert findings("--min-severity", "4")["total"] == 7  # 3.9 is Low
    assert {f["type"] for f in findings("--type", "UnauthorizedAccess:*")["findings"]} == {
        "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
        "UnauthorizedAccess:EC2/SSHBruteForce",
    }
    assert findings("--producer", "sleuth")["total"] == 0
    assert findings("--limit", "2")["count"] == 2


def test_entity_filter_takes_ids_wildcards_and_cidr():
    by_cidr = findings("--entity", "203.0.113.0/24")["findings"]
    assert by_cidr and all(
        any(e["type"] == "IpAddress" and e["id"].startswith("203.0.113.") for e in f["entities"]) for f in by_cidr
    )
    some_entity = by_cidr[0]["entities"][0]["id"]
    assert findings("--entity", some_entity)["total"] >= 1
    assert findings("--entity", "no-such-entity-*")["total"] == 0


def test_bad_severity_is_a_usage_error():
    assert "low/medium/high/critical" in run_cli(["findings", "-s", EXPORT, "--min-severity", "huge"], 2).stderr


def test_every_shape_lists_the_same_findings():
    ids = {f["finding_id"] for f in findings()["findings"]}
    pascal = json.loads(run_cli(["findings", "-s", GUARDDUTY / "get-findings.json", "-f", "json"]).stdout)
    assert {f["finding_id"] for f in pascal["findings"]} == ids


def test_csv_has_one_row_per_finding():
    rows = run_cli(["findings", "-s", EXPORT, "-f", "csv"]).stdout.splitlines()
    assert len(rows) == 9 and rows[0].startswith("finding_id,producer,type")


def test_sources_counts_flows_nodata_and_findings():
    data = json.loads(run_cli(["sources", "-s", FIXTURES / "vpcflow" / "default-v2.log", "-s", EXPORT,
                               "-f", "json"]).stdout)  # fmt: skip
    totals: dict[str, dict] = {}
    for row in data["flows"]:  # one row per interface and day
        into = totals.setdefault(row["interface_id"], {"flows": 0, "rejected": 0, "bytes": 0, "nodata": 0})
        for key in into:
            into[key] += row[key]
    eni = totals["eni-0a1b2c3d4e5f67890"]
    assert eni["flows"] >= 4 and eni["rejected"] >= 2 and eni["bytes"] >= 8613 + 9274
    assert totals["eni-0fedcba9876543210"]["nodata"] >= 1
    by_type = {row["type"]: row for row in data["findings"]}
    assert by_type["AttackSequence:IAM/CompromisedCredentials"]["severity_label"] == "Critical"


def test_panther_flows_and_findings_together(tmp_path):
    panther = shared("panther-samples")
    run_cli(["ingest", "-q", "-s", panther, "-o", tmp_path / "case"])
    data = json.loads(run_cli(["sources", "-s", tmp_path / "case", "-f", "json"]).stdout)
    [flows] = [row for row in data["flows"] if row["interface_id"] == "eni-0b13344793d4fde67"]
    assert flows["flows"] == 6
    types = {row["type"] for row in data["findings"]}
    assert sum(t.startswith("AttackSequence:") for t in types) == 2
    out = run_cli(["findings", "-s", tmp_path / "case", "--type", "AttackSequence:*", "-f", "json"]).stdout
    assert json.loads(out)["total"] == 2


def test_vpc_format_flag_reads_headerless_custom_files():
    from tests.parsers.test_vpcflow import CUSTOM_FORMAT

    path = FIXTURES / "vpcflow" / "custom-v5.log"
    plain = json.loads(run_cli(["sources", "-s", path, "-f", "json"]).stdout)
    assert not plain["flows"]  # without the format its lines cannot be read as flows
    data = json.loads(run_cli(["sources", "-s", path, "--vpc-format", CUSTOM_FORMAT, "-f", "json"]).stdout)
    assert data["totals"]["kept"] > 0 and data["flows"]


def test_fail_on_exits_3_when_the_severity_is_reached():
    result = run_cli(["findings", "-s", EXPORT, "--fail-on", "critical", "-f", "json", "-q"], exit_code=3)
    assert json.loads(result.stdout)["total"] == 8  # the results are still written
    assert "at or above critical" in result.stderr
    run_cli(["findings", "-s", EXPORT, "--type", "Recon:*", "--fail-on", "high", "-q"], exit_code=0)
    run_cli(["findings", "-s", EXPORT, "--fail-on", "extreme"], exit_code=2)


@pytest.mark.parametrize("flag", ["--fail-on", "--min-severity"])
def test_a_bad_severity_names_its_own_flag(flag):
    result = run_cli(["findings", "-s", INCIDENT, flag, "bogus"], exit_code=2)
    assert f"{flag} 'bogus' is not a severity" in result.stderr
