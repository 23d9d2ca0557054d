"""Investigations on real attack data: the first intrusion, the TTPs, the transfer and the remediation."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from sleuth.attack import canonical_tactic
from sleuth.config import Config
from sleuth.correlate.investigate import investigate
from sleuth.dataset import open_dataset
from sleuth.enrich.geo import GeoResolver
from sleuth.errors import NotFoundError
from sleuth.timewindow import TimeWindow
from tests.conftest import INCIDENT, shared

GEO = GeoResolver()


def load(path) -> object:
    return open_dataset([str(path)], TimeWindow(), Config())


def of_type(investigation, kind: str) -> list[dict]:
    return [item for item in investigation.indicators if item["type"] == kind]


@pytest.fixture(scope="module")
def panther():
    return load(shared("panther-samples/compromised-root-creds"))


@pytest.mark.parametrize("target", ["root", "92.55.146.245"])
def test_compromised_root_story(panther, target):
    inv = investigate(panther, target, Config(), GEO)
    first = inv.first_intrusion
    # The source, and the first intrusion: failed sign-ins on 2020-10-30/31, then the success on 2020-11-01.
    assert first["source_ip"] == "92.55.146.245" and first["from_attacker_address"]
    assert first["time"].date() == date(2020, 10, 30) and first["outcome"] == "failure"
    assert first["entry_time"].date() == date(2020, 11, 1) and first["entry_action"] == "ConsoleLogin"
    assert first["failed_attempts_before"] == 3 and "password guessing" in first["vector"]
    assert "92.55.146.245" in inv.summary
    # Persistence: the key and the new user.
    lineage = of_type(inv, "CREDENTIAL_LINEAGE")
    assert {"AKIASWJJJ66ZZZII4IYY"} <= {i["issued_key"] for i in lineage}
    assert "arn:aws:iam::493859302102:user/tracy_stone" in {i["issued_to"] for i in lineage}
    persistence = {i["api_name"] for i in of_type(inv, "TTP_OBSERVED") if i["tactic"] == "Persistence"}
    assert {"iam:CreateAccessKey", "iam:CreateUser"} <= persistence
    # Tampering (attempted: the trail was not the organization's) and the transfer out.
    tampering = of_type(inv, "LOGGING_TAMPERING")
    assert [(i["api_name"], i["succeeded"]) for i in tampering] == [("StopLogging", False)]
    out = [i for i in of_type(inv, "NETWORK_TRANSFER") if i["direction"] == "outbound"]
    assert sum(i["bytes"] for i in out if i["peer_address"] == "92.55.146.245") >= 2 * 1024 * 1024
    # New geolocation against the legitimate 71.253.251.71 sign-ins of October.
    assert any(
        i["ip_address"] == "92.55.146.245" and i["is_new_for_entire_account"] for i in of_type(inv, "NEW_GEOLOCATION")
    )
    # Remediation deactivates the attacker's key, with the real ids.
    commands = [step["command"] for step in inv.remediation]
    assert (
        "aws iam update-access-key --user-name tracy_stone --access-key-id AKIASWJJJ66ZZZII4IYY --status Inactive"
        in commands
    )
    # StopLogging failed (not the organization's trail): nothing to restore, and the summary says so
    assert not any("cloudtrail start-logging" in c for c in commands)
    assert "Logging tampering attempted and failed: StopLogging (NotOrganizationMasterAccountException)" in inv.summary
    assert inv.severity_label == "Critical" and inv.severity_reasons
    # What it acted on, from request parameters and the launch's response (these records carry no resources).
    assert {"userName: tracy_stone", "name: acme-cloudtrail-us-east-1", "instanceId: i-05261ffb46217cdc3"} <= set(
        inv.resources["resource"]
    )


def test_invictus_bert_jan_ttps_span_six_tactics():
    inv = investigate(load(shared("invictus-aws-dataset")), "bert-jan", Config(), GEO)
    tactics = {i["tactic"] for i in of_type(inv, "TTP_OBSERVED")}
    assert len(tactics) >= 6, tactics
    # Tampering that failed is told apart, and only what succeeded is restored.
    assert "Logging tampering succeeded: DeleteFlowLogs, DeleteLogGroup, DeleteTrail, PutEventSelectors." in inv.summary
    assert "LeaveOrganization (AccessDenied)" in inv.summary and "StopLogging (TrailNotFoundException)" in inv.summary
    restored = [step["title"] for step in inv.remediation if step["title"].startswith("Restore logging")]
    assert restored and not any("organization" in title or "stopped" in title for title in restored)


STRATUS = (
    sorted(shared("stratus-detonation-logs").rglob("aws.*.json")) if shared("stratus-detonation-logs").exists() else []
)


@pytest.mark.parametrize("path", STRATUS, ids=lambda p: p.name)
def test_stratus_principal_shows_the_file_tactic(path: Path):
    dataset = load(path)
    events = dataset.events.collect()
    actors = events.filter(pl.col("principal").str.starts_with("arn:"))["principal"].value_counts(sort=True)
    inv = investigate(dataset, actors[0, 0], Config(), GEO)
    expected = canonical_tactic(path.name.split(".")[1])
    seen = {i["tactic"] for i in of_type(inv, "TTP_OBSERVED")}
    assert expected in seen, (expected, seen)  # in the report's TTP table, not only in a finding's metadata


def test_a_finding_id_and_a_group_id_are_targets():
    dataset = load(INCIDENT)
    by_entity = investigate(dataset, "alice", Config(), GEO)
    finding = by_entity.findings.row(0, named=True)
    by_finding = investigate(dataset, finding["finding_id"], Config(), GEO)
    assert by_finding.target["kind"] == "finding"
    assert by_finding.scope.start <= finding["first_seen"] and by_finding.scope.end >= finding["last_seen"]
    group = by_entity.groups[0]["id"]
    by_group = investigate(dataset, group[:12], Config(), GEO)
    assert by_group.target == {**by_group.target, "kind": "group", "id": group}


def test_an_unknown_target_suggests_the_closest():
    with pytest.raises(NotFoundError) as caught:
        investigate(load(INCIDENT), "alicee", Config(), GEO)
    assert caught.value.exit_code == 4 and "user/alice" in caught.value.fix


def test_an_instance_brings_its_launcher_and_its_flows(panther):
    """The instance the attacker's user launched: the key that launched it, the attacker's address, and
    the instance's flows found through the network interface it was launched with."""
    inv = investigate(panther, "i-05261ffb46217cdc3", Config(), GEO)
    assert "92.55.146.245" in inv.summary and "AKIASWJJJ66ZZZII4IYY" in {e["id"] for e in inv.entities}
    out = [i for i in of_type(inv, "NETWORK_TRANSFER") if i["direction"] == "outbound"]
    assert {i["peer_address"] for i in out if i["accepted"]} == {"92.55.146.245"}
    # the instance's rejected call to the VPC router is outbound from the instance, not into the router
    (router,) = [i for i in of_type(inv, "NETWORK_TRANSFER") if i["peer_address"] == "172.31.77.1"]
    assert (router["direction"], router["local_address"], router["local_port"]) == ("outbound", "172.31.77.31", 443)
    inbound_ssh = [i for i in of_type(inv, "NETWORK_TRANSFER") if i["direction"] == "inbound" and i["local_port"] == 22]
    assert [i["peer_address"] for i in inbound_ssh] == ["92.55.146.245"]
    # nothing left the network to the router: the summary and the blocking step name only the attacker
    assert "172.31.77.1," not in inv.summary and "bytes went out to 92.55.146.245." in inv.summary
    assert not any("172.31.77.1/32" in step["command"] for step in inv.remediation)
    assert any(step["applies"] == "instance" and "i-05261ffb46217cdc3" in step["command"] for step in inv.remediation)


def test_the_instance_address_is_a_target_too(panther):
    """An internal address: the instance launched with it, its launcher's key, and its flows."""
    inv = investigate(panther, "172.31.77.31", Config(), GEO)
    assert "i-05261ffb46217cdc3" in {e["id"] for e in inv.entities}
    assert "AKIASWJJJ66ZZZII4IYY" in {e["id"] for e in inv.entities}
    out = [i for i in of_type(inv, "NETWORK_TRANSFER") if i["direction"] == "outbound" and i["external_peer"]]
    assert {i["peer_address"] for i in out} == {"92.55.146.245"}
    assert any("AKIASWJJJ66ZZZII4IYY" in step["command"] for step in inv.remediation)


def test_a_guardduty_finding_without_events_keeps_its_severity():
    """A GuardDuty export alone: the finding itself is the report's evidence and sets its severity."""
    findings = load(shared("panther-samples/guardduty-findings.jsonl"))
    inv = investigate(findings, "8c258d654378414b9bc26f61a93eb816", Config(), GEO)
    assert inv.severity_label == "Critical"
    assert inv.findings["finding_id"].to_list() == ["8c258d654378414b9bc26f61a93eb816"]
    assert "Potential credential compromise" in inv.summary


def test_an_instance_own_public_address_is_not_the_attacker():
    """GuardDuty names the instance's public address as part of the target resource, not as an actor."""
    samples = load(shared("guardduty-aws-samples"))
    for target in ("i-05746eb48123455e0", "16afba5c5c43e07c9e3e5e2e544e95df"):  # the instance, its finding
        inv = investigate(samples, target, Config(), GEO)
        assert "11.111.111.1" not in inv.summary, target
        assert not any("11.111.111.1" in step["command"] for step in inv.remediation), target


def test_an_account_is_no_target(panther):
    from sleuth.errors import UsageError

    with pytest.raises(UsageError) as caught:
        investigate(panther, "493859302102", Config(), GEO)
    assert caught.value.exit_code == 2 and "sleuth summary" in caught.value.fix


def test_a_user_agent_is_investigated_through_whoever_used_it():
    inv = investigate(load(INCIDENT), "python-requests/2.31.0", Config(), GEO)
    assert inv.severity_label == "Critical" and "user/alice" in inv.summary and "203.0.113.66" in inv.summary


def test_flows_are_oriented_from_all_the_interface_flows(tmp_path):
    """Investigating the peer selects only the flows with it, where both IPv6 ends are equally common:
    the instance's own address comes from all its interface's flows, so the 50 MB leave, not arrive."""
    header = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action"
    instance, attacker, dns = "2600:1f18:abcd:1::10", "2a01:4f8:c0c:1::66", "2606:4700:4700::1111"
    eni = "2 123456789010 eni-0aaa1111bbbb22223"
    lines = [
        f"{eni} {instance} {attacker} 40000 443 6 40000 52428800 1700000000 1700000060 ACCEPT",
        f"{eni} {attacker} {instance} 443 40000 6 2000 120000 1700000000 1700000060 ACCEPT",
        f"{eni} {instance} {dns} 50000 53 17 2 200 1700000100 1700000160 ACCEPT",
        f"{eni} {dns} {instance} 53 50000 17 2 300 1700000100 1700000160 ACCEPT",
    ]
    lines = [f"{line} OK" for line in lines]
    header += " log-status"
    (tmp_path / "flows.log").write_text("\n".join([header, *lines]) + "\n")
    inv = investigate(load(tmp_path / "flows.log"), attacker, Config(), GEO)
    out = [i for i in of_type(inv, "NETWORK_TRANSFER") if i["direction"] == "outbound"]
    assert [(i["local_address"], i["peer_address"], i["bytes"]) for i in out] == [(instance, attacker, 52428800)]
    assert "52,428,800 bytes went out to 2a01:4f8:c0c:1::66." in inv.summary
