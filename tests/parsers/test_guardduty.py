"""The GuardDuty parser: every delivery shape, severities, tactics, attack sequences, entities, hostile input."""

from __future__ import annotations

import ipaddress
import json
import re
from datetime import UTC, datetime

import orjson
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sleuth import attack, schema
from sleuth.config import Config
from sleuth.parsers import cloudtrail, guardduty
from tests.conftest import FIXTURES, SHAPES, shared

CONFIG = Config()
GD = FIXTURES / "guardduty"
ACCOUNT = "123456789012"
EXFIL = "gd0000000000000000000000000000001"
SSH = "gd0000000000000000000000000000002"
PROBE = "gd0000000000000000000000000000003"
DNS = "gd0000000000000000000000000000004"
K8S = "gd0000000000000000000000000000005"
RDS = "gd0000000000000000000000000000006"
S3 = "gd0000000000000000000000000000007"
SEQUENCE = "as000000000000000000000000000001"


def parse(data: bytes | str | dict | list, config: Config = CONFIG):
    if not isinstance(data, bytes | str):
        data = json.dumps(data)
    if isinstance(data, str):
        data = data.encode()
    result = guardduty.parse(data, "test", config)
    assert result.read == result.kept + sum(result.skipped.values())
    assert len(result.frames["findings"]) == result.kept
    return result


def fixture(name: str):
    return parse((GD / name).read_bytes())


def findings_of(result) -> dict[str, dict]:
    return {row["finding_id"]: row for row in result.frames["findings"].iter_rows(named=True)}


def entities_of(result, finding_id: str) -> set[tuple[str, str, str]]:
    frame = result.frames["finding_entities"].filter(pl.col("finding_id") == finding_id)
    return set(frame.select("entity_type", "entity_id", "role").iter_rows())


def jsonl_findings() -> list[dict]:
    return [json.loads(line) for line in (GD / "s3-export.jsonl").read_text().splitlines()]


def minimal(**fields) -> dict:
    base = {
        "schemaVersion": "2.0",
        "accountId": ACCOUNT,
        "region": "us-east-1",
        "id": "f-1",
        "type": "Recon:EC2/Portscan",
        "severity": 5,
        "createdAt": "2026-03-03T10:00:00.000Z",
        "updatedAt": "2026-03-03T10:30:00.000Z",
        "resource": {"resourceType": "Instance"},
        "service": {"serviceName": "guardduty"},
    }
    return {**base, **fields}


# ---------------------------------------------------------------------------------------------
# Sniffing


@pytest.mark.parametrize("name", sorted(p.name for p in GD.iterdir()))
def test_sniff_accepts_every_fixture_shape_and_cloudtrail_does_not(name):
    head = (GD / name).read_bytes()[:65536]
    assert guardduty.sniff(head)
    assert not cloudtrail.sniff(head)


def test_sniff_accepts_the_real_samples():
    for path in sorted(shared("guardduty-aws-samples").glob("events/*.json")):
        assert guardduty.sniff(path.read_bytes()[:65536]), path.name
    assert guardduty.sniff((shared("panther-samples") / "guardduty-findings.jsonl").read_bytes()[:65536])


def test_sniff_accepts_a_truncated_head():
    data = (GD / "get-findings.json").read_bytes()
    assert guardduty.sniff(data[:700])


@pytest.mark.parametrize("name", sorted(p.name for p in SHAPES.iterdir()))
def test_sniff_rejects_cloudtrail(name):
    assert not guardduty.sniff((SHAPES / name).read_bytes()[:65536])


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"   ",
        b"2 123456789012 eni-1 10.0.0.1 10.0.0.2 22 80 6 1 40 1 2 ACCEPT OK",
        b"version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action",
        b'{"hello": "world"}',
        b'{"detail-type": "AWS API Call via CloudTrail", "source": "aws.guardduty",'
        b' "detail": {"eventVersion": "1.08"}}',
        b'{"Findings": [{"ProductArn": "arn:aws:securityhub:us-east-1::product/aws/guardduty",'
        b' "Id": "arn:aws:guardduty:us-east-1:123456789012:detector/d/finding/f"}]}',
        b'{"Records": [{"type": "Recon:EC2/Portscan", "schemaVersion": "2.0"}]}',
    ],
)
def test_sniff_rejects_what_is_not_guardduty(head):
    assert not guardduty.sniff(head)


def test_sniff_accepts_get_findings_that_found_nothing():
    assert guardduty.sniff(b'{"Findings": []}\n')
    assert guardduty.sniff(b'{\n  "Findings": [\n  ]\n}')
    result = parse(b'{"Findings": []}')
    assert (result.read, result.kept, result.error, result.warnings) == (0, 0, None, ["no findings in input"])


def test_sniff_accepts_a_bare_finding_without_arn():
    head = json.dumps({"schemaVersion": "2.0", "type": "Recon:EC2/Portscan", "id": "x"}).encode()
    assert guardduty.sniff(head)


# ---------------------------------------------------------------------------------------------
# Shapes


def test_every_shape_and_key_case_gives_the_same_rows():
    """get-findings (PascalCase, pretty) and the S3 export (camelCase JSON lines) of the same findings."""
    pascal, camel = fixture("get-findings.json"), fixture("s3-export.jsonl")
    assert pascal.read == camel.read == camel.kept == 8
    assert pascal.frames["findings"].drop("raw", "origin").equals(camel.frames["findings"].drop("raw", "origin"))
    assert pascal.frames["finding_entities"].equals(camel.frames["finding_entities"])
    assert json.loads(pascal.frames["findings"]["raw"][0])["Id"] == EXFIL  # raw keeps the original keys


def test_keys_in_any_case_at_every_level():
    def shout(value):
        if isinstance(value, dict):
            return {k.upper(): shout(v) for k, v in value.items()}
        if isinstance(value, list):
            return [shout(v) for v in value]
        return value

    original = jsonl_findings()
    loud, quiet = parse([shout(f) for f in original]), parse(original)
    assert loud.frames["findings"].drop("raw").equals(quiet.frames["findings"].drop("raw"))
    assert loud.frames["finding_entities"].equals(quiet.frames["finding_entities"])


def test_array_single_finding_and_eventbridge_give_the_same_row():
    finding = jsonl_findings()[1]
    single = parse(finding)
    array = parse([finding])
    event = parse({"version": "0", "detail-type": "GuardDuty Finding", "source": "aws.guardduty", "detail": finding})
    findings = [r.frames["findings"].drop("origin") for r in (single, array, event)]
    assert findings[0].equals(findings[1]) and findings[0].equals(findings[2])
    assert findings[0]["finding_id"].to_list() == [SSH]


def test_raw_is_the_original_finding_as_compact_json():
    result = fixture("s3-export.jsonl")
    for original, raw in zip(jsonl_findings(), result.frames["findings"]["raw"], strict=True):
        assert orjson.loads(raw) == original
        assert "\n" not in raw


def test_columns_and_dtypes_are_canonical():
    result = fixture("s3-export.jsonl")
    assert result.frames["findings"].schema == pl.Schema(schema.FINDINGS)
    assert result.frames["finding_entities"].schema == pl.Schema(schema.FINDING_ENTITIES)
    row = findings_of(result)[EXFIL]
    assert row["producer"] == "guardduty"
    assert row["account"] == ACCOUNT and row["region"] == "us-east-1"
    assert row["event_ids"] == []
    assert row["origin"] == "test"
    assert row["first_seen"] == datetime(2026, 3, 3, 10, 5, tzinfo=UTC)
    assert row["last_seen"] == datetime(2026, 3, 3, 10, 45, tzinfo=UTC)
    assert row["updated_at"] == datetime(2026, 3, 3, 10, 45, tzinfo=UTC)


def test_eventbridge_stream_skips_other_guardduty_events():
    result = fixture("eventbridge-stream.jsonl")
    assert (result.read, result.kept) == (3, 2)
    assert result.skipped == {"not a GuardDuty finding event (GuardDuty Runtime Protection Unhealthy)": 1}
    assert sorted(findings_of(result)) == [SSH, PROBE]


def test_eventbridge_envelope_fills_account_and_region():
    finding = minimal()
    del finding["accountId"], finding["region"]
    event = {"detail-type": "GuardDuty Finding", "account": "210987654321", "region": "eu-west-1", "detail": finding}
    row = parse(event).frames["findings"].row(0, named=True)
    assert (row["account"], row["region"]) == ("210987654321", "eu-west-1")


def test_a_batch_keeps_each_inputs_accounting():
    inputs = [
        ((GD / "array.json").read_bytes(), "a.json"),
        (b"not json at all", "b.json"),
        ((GD / "eventbridge-stream.jsonl").read_bytes(), "a.json"),  # the same origin twice is fine
    ]
    frames, results = guardduty.parse_many(inputs, CONFIG)
    assert [(r.read, r.kept) for r in results] == [(3, 3), (0, 0), (3, 2)]
    assert results[1].error and results[1].error.startswith("invalid JSON")
    assert len(frames["findings"]) == 5
    assert frames["findings"]["origin"].to_list() == ["a.json"] * 5


# ---------------------------------------------------------------------------------------------
# Severity


@pytest.mark.parametrize(
    ("severity", "label"),
    [
        (None, None),
        (0.0, "Informational"),
        (0.99, "Informational"),
        (1.0, "Low"),
        (3.9, "Low"),
        (4.0, "Medium"),
        (6.9, "Medium"),
        (7.0, "High"),
        (8.9, "High"),
        (9.0, "Critical"),
        (10.0, "Critical"),
    ],
)
def test_severity_bands(severity, label):
    assert guardduty.severity_label(severity) == label


def test_severity_labels_at_the_band_edges_in_findings():
    rows = findings_of(fixture("s3-export.jsonl"))
    assert (rows[SSH]["severity"], rows[SSH]["severity_label"]) == (3.9, "Low")
    assert (rows[PROBE]["severity"], rows[PROBE]["severity_label"]) == (4.0, "Medium")
    assert (rows[EXFIL]["severity"], rows[EXFIL]["severity_label"]) == (8.9, "High")
    assert (rows[SEQUENCE]["severity"], rows[SEQUENCE]["severity_label"]) == (9.0, "Critical")
    rows = findings_of(fixture("array.json"))
    assert [(r["severity"], r["severity_label"]) for r in rows.values()] == [
        (0.5, "Informational"),
        (1.0, "Low"),
        (10.0, "Critical"),
    ]


@pytest.mark.parametrize(("value", "expected"), [("7.5", 7.5), (True, None), ("high", None), ({"n": 1}, None)])
def test_odd_severity_values(value, expected):
    row = parse(minimal(severity=value)).frames["findings"].row(0, named=True)
    assert row["severity"] == expected


@pytest.mark.parametrize("value", [0, 0.0, 10, 10.0, "0", "10"])
def test_severities_at_the_ends_of_the_scale_are_kept(value):
    result = parse(minimal(severity=value))
    assert result.kept == 1 and result.frames["findings"]["severity"][0] == float(value)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (1e308, "severity outside 0-10"),
        (10.01, "severity outside 0-10"),
        (11, "severity outside 0-10"),
        (-50, "severity outside 0-10"),
        (-0.5, "severity outside 0-10"),
        ("99", "severity outside 0-10"),
        ("inf", "severity outside 0-10"),
        ("-Infinity", "severity outside 0-10"),
        ("NaN", "severity not a number"),
    ],
)
def test_severities_off_the_scale_are_skipped_with_a_reason(value, reason):
    result = parse([minimal(id="good"), minimal(id="bad", severity=value)])
    assert (result.read, result.kept) == (2, 1)
    assert dict(result.skipped) == {reason: 1}
    assert result.frames["findings"]["finding_id"].to_list() == ["good"]


def test_severities_json_cannot_carry():
    """orjson rejects NaN and Infinity literals and numbers that overflow a double (1e400): in a
    document that makes the input an error, in JSON lines only that line is skipped."""
    good = json.dumps(minimal(id="good"))
    for literal in ("NaN", "Infinity", "-Infinity", "1e400", "-1e400"):
        bad = good.replace('"severity": 5', f'"severity": {literal}').replace('"good"', '"bad"')
        assert literal in bad
        result = parse(f"[{good}, {bad}]")
        assert result.error and (result.read, result.kept) == (0, 0), literal
        result = parse(f"{good}\n{bad}\n")
        assert (result.read, result.kept, dict(result.skipped)) == (2, 1, {"invalid JSON": 1}), literal
        assert result.frames["findings"]["finding_id"].to_list() == ["good"]


# ---------------------------------------------------------------------------------------------
# Tactics


@pytest.mark.parametrize(
    ("finding_type", "tactics", "techniques"),
    [
        ("UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS", ["Credential Access"], ["T1552.005"]),
        ("UnauthorizedAccess:EC2/SSHBruteForce", ["Initial Access"], ["T1110"]),
        ("UnauthorizedAccess:EC2/TorClient", ["Command and Control"], ["T1090.003"]),
        ("Backdoor:EC2/C&CActivity.B", ["Command and Control"], ["T1071"]),
        ("Backdoor:EC2/C&CActivity.B!DNS", ["Command and Control"], ["T1071.004"]),
        ("Backdoor:EC2/DenialOfService.Tcp", ["Command and Control", "Impact"], ["T1498"]),
        ("CryptoCurrency:EC2/BitcoinTool.B!DNS", ["Impact"], ["T1496"]),
        ("Recon:EC2/PortProbeUnprotectedPort", ["Reconnaissance"], ["T1595"]),
        ("Recon:IAMUser/MaliciousIPCaller.Custom", ["Discovery"], ["T1580", "T1087.004"]),
        ("Stealth:IAMUser/CloudTrailLoggingDisabled", ["Defense Evasion"], ["T1562.008"]),
        ("Trojan:EC2/DNSDataExfiltration", ["Exfiltration"], ["T1048.003"]),
        ("PenTest:S3/ParrotLinux", ["Initial Access"], ["T1078.004"]),
        ("Policy:IAMUser/RootCredentialUsage", ["Initial Access"], ["T1078.004"]),
        ("Policy:S3/BucketPublicAccessGranted", ["Collection", "Exfiltration"], ["T1530", "T1537"]),
        ("Persistence:IAMUser/AnomalousBehavior", ["Persistence"], []),
        ("PrivilegeEscalation:Runtime/RuncContainerEscape", ["Privilege Escalation"], ["T1611"]),
        ("CredentialAccess:RDS/TorIPCaller.FailedLogin", ["Credential Access"], ["T1090.003", "T1110"]),
        ("Execution:Kubernetes/ExecInKubeSystemPod", ["Execution"], ["T1609"]),
        ("Impact:S3/AnomalousBehavior.Delete", ["Impact"], ["T1485"]),
        ("DefenseImpairment:EC2/DisableOrModifyTools", ["Defense Evasion"], ["T1562.001"]),
        ("Behavior:EC2/TrafficVolumeUnusual", ["Exfiltration"], ["T1048"]),
        ("Behavior:EC2/SomethingNew", [], []),
        ("recon:ec2/portscan", ["Discovery"], ["T1046"]),  # types are matched case-insensitively
    ],
)
def test_tactics_by_purpose_and_specific_type(finding_type, tactics, techniques):
    assert attack.tactics_for(finding_type) == (tactics, techniques)


def test_unknown_purpose_is_kept_without_tactic_and_reported():
    result = fixture("array.json")
    row = findings_of(result)["gd0000000000000000000000000000008"]
    assert row["type"] == "Sabotage:EC2/ExampleOnly.Unknown"
    assert row["tactics"] == [] and row["techniques"] == []
    assert any("unknown purpose 'Sabotage'" in warning for warning in result.warnings)


@pytest.mark.parametrize("finding_type", [None, "", "NoColonHere", ":", "a:b/c"])
def test_odd_types_are_kept(finding_type):
    result = parse(minimal(type=finding_type))
    assert result.kept == 1
    assert result.frames["findings"]["tactics"].to_list() == [[]]


def test_the_shipped_table_is_valid_and_covers_every_documented_purpose():
    table = attack.tactic_table()
    documented = {
        "Backdoor", "Behavior", "CryptoCurrency", "DefenseEvasion", "Discovery", "Execution", "Exfiltration",
        "Impact", "InitialAccess", "PenTest", "Persistence", "Policy", "PrivilegeEscalation", "Recon", "Stealth",
        "Trojan", "UnauthorizedAccess", "CredentialAccess", "AttackSequence", "Object",
    }  # fmt: skip
    assert {p.lower() for p in documented} <= table.purposes
    assert attack.tactic_table() is table  # loaded once


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("purpose,tactic\nRecon,Discovery\n", "columns"),
        ("purpose,type,tactic,technique,note\nRecon,,Discovry,,\n", "unknown ATT&CK tactic"),
        ("purpose,type,tactic,technique,note\nRecon,,Discovery,1046,\n", "bad technique"),
        ("purpose,type,tactic,technique,note\nRecon,,Discovery,,\nRecon,,Impact,,\n", "duplicate"),
        ("purpose,type,tactic,technique,note\n,,Discovery,,\n", "needs a purpose"),
        ("purpose,type,tactic,technique,note\nRecon,Backdoor:EC2/X,Discovery,,\n", "not of purpose"),
        ("purpose,type,tactic,technique,note\nRecon,PortProbe,Discovery,,\n", "Purpose:Resource/Name"),
        ("purpose,type,tactic,technique,note\nRe con,,Discovery,,\n", "bad purpose"),
    ],
)
def test_a_bad_table_is_refused_naming_the_problem(text, error):
    with pytest.raises(ValueError, match=error):
        attack.parse_tactic_table(text)


def test_the_more_specific_row_wins_and_empty_cells_inherit():
    table = attack.parse_tactic_table(
        "purpose,type,tactic,technique,note\n"
        "Recon,,Discovery,T1046,purpose\n"
        ",*/Port*,,T1595,any purpose\n"
        "Recon,Recon:EC2/PortProbe*,Reconnaissance,,specific\n"
    )
    assert table.lookup("Recon:EC2/PortProbeUnprotectedPort") == (("Reconnaissance",), ("T1595",), True)
    assert table.lookup("Recon:EC2/Portscan") == (("Discovery",), ("T1595",), True)
    assert table.lookup("Recon:IAMUser/TorIPCaller") == (("Discovery",), ("T1046",), True)
    assert table.lookup("Other:EC2/PortX") == ((), ("T1595",), False)


@pytest.mark.parametrize(
    ("value", "tactic"),
    [
        ("Defense Evasion", "Defense Evasion"),
        ("DefenseEvasion", "Defense Evasion"),
        ("defense_evasion", "Defense Evasion"),
        ("TA0006", "Credential Access"),
        ("TA0011 - Command and Control", "Command and Control"),
        ("Made Up", "Made Up"),
    ],
)
def test_canonical_tactic_names(value, tactic):
    assert attack.canonical_tactic(value) == tactic


# ---------------------------------------------------------------------------------------------
# Attack sequences


def test_attack_sequence_keeps_its_signals_and_takes_their_tactics():
    result = fixture("eventbridge.json")
    row = findings_of(result)[SEQUENCE]
    assert row["type"] == "AttackSequence:IAM/CompromisedCredentials"
    assert row["severity_label"] == "Critical"
    # sequence indicators, then signal indicators, then the tactics of FINDING signals by type
    assert row["tactics"] == ["Credential Access", "Discovery", "Exfiltration"]
    assert row["techniques"] == ["T1552.005", "T1530", "Cloud Storage Object Discovery", "T1537"]
    sequence = json.loads(row["raw"])["service"]["detection"]["sequence"]
    assert [signal["name"] for signal in sequence["signals"]] == [
        "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
        "ListBuckets",
        "Exfiltration:S3/MaliciousIPCaller",
    ]
    assert {indicator["key"] for indicator in sequence["sequenceIndicators"]} == {
        "ATTACK_TACTIC",
        "ATTACK_TECHNIQUE",
        "TOR_IP",
    }
    assert row["description"].endswith(".")  # kept as GuardDuty wrote it


def test_attack_sequence_entities():
    entities = entities_of(fixture("eventbridge.json"), SEQUENCE)
    assert {
        ("AccessKey", "ASIAEXAMPLEWEBROLE01", "actor"),
        ("AwsRole", f"arn:aws:iam::{ACCOUNT}:role/web-role", "actor"),
        ("AwsRoleSession", "AROAEXAMPLEWEBROLE01:i-0a1b2c3d4e5f67890", "actor"),
        ("AwsUser", f"arn:aws:iam::{ACCOUNT}:user/alice", "actor"),
        ("AccessKey", "AKIAEXAMPLEALICE0001", "actor"),
        ("S3Bucket", "customer-data-bucket", "target"),
        ("Ec2Instance", "i-0a1b2c3d4e5f67890", "target"),
        ("IpAddress", "203.0.113.66", "network peer"),
        ("Finding", EXFIL, "signal"),
        ("Finding", S3, "signal"),
        ("AwsAccount", ACCOUNT, "target"),
    } <= entities
    assert ("AwsAccount", ACCOUNT, "actor") not in entities  # the actor's own account is not a second row


def test_a_finding_points_at_its_attack_sequence():
    assert ("Finding", SEQUENCE, "attack sequence") in entities_of(fixture("s3-export.jsonl"), EXFIL)


def test_attack_sequence_tactics_from_its_description_when_the_sequence_is_absent():
    """The panther samples: Extended Threat Detection findings whose export kept only the description."""
    result = parse((shared("panther-samples") / "guardduty-findings.jsonl").read_bytes())
    rows = findings_of(result)
    credentials = rows["8c258d654378414b9bc26f61a93eb816"]
    assert credentials["type"] == "AttackSequence:IAM/CompromisedCredentials"
    assert credentials["severity_label"] == "Critical"
    assert credentials["tactics"] == [
        "Persistence",
        "Privilege Escalation",
        "Defense Evasion",
        "Discovery",
        "Initial Access",
    ]
    assert credentials["techniques"] == ["T1562.008", "T1098.003", "T1078.004", "T1087.004", "T1098"]
    data = rows["b174b38d16e34da0a4c66012083bd8f7"]
    assert data["type"] == "AttackSequence:S3/CompromisedData"
    assert set(data["tactics"]) == {"Exfiltration", "Impact", "Persistence", "Defense Evasion", "Discovery"}
    assert "T1530" in data["techniques"] and "T1485" in data["techniques"]
    # "2025-02-25 20:40:06.000000000": a space for the T and nanoseconds
    assert credentials["first_seen"] == datetime(2025, 2, 25, 20, 40, 6, tzinfo=UTC)
    assert credentials["updated_at"] == datetime(2025, 2, 25, 20, 40, 6, 721000, tzinfo=UTC)
    escalation = rows["eeb88ab56556eb7771b266670dddee5a"]
    assert escalation["tactics"] == ["Privilege Escalation"]
    assert entities_of(result, escalation["finding_id"]) == {
        ("AwsAccount", ACCOUNT, "target"),
        ("Domain", "cloudformation.amazonaws.com", "actor"),
        ("AwsRole", f"arn:aws:iam::{ACCOUNT}:role/IAMRole", "target"),
    }
    assert any("sample finding" in warning for warning in result.warnings)


def test_indicator_tactics_in_other_spellings():
    finding = minimal(
        type="AttackSequence:EC2/CompromisedInstanceGroup",
        service={
            "detection": {
                "sequence": {
                    "signals": [{"type": "RUNTIME_MONITORING", "name": "x"}],
                    "sequenceIndicators": [
                        {"key": "attack_tactic", "values": ["CommandAndControl", "TA0040", 7, None]},
                        {"key": "ATTACK_TECHNIQUE", "values": ["T1496 - Resource Hijacking"]},
                    ],
                }
            }
        },
    )
    row = parse(finding).frames["findings"].row(0, named=True)
    assert row["tactics"] == ["Command and Control", "Impact", "7"]
    assert row["techniques"] == ["T1496"]


# ---------------------------------------------------------------------------------------------
# Entities by action kind


def test_entities_of_an_api_call_by_a_role_session():
    entities = entities_of(fixture("s3-export.jsonl"), EXFIL)
    assert entities == {
        ("AwsAccount", ACCOUNT, "target"),
        ("AccessKey", "ASIAEXAMPLEWEBROLE01", "actor"),
        ("AwsRole", f"arn:aws:iam::{ACCOUNT}:role/web-role", "actor"),
        ("AwsRoleSession", "AROAEXAMPLEWEBROLE01:i-0a1b2c3d4e5f67890", "actor"),
        ("IpAddress", "203.0.113.66", "actor"),
        ("UserAgent", "python-requests/2.31.0", "actor"),
        ("Finding", SEQUENCE, "attack sequence"),
    }


def test_entities_of_an_s3_api_call_by_a_user():
    entities = entities_of(fixture("s3-export.jsonl"), S3)
    assert {
        ("AccessKey", "AKIAEXAMPLEALICE0001", "actor"),
        ("AwsUser", f"arn:aws:iam::{ACCOUNT}:user/alice", "actor"),
        ("S3Bucket", "customer-data-bucket", "target"),
        ("IpAddress", "203.0.113.66", "actor"),
        ("AwsAccount", "210987654321", "actor"),  # remoteAccountDetails
        ("UserAgent", "aws-cli/2.15.0", "actor"),
    } <= entities
    frame = fixture("s3-export.jsonl").frames["finding_entities"].filter(pl.col("finding_id") == S3)
    assert frame.filter(pl.col("entity_type") == "S3Bucket").height == 1  # resource and affectedResources: one row


def test_entities_of_a_network_connection():
    entities = entities_of(fixture("s3-export.jsonl"), SSH)
    assert entities == {
        ("AwsAccount", ACCOUNT, "target"),
        ("Ec2Instance", "i-0a1b2c3d4e5f67890", "target"),
        ("IpAddress", "10.0.1.15", "target"),
        ("IpAddress", "203.0.113.10", "target"),
        ("IpAddress", "198.51.100.23", "network peer"),
    }


def test_entities_of_a_port_probe():
    peers = {e for e in entities_of(fixture("s3-export.jsonl"), PROBE) if e[2] == "network peer"}
    assert peers == {("IpAddress", "198.51.100.31", "network peer"), ("IpAddress", "198.51.100.32", "network peer")}


def test_entities_of_a_dns_request_by_an_instance_acting():
    entities = entities_of(fixture("s3-export.jsonl"), DNS)
    assert ("Domain", "x7.exfil.example.com", "network peer") in entities
    assert ("Ec2Instance", "i-0a1b2c3d4e5f67890", "actor") in entities  # resourceRole ACTOR
    assert ("IpAddress", "203.0.113.10", "actor") in entities


def test_entities_of_a_kubernetes_api_call():
    entities = entities_of(fixture("s3-export.jsonl"), K8S)
    assert entities == {
        ("AwsAccount", ACCOUNT, "target"),
        ("ContainerCluster", f"prod-eks~{ACCOUNT}~EKS", "target"),
        ("KubernetesSubject", f"dev-user~prod-eks~{ACCOUNT}", "actor"),
        ("ContainerPod", f"pod-uid-0001~prod-eks~{ACCOUNT}~EKS", "target"),
        ("ContainerImage", "public.ecr.aws/example/api:1.2", "target"),
        ("IpAddress", "203.0.113.77", "actor"),
        ("UserAgent", "kubectl/v1.29.0", "actor"),
    }


def test_entities_of_an_rds_login_attempt():
    assert ("IpAddress", "198.51.100.40", "actor") in entities_of(fixture("s3-export.jsonl"), RDS)


def test_root_principal_and_placeholder_addresses():
    result = fixture("array.json")
    assert ("AwsUser", f"arn:aws:iam::{ACCOUNT}:root", "actor") in entities_of(
        result, "gd0000000000000000000000000000009"
    )
    ec2 = parse((shared("guardduty-aws-samples") / "events" / "guardduty_ec2_event.json").read_bytes())
    addresses = {e[1] for e in entities_of(ec2, "16afba5c5c43e07c9e3e5e2e544e95df") if e[0] == "IpAddress"}
    assert addresses == {"11.111.111.1"}  # the generated 0.0.0.0 placeholders are not entities


def test_entity_rows_carry_the_findings_first_seen_and_are_unique():
    result = fixture("get-findings.json")
    entities = result.frames["finding_entities"]
    assert not entities.is_duplicated().any()
    joined = entities.join(result.frames["findings"].select("finding_id", "first_seen"), on="finding_id")
    assert (joined["first_seen"] == joined["first_seen_right"]).all()


def test_a_federated_user():
    finding = minimal(
        resource={
            "accessKeyDetails": {
                "accessKeyId": "ASIAFED",
                "principalId": f"{ACCOUNT}:bob",
                "userName": "bob",
                "userType": "FederatedUser",
            }
        },
        partition="aws-cn",
    )
    entities = entities_of(parse(finding), "f-1")
    assert ("FederatedUser", f"arn:aws-cn:sts::{ACCOUNT}:federated-user/bob", "actor") in entities


# ---------------------------------------------------------------------------------------------
# The real samples


def test_real_aws_samples():
    folder = shared("guardduty-aws-samples") / "events"
    expected = {
        "guardduty_ec2_event.json": ("16afba5c5c43e07c9e3e5e2e544e95df", "Canary:EC2/Stateless.IntegTest", []),
        "guardduty_iam_event.json": (
            "30bf285e52a1e405084ff6ec28e06e17",
            "Recon:IAMUser/MaliciousIPCaller.Custom",
            ["Discovery"],
        ),
        "guardduty_s3_event.json": ("2cbf285e52a6e74ff96f4cb3cf93296d", "PenTest:S3/ParrotLinux", ["Initial Access"]),
    }
    for name, (finding_id, finding_type, tactics) in expected.items():
        result = parse((folder / name).read_bytes())
        assert result.read == result.kept == 1, name
        row = result.frames["findings"].row(0, named=True)
        assert (row["finding_id"], row["type"], row["tactics"]) == (finding_id, finding_type, tactics)
        assert (row["severity"], row["severity_label"]) == (5.0, "Medium")
        assert row["account"] == ACCOUNT and row["region"] == "us-east-1"
    s3 = parse((folder / "guardduty_s3_event.json").read_bytes())
    entities = entities_of(s3, "2cbf285e52a6e74ff96f4cb3cf93296d")
    assert {("S3Bucket", "bucketName", "target"), ("S3Bucket", "GeneratedFindingS3Bucket", "target")} <= entities
    assert ("IpAddress", "198.51.100.0", "actor") in entities
    assert ("AwsUser", f"arn:aws:iam::{ACCOUNT}:user/GeneratedFindingUserName", "actor") in entities
    assert any("sample finding" in warning for warning in s3.warnings)


# ---------------------------------------------------------------------------------------------
# Times


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-03T10:00:00Z", datetime(2026, 3, 3, 10, tzinfo=UTC)),
        ("2026-03-03T10:00:00.123Z", datetime(2026, 3, 3, 10, 0, 0, 123000, tzinfo=UTC)),
        ("2026-03-03 10:00:00.123456789", datetime(2026, 3, 3, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2026-03-03T12:00:00+02:00", datetime(2026, 3, 3, 10, tzinfo=UTC)),
        ("2026-03-03T10:00", datetime(2026, 3, 3, 10, tzinfo=UTC)),
        (1772532000, datetime(2026, 3, 3, 10, tzinfo=UTC)),
        (1772532000000, datetime(2026, 3, 3, 10, tzinfo=UTC)),
        ("2026-13-03T10:00:00Z", None),
        ("yesterday", None),
        (True, None),
        (1e300, None),
        (None, None),
    ],
)
def test_parse_time(text, expected):
    assert guardduty.parse_time(text) == expected


def test_times_fall_back_to_created_and_updated():
    row = parse(minimal()).frames["findings"].row(0, named=True)
    assert row["first_seen"] == datetime(2026, 3, 3, 10, tzinfo=UTC)
    assert row["last_seen"] == row["updated_at"] == datetime(2026, 3, 3, 10, 30, tzinfo=UTC)


# ---------------------------------------------------------------------------------------------
# Broken and hostile input


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"type": "Recon:EC2/Portscan", "severity": 2}, "not a finding (no id)"),
        (minimal(id=17), "not a finding (no id)"),
        (minimal(id="  "), "not a finding (no id)"),
        (minimal(createdAt=None, updatedAt="soon"), "no usable time"),
        ("a string", "not a JSON object"),
        (42, "not a JSON object"),
        ({"ProductArn": "arn:aws:securityhub:::product/aws/guardduty", "Id": "x"}, "Security Hub (ASFF) finding"),
    ],
)
def test_records_that_are_not_findings_are_skipped_with_a_reason(record, reason):
    result = parse([minimal(id="good"), record])
    assert (result.read, result.kept) == (2, 1)
    assert len(result.skipped) == 1 and next(iter(result.skipped)).startswith(reason)


def test_invalid_json_is_an_error():
    for data in (b"{", b"not json", b'{"Findings": [', b"\xff\xfe{}", b"[1,\n2"):
        result = parse(data)
        assert result.error and result.read == 0, data


def test_json_lines_with_a_broken_line():
    lines = [json.dumps(minimal(id=f"f-{i}")) for i in range(3)]
    lines.insert(1, lines[0][:40])
    result = parse("\n".join(lines))
    assert (result.read, result.kept) == (4, 3)
    assert result.skipped == {"invalid JSON": 1}


def test_empty_input():
    result = parse(b" \n ")
    assert (result.read, result.kept, result.error) == (0, 0, None)
    assert result.warnings == ["empty input: no findings"]


def test_nesting_beyond_orjsons_limit_is_an_error():
    result = parse(b"[" * 5000 + b"]" * 5000)
    assert result.error and "nesting too deep" in result.error


def test_nesting_beyond_the_configured_depth_is_skipped():
    deep = '{"x":' * 900 + "{}" + "}" * 900  # orjson reads it; the depth limit stops it before any recursion
    text = f'[{json.dumps(minimal(id="ok"))}, {json.dumps(minimal(id="deep"))[:-1]}, "service": {deep}}}]'
    result = parse(text)
    assert result.kept == 1 and result.skipped == {"nesting too deep": 1}


def test_a_record_over_the_size_limit_is_skipped():
    config = Config(max_record_bytes=2000)
    result = parse([minimal(id="small"), minimal(id="big", description="x" * 5000)], config)
    assert result.kept == 1 and result.skipped == {"record too large": 1}


def test_hostile_strings_are_data():
    finding = minimal(
        title="[red]boom[/red] \x1b[2J",
        resource={"accessKeyDetails": {"userName": "../../etc/passwd", "userType": "IAMUser", "accessKeyId": "=1+2"}},
    )
    result = parse(finding)
    assert result.frames["findings"]["title"][0] == "[red]boom[/red] \x1b[2J"
    assert ("AccessKey", "=1+2", "actor") in entities_of(result, "f-1")


def test_wrong_json_types_everywhere_do_not_break_a_finding():
    finding = minimal(
        resource={"instanceDetails": {"networkInterfaces": "eth0", "instanceId": ["i-1"]}, "s3BucketDetails": {"a": 1}},
        service={
            "action": {"awsApiCallAction": [], "portProbeAction": {"portProbeDetails": [1, None, {}]}},
            "eventFirstSeen": 12,
            "detection": {"sequence": {"signals": "many", "actors": [None]}},
        },
        title=["not", "text"],
        accountId=123456789012,
    )
    result = parse(finding)
    assert result.kept == 1
    row = result.frames["findings"].row(0, named=True)
    assert row["title"] is None and row["account"] == "123456789012"


# ---------------------------------------------------------------------------------------------
# Fuzz: never raise, accounting exact.

_KEYS = [
    "id", "Id", "type", "severity", "accountId", "region", "createdAt", "updatedAt", "service", "Service",
    "resource", "action", "detail", "detail-type", "Findings", "awsApiCallAction", "remoteIpDetails",
    "ipAddressV4", "accessKeyDetails", "userType", "userName", "principalId", "instanceDetails",
    "networkInterfaces", "portProbeDetails", "detection", "sequence", "signals", "actors", "resources",
    "endpoints", "sequenceIndicators", "key", "values", "eventFirstSeen", "eksClusterDetails", "name",
    "kubernetesDetails", "s3BucketDetails", "resourceType", "uid", "ip", "affectedResources", "title",
]  # fmt: skip
_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20) | st.sampled_from(
    ["AssumedRole", "IAMUser", "Root", "ATTACK_TACTIC", "FINDING", "2026-03-03T10:00:00Z", "203.0.113.9",
     "AttackSequence:IAM/X", "Recon:EC2/Portscan", "S3_BUCKET", "EC2_INSTANCE", "ACCESS_KEY", "GuardDuty Finding"]
)  # fmt: skip
_JSON = st.recursive(
    _SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(_KEYS) | st.text(max_size=8), children, max_size=6)
    ),
    max_leaves=40,
)


def _accounting_holds(result) -> None:
    assert result.read == result.kept + sum(result.skipped.values())
    assert len(result.frames["findings"]) == result.kept
    if result.error:
        assert result.read == 0


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_fuzz_arbitrary_bytes(data):
    guardduty.sniff(data)
    _accounting_holds(guardduty.parse(data, "fuzz", CONFIG))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_JSON, st.sampled_from(["bare", "findings", "event", "lines", "finding"]))
def test_fuzz_arbitrary_json(value, shape):
    if shape == "findings":
        value = {"Findings": [value, value]}
    elif shape == "event":
        value = {"detail-type": "GuardDuty Finding", "detail": value}
    elif shape == "finding":  # a finding whose fields hold anything at all
        value = {**minimal(), **value} if isinstance(value, dict) else minimal(service=value)
    try:
        text = orjson.dumps(value)
    except (orjson.JSONEncodeError, TypeError):
        return  # NaN and friends: not JSON
    if shape == "lines":
        text = text + b"\n" + text + b"\n{broken\n"
    guardduty.sniff(text)
    result = guardduty.parse(text, "fuzz", CONFIG)
    _accounting_holds(result)
    assert result.error is None or shape == "lines"


@settings(max_examples=50, deadline=None)
@given(st.data())
def test_fuzz_mangled_fixture_findings(data):
    """Real-shaped findings with one subtree replaced by anything."""
    finding = data.draw(st.sampled_from(jsonl_findings()))
    node, path = finding, []
    while isinstance(node, dict | list) and node and data.draw(st.booleans()):
        key = data.draw(st.sampled_from(sorted(node) if isinstance(node, dict) else range(len(node))))
        path.append(key)
        node = node[key]
    if path:
        parent = finding
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = data.draw(_JSON)
    try:
        text = orjson.dumps(finding)
    except (orjson.JSONEncodeError, TypeError):
        return
    _accounting_holds(guardduty.parse(text, "fuzz", CONFIG))


def test_fixtures_use_documentation_addresses_and_fake_accounts():
    text = "".join(path.read_text() for path in GD.iterdir())
    for account in set(re.findall(r'"(\d{12})"', text)):
        assert account in (ACCOUNT, "210987654321"), account
    for address in set(re.findall(r"\b\d{1,3}(?:\.\d{1,3}){3}\b", text)):
        ip = ipaddress.ip_address(address)
        assert ip.is_private or any(ip in ipaddress.ip_network(n) for n in ("203.0.113.0/24", "198.51.100.0/24"))
