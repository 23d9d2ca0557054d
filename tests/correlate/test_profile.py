"""Entity profiles: synthetic panels checked field by field, and the issue's acceptance on real data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from sleuth.config import Config
from sleuth.correlate.baseline import parse_scope
from sleuth.correlate.entities import EntityRef
from sleuth.correlate.profile import build_profile
from sleuth.dataset import open_dataset
from sleuth.enrich.geo import GeoResolver
from sleuth.errors import NotFoundError
from sleuth.timewindow import TimeWindow
from tests.conftest import shared
from tests.correlate.frames import ACCOUNT, at, dataset, event, flow

ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
ADMIN = f"arn:aws:iam::{ACCOUNT}:role/admin"
INSTANCE = "i-0fedcba9876543210"
SCOPE = (at(0), at(24))  # T0 .. T0 + 24 h; the baseline is the 45 days before


@pytest.fixture(scope="module")
def geo():
    return GeoResolver()


def alice_story():
    """Alice: a week of quiet history, then a day with a new address, agent and APIs, failures, a role."""
    # fmt: off
    history = [
        event("ListBuckets", time=at(-24 * day - 2), access_key="AKIAALICE1", src_ip="8.8.8.8") for day in range(7)
    ] + [
        event("CreateUser", "iam.amazonaws.com", time=at(-24 * 8), principal=f"arn:aws:iam::{ACCOUNT}:user/admin-bob",
              request={"userName": "alice"}),
        event("GetObject", time=at(-30), principal=f"arn:aws:iam::{ACCOUNT}:user/carol", user_agent="boto3/1.34",
              src_ip="1.1.1.1"),
    ]
    scope = [
        event("ListBuckets", time=at(1), access_key="AKIAALICE1", src_ip="8.8.8.8"),
        event("ConsoleLogin", "signin.amazonaws.com", time=at(2), src_ip="92.55.146.245", user_agent="Mozilla/5.0",
              response={"ConsoleLogin": "Failure"}),
        event("ConsoleLogin", "signin.amazonaws.com", time=at(2.1), src_ip="92.55.146.245", user_agent="Mozilla/5.0",
              response={"ConsoleLogin": "Success"}),
        event("GetObject", time=at(3), access_key="AKIAALICE1", src_ip="92.55.146.245", user_agent="boto3/1.34"),
        event("DeleteTrail", "cloudtrail.amazonaws.com", time=at(3.5), access_key="AKIAALICE1", src_ip="92.55.146.245",
              error_code="AccessDenied"),
        event("AssumeRole", "sts.amazonaws.com", time=at(4), access_key="AKIAALICE1", src_ip="92.55.146.245",
              request={"roleArn": ADMIN}, response={"credentials": {"accessKeyId": "ASIAADMIN1"},
                                                     "assumedRoleUser": {"assumedRoleId": "AROAADMIN:x"}}),
        event("RunInstances", "ec2.amazonaws.com", time=at(5), principal=ADMIN, session="AROAADMIN:x",
              access_key="ASIAADMIN1", src_ip="92.55.146.245",
              response={"instancesSet": {"items": [{"instanceId": INSTANCE, "privateIpAddress": "10.0.0.5",
                  "networkInterfaceSet": {"items": [{"networkInterfaceId": "eni-0aaa",
                                                     "privateIpAddress": "10.0.0.5"}]}}]}}),
    ]
    flows = [
        flow("10.0.0.5", "92.55.146.245", 40000, 22, 3 << 20, time=at(6)),
        flow("92.55.146.245", "10.0.0.5", 22, 40000, 1000, time=at(6)),
        flow("10.0.0.9", "10.0.0.5", 5000, 443, 77, time=at(6.5)),  # a private peer: still inbound
    ]
    # fmt: on
    return dataset(history + scope, flows)


@pytest.fixture(scope="module")
def alice(geo):
    return build_profile(alice_story(), "alice", Config(), geo, SCOPE)


def test_details(alice):
    details = alice.details
    assert alice.entity == EntityRef("AwsUser", ALICE)
    assert (details["type"], details["category"], details["account"]) == ("AwsUser", "Identity", ACCOUNT)
    assert (details["events"], details["failures"]) == (13, 2)  # all time; the failed sign-in counts
    assert details["first_seen"] == at(-24 * 6 - 2) and details["last_seen"] == at(4)
    assert details["created_by"] == f"arn:aws:iam::{ACCOUNT}:user/admin-bob"  # its CreateUser
    assert details["access_keys"] == ["AKIAALICE1"]


def test_volume_against_the_baseline(alice):
    volume = alice.volume
    assert volume.height == 24 and volume["bucket"][0] == at(0)
    assert (int(volume["success"].sum()), int(volume["failure"].sum())) == (4, 2)
    # 7 calls over the baseline from alice's first call (6 days and 2 hours before the scope): per hour.
    assert volume["baseline"][0] == round(7 / (6 * 24 + 2), 2)


def test_apis_addresses_and_agents(alice):
    apis = {row["api"]: (row["success"], row["failure"]) for row in alice.apis.iter_rows(named=True)}
    assert apis == {
        "signin:ConsoleLogin": (1, 1), "s3:ListBuckets": (1, 0), "s3:GetObject": (1, 0),
        "cloudtrail:DeleteTrail": (0, 1), "sts:AssumeRole": (1, 0),
    }  # fmt: skip
    addresses = {row["ip"]: row for row in alice.addresses.iter_rows(named=True)}
    assert addresses["92.55.146.245"]["calls"] == 5 and addresses["92.55.146.245"]["failure"] == 2
    assert addresses["92.55.146.245"]["country_code"] == "RO"
    assert addresses["8.8.8.8"]["calls"] == 1
    assert set(alice.user_agents["user_agent"]) == {"aws-cli/2.15.0", "Mozilla/5.0", "boto3/1.34"}


def test_newly_observed(alice):
    new = {name: frame for name, frame in alice.new.items()}
    assert new["addresses"].select("value", "count", "new_for_account").rows() == [("92.55.146.245", 5, True)]
    assert new["geolocations"]["value"].to_list() == ["Romania"]
    assert new["geolocations"]["addresses"].to_list() == [["92.55.146.245"]]
    # boto3 is new for alice but carol used it in the baseline: not new for the account.
    agents = dict(new["user_agents"].select("value", "new_for_account").rows())
    assert agents == {"Mozilla/5.0": True, "boto3/1.34": False}
    calls = dict(new["api_calls"].select("value", "new_for_account").rows())
    assert calls == {"signin:ConsoleLogin": True, "s3:GetObject": False, "cloudtrail:DeleteTrail": True,
                     "sts:AssumeRole": True}  # fmt: skip
    assert "s3:ListBuckets" not in calls  # in her baseline


def test_resource_interaction_and_launched_instances(alice):
    roles = alice.roles.to_dicts()
    assert [(r["kind"], r["caller"], r["role"], r["keys"]) for r in roles] == [
        ("assume_role", ALICE, ADMIN, ["ASIAADMIN1"])
    ]
    assert roles[0]["events_with_credentials"] == 1  # the RunInstances made with the session's key
    # The instance launched with the credentials she obtained, and its flows.
    assert alice.instances.select("instance_id", "interface_id", "private_ip").rows() == [
        (INSTANCE, "eni-0aaa", "10.0.0.5")
    ]
    flows = {(r["peer"], r["direction"], r["remote_port"]): r for r in alice.flows.iter_rows(named=True)}
    out = flows[("92.55.146.245", "outbound", 22)]
    assert (out["bytes_out"], out["bytes_in"], out["local_port"]) == (3 << 20, 0, 40000)
    assert flows[("92.55.146.245", "inbound", 22)]["bytes_in"] == 1000
    assert flows[("10.0.0.9", "inbound", 5000)]["bytes_in"] == 77  # 10.0.0.9 is not the instance
    assert alice.flows["peer"][0] == "92.55.146.245"  # the largest first


def test_instance_profile(geo):
    profile = build_profile(alice_story(), INSTANCE, Config(), geo, SCOPE)
    details = profile.details
    assert profile.entity == EntityRef("Ec2Instance", INSTANCE)
    assert details["created_by"] == ADMIN
    assert (details["interfaces"], details["private_ips"]) == (["eni-0aaa"], ["10.0.0.5"])
    assert details["last_seen"] == at(6.5)  # its flows count as activity
    assert int(profile.flows["bytes_out"].sum()) == 3 << 20


def test_address_profile(geo):
    profile = build_profile(alice_story(), "92.55.146.245", Config(), geo, SCOPE)
    assert profile.entity == EntityRef("IpAddress", "92.55.146.245")
    assert profile.details["principals"] == [ADMIN, ALICE]
    rows = {(r["peer"], r["direction"]): r for r in profile.flows.iter_rows(named=True)}
    assert rows[("10.0.0.5", "inbound")]["bytes_in"] == 3 << 20  # what the instance sent it
    assert rows[("10.0.0.5", "inbound")]["local_port"] == 22
    assert rows[("10.0.0.5", "outbound")]["bytes_out"] == 1000


def test_spikes_in_a_profile(geo):
    # 30 days at 2 GetSecretValue an hour, then 300 in the scope: a spike; its failures too.
    # fmt: off
    rows = [event("GetSecretValue", "secretsmanager.amazonaws.com", time=at(-h - 0.5)) for h in range(0, 30 * 24, 1)]
    rows += [event("GetSecretValue", "secretsmanager.amazonaws.com", time=at(-h - 0.7), error_code="AccessDenied")
             for h in range(0, 30 * 24, 24)]
    rows += [event("GetSecretValue", "secretsmanager.amazonaws.com", time=at(h / 20)) for h in range(300)]
    rows += [event("GetSecretValue", "secretsmanager.amazonaws.com", time=at(h / 20), error_code="AccessDenied")
             for h in range(40)]
    # fmt: on
    profile = build_profile(dataset(rows), "alice", Config(), geo, SCOPE)
    spike = profile.increased_volume.to_dicts()
    assert [(s["api"], s["scope_count"], s["baseline_count"]) for s in spike] == [
        ("secretsmanager:GetSecretValue", 340, 750)
    ]
    assert spike[0]["expected"] == pytest.approx(750 / (30 * 24) * 24, rel=0.01)
    failures = profile.failure_spikes.to_dicts()
    assert [(f["scope_count"], f["baseline_count"]) for f in failures] == [(40, 30)]
    assert not profile.notes


def test_notes_and_unknown_entity(geo):
    profile = build_profile(alice_story(), "alice", Config(), geo, (at(100), at(124)))
    assert any("no activity in the scope window" in note for note in profile.notes)
    with pytest.raises(NotFoundError):
        build_profile(alice_story(), "mallory", Config(), geo, SCOPE)


# --- acceptance on real data ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def invictus():
    return open_dataset([str(shared("invictus-aws-dataset"))], TimeWindow(), Config())


@pytest.fixture(scope="module")
def bert_jan(invictus, geo):
    # The detonation ran between about 11:54 and 12:38 on 2023-07-10: the scope holds all of it.
    return build_profile(invictus, "bert-jan", Config(), geo, parse_scope("2023-07-10T11:00..2023-07-10T13:00"))


def test_bert_jan_user_agents(bert_jan):
    assert bert_jan.entity == EntityRef("AwsUser", "arn:aws:iam::123837392027:user/bert-jan")
    stratus = [ua for ua in bert_jan.user_agents["user_agent"] if ua.startswith("stratus-red-team_")]
    assert len(stratus) >= 20
    new_agents = bert_jan.new["user_agents"]["value"].to_list()
    assert set(stratus) <= set(new_agents)  # no baseline: all of it is new


def test_bert_jan_roles_touched(bert_jan):
    assumed = bert_jan.roles.filter(pl.col("kind") == "assume_role")
    roles = {role.rsplit("/", 1)[1] for role in assumed["role"]}
    assert {
        "stratus-red-team-ec2-get-password-data-role", "stratus-red-team-get-usr-data-role",
        "stratus-red-team-leave-org-role",
    } <= roles  # fmt: skip
    assert all(role.startswith("stratus-red-team-") for role in roles)
    assert set(assumed["caller"]) == {bert_jan.entity.id}
    assert (assumed["keys"].list.len() > 0).all()  # each assumption's temporary keys
    # The access keys bert-jan made for Stratus' backdoor users.
    made = bert_jan.roles.filter(pl.col("kind") == "access_key")["issued_to"].to_list()
    assert "arn:aws:iam::123837392027:user/malicious-iam-user" in made


def test_bert_jan_failures(bert_jan):
    assert bert_jan.details["failures"] > 100
    assert int(bert_jan.volume["failure"].sum()) == bert_jan.details["failures"]  # all of it in the scope
    failing = dict(bert_jan.apis.filter(pl.col("failure") > 0).select("api", "failure").rows())
    assert {"cloudtrail:StopLogging", "cloudtrail:DeleteTrail", "ssm:DescribeParameters", "sts:AssumeRole"} <= set(
        failing
    )
    assert failing["cloudtrail:StopLogging"] == 3


@pytest.fixture(scope="module")
def panther():
    return open_dataset([str(shared("panther-samples/compromised-root-creds"))], TimeWindow(), Config())


PANTHER_SCOPE = (datetime(2020, 10, 30, tzinfo=UTC), datetime(2020, 11, 2, tzinfo=UTC))
ATTACKER = "92.55.146.245"


@pytest.fixture(scope="module")
def root(panther, geo):
    return build_profile(panther, "root", Config(), geo, PANTHER_SCOPE)


def test_root_new_address_and_geolocation(root):
    assert root.entity == EntityRef("AwsUser", "arn:aws:iam::493859302102:root")
    new_ips = root.new["addresses"]
    assert new_ips["value"].to_list() == [ATTACKER] and new_ips["new_for_account"].to_list() == [True]
    geo = root.new["geolocations"].to_dicts()
    assert len(geo) == 1 and geo[0]["addresses"] == [ATTACKER]
    assert geo[0]["value"] == "Romania" and geo[0]["new_for_account"]
    # The 2020-10-27 (and earlier) logins from 71.253.251.71 are the baseline, not new.
    assert "71.253.251.71" not in root.new["addresses"]["value"].to_list()
    assert root.addresses["ip"].to_list() == [ATTACKER]
    assert root.details["first_seen"] == datetime(2020, 10, 15, 6, tzinfo=UTC)


def test_root_default_scope_is_the_span_of_its_findings(panther, geo):
    """Without --scope, the profile opens on the root's findings (Detective opens it at the finding's
    time), so the attacker's failed sign-ins of 2020-10-30 are in the scope, not in the baseline."""
    profile = build_profile(panther, "root", Config(), geo)
    assert profile.scope.start <= datetime(2020, 10, 30, 23, 25, tzinfo=UTC) < profile.scope.end
    assert profile.new["addresses"]["value"].to_list() == [ATTACKER]
    assert "sleuth" in profile.findings["producer"].to_list() and any("span" in n for n in profile.notes)


def test_bert_jan_related_findings_are_sleuth_findings_too(bert_jan):
    titles = bert_jan.findings.filter(pl.col("producer") == "sleuth")["title"].to_list()
    assert any("StopLogging" in t or "CloudTrail" in t for t in titles), titles


def test_root_failures_include_failed_console_sign_ins(root):
    failing = dict(root.apis.select("api", "failure").rows())
    assert failing["signin:ConsoleLogin"] == 3  # no errorCode: responseElements says Failure
    assert failing["cloudtrail:StopLogging"] == 1


def test_root_shows_the_instance_and_its_flows_to_the_attacker(root):
    made = dict(root.roles.filter(pl.col("kind") == "access_key").select("issued_to", "keys").rows())
    assert made["arn:aws:iam::493859302102:user/tracy_stone"] == ["AKIASWJJJ66ZZZII4IYY"]
    assert made["arn:aws:iam::493859302102:root"] == ["AKIA5ZZZK44445XXFFVB"]  # the root key
    launched = root.instances.to_dicts()
    assert [(i["instance_id"], i["interface_id"], i["private_ip"]) for i in launched] == [
        ("i-05261ffb46217cdc3", "eni-0b13344793d4fde67", "172.31.77.31")
    ]
    assert launched[0]["principal"] == "arn:aws:iam::493859302102:user/tracy_stone"
    ssh = root.flows.filter((pl.col("peer") == ATTACKER) & (pl.col("remote_port") == 22)).to_dicts()
    assert [(f["direction"], f["bytes_out"], f["accepted"]) for f in ssh] == [("outbound", 2 << 20, 2)]


def test_attacker_address_profile(panther, geo):
    profile = build_profile(panther, ATTACKER, Config(), geo, PANTHER_SCOPE)
    assert profile.entity == EntityRef("IpAddress", ATTACKER)
    assert profile.addresses["country_code"].to_list() == ["RO"]
    flows = profile.flows.filter(pl.col("peer") == "172.31.77.31")
    # From the attacker's side: the instance connected to its port 22 and sent 2 MiB.
    received = flows.filter((pl.col("direction") == "inbound") & (pl.col("local_port") == 22)).to_dicts()
    assert [(f["bytes_in"], f["remote_port"]) for f in received] == [(2 << 20, 38316)]
    assert int(flows["bytes_in"].sum() + flows["bytes_out"].sum()) == (2 << 20) + 2 * 7119


def test_instance_profile_from_its_launch(panther, geo):
    profile = build_profile(panther, "i-05261ffb46217cdc3", Config(), geo, PANTHER_SCOPE)
    assert profile.details["created_by"] == "arn:aws:iam::493859302102:user/tracy_stone"
    assert profile.details["interfaces"] == ["eni-0b13344793d4fde67"]
    out = profile.flows.filter((pl.col("peer") == ATTACKER) & (pl.col("direction") == "outbound"))
    assert out.filter(pl.col("remote_port") == 22)["bytes_out"].to_list() == [2 << 20]
    assert profile.details["last_seen"] == datetime(2020, 11, 1, 23, 1, tzinfo=UTC)  # its last flow


def test_the_baseline_window_ends_where_the_scope_starts(root):
    assert root.scope.start == PANTHER_SCOPE[0] and root.scope.end == PANTHER_SCOPE[1]
    assert root.scope.baseline_start == PANTHER_SCOPE[0] - timedelta(days=45)
