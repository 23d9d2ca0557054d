"""sleuth rules, and sleuth findings with sleuth's own detections, through the CLI."""

from __future__ import annotations

import json

from tests.conftest import FIXTURES, run_cli, shared


def test_rules_json_lists_detections_and_mapped_events():
    data = json.loads(run_cli(["rules", "-f", "json"]).stdout)
    assert data["schema"] == "sleuth/rules/v1"
    assert len(data["mapped"]) >= 80 and data["detections"]
    stop = next(m for m in data["mapped"] if m["id"] == "cloudtrail-stop-logging")
    assert stop["tactics"] == ["Defense Evasion"] and stop["techniques"] == ["T1562.008"]
    assert stop["techniques_v19"] == ["T1685.002"] and stop["severity_label"] == "High"
    assert data["count"] == len(data["mapped"]) + len(data["detections"])


def test_rules_filter_by_tactic_and_formats():
    data = json.loads(run_cli(["rules", "--tactic", "TA0010", "-f", "json"]).stdout)
    assert data["tactic"] == "Exfiltration" and all("Exfiltration" in m["tactics"] for m in data["mapped"])
    table = run_cli(["rules", "--tactic", "exfiltration"]).stdout
    assert "ec2-share-snapshot" in table and "cloudtrail-stop-logging" not in table
    rows = run_cli(["rules", "-f", "csv"]).stdout.splitlines()
    assert rows[0].startswith("kind,id,severity") and len(rows) > 80
    assert "| cloudtrail-stop-logging |" in run_cli(["rules", "-f", "markdown"]).stdout
    assert "not an ATT&CK tactic" in run_cli(["rules", "--tactic", "lunch"], 2).stderr


def test_findings_shows_sleuth_findings_beside_guardduty():
    invictus = shared("invictus-aws-dataset")
    data = json.loads(run_cli(["findings", "-s", invictus, "--producer", "sleuth", "-f", "json", "-q"]).stdout)
    assert data["total"] >= 20 and {f["producer"] for f in data["findings"]} == {"sleuth"}
    types = {f["type"] for f in data["findings"]}
    assert "sleuth:DefenseEvasion/cloudtrail-stop-logging" in types
    stop = next(f for f in data["findings"] if f["type"] == "sleuth:DefenseEvasion/cloudtrail-stop-logging")
    assert {"type": "AwsUser", "id": "arn:aws:iam::123837392027:user/bert-jan", "role": "actor"} in stop["entities"]
    both = json.loads(run_cli(["findings", "-s", invictus, "-s", FIXTURES / "guardduty" / "s3-export.jsonl",
                               "-f", "json", "-q"]).stdout)  # fmt: skip
    assert {f["producer"] for f in both["findings"]} == {"sleuth", "guardduty"}
    none = json.loads(run_cli(["findings", "-s", invictus, "--no-detections", "-f", "json", "-q"]).stdout)
    assert none["total"] == 0


def test_findings_fail_on_counts_sleuth_findings():
    invictus = shared("invictus-aws-dataset")
    run_cli(["findings", "-s", invictus, "--fail-on", "high", "-q", "-f", "jsonl"], 3)
