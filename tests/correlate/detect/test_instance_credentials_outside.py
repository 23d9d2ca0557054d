"""Instance role credentials used away from their instance."""

from __future__ import annotations

from sleuth.correlate.detect import instance_credentials_outside
from tests.conftest import shared
from tests.correlate.detect.behaviour import ACCOUNT, FakeGeo, at, context, event, flow, real, roles, single

ROLE = f"arn:aws:iam::{ACCOUNT}:role/web"
INSTANCE = "i-0123456789abcdef0"
SESSION = f"AROAWEB:{INSTANCE}"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"


def call(ip: str, minutes: float = 0, session: str = SESSION, action: str = "DescribeInstances") -> dict:
    return event(action, "ec2.amazonaws.com", time=at(minutes=minutes), principal=ROLE, session=session, src_ip=ip)


def test_a_session_used_from_an_address_a_person_uses():
    rows = [call("3.3.3.3", m) for m in range(5)] + [
        call("198.51.100.7", 10),
        call("198.51.100.7", 11, action="ListBuckets"),
    ]
    rows.append(event("GetCallerIdentity", "sts.amazonaws.com", principal=ALICE, src_ip="198.51.100.7"))
    hit = single(instance_credentials_outside.run(context(rows)))
    assert (hit["key_type"], hit["key_id"]) == ("AwsRoleSession", SESSION)
    assert hit["count"] == 2 and len(hit["event_ids"]) == 2
    assert hit["title"] == f"Credentials of instance {INSTANCE} (web) used from 198.51.100.7"
    assert "also used by alice" in hit["details"]
    assert {("Ec2Instance", INSTANCE, "target"), ("IpAddress", "198.51.100.7", "actor"), ("AwsUser", ALICE, "actor"),
            ("AwsRole", ROLE, "actor")} <= roles(hit)  # fmt: skip


def test_nat_addresses_service_hosts_and_other_sessions_fire_nothing():
    nat = "52.1.1.1"  # shared by two instances (a NAT gateway) and, here, a user too
    rows = [
        call(nat),
        call(nat, session="AROAWEB:i-0fedcba9876543210"),
        event("ListUsers", principal=ALICE, src_ip=nat),
    ]
    rows += [call("ec2.amazonaws.com"), call("AWS Internal")]
    rows += [event("ListUsers", principal=ALICE, src_ip="198.51.100.7"),
             call("198.51.100.7", session="AROAWEB:botocore-session-1")]  # not an instance session  # fmt: skip
    assert instance_credentials_outside.run(context(rows)).is_empty()


def test_with_geolocation_an_address_outside_amazon():
    geo = FakeGeo({"3.3.3.3": ("public", "US", "AMAZON-02", 37.1, -95.7),
                   "81.2.69.160": ("public", "GB", "Andrews & Arnold Ltd", 54.0, -2.0)})  # fmt: skip
    rows = [call("3.3.3.3"), call("81.2.69.160", 1)]
    hit = single(instance_credentials_outside.run(context(rows, geo=geo)))
    assert "81.2.69.160 (GB)" in hit["title"] and "outside AWS (Andrews & Arnold Ltd)" in hit["details"]
    assert hit["severity"] == 7.75
    assert instance_credentials_outside.run(context(rows)).is_empty()  # without geolocation: no signal


def test_with_flow_logs_a_private_address_that_is_not_the_instance():
    flows = [flow("10.0.0.5", "52.94.1.1", 40000 + i, 443, 1000, instance_id=INSTANCE) for i in range(3)]
    rows = [call("10.0.0.5"), call("10.0.0.99", 1)]
    hit = single(instance_credentials_outside.run(context(rows, flows)))
    assert "10.0.0.99" in hit["title"] and "another host in the VPC" in hit["details"]
    assert instance_credentials_outside.run(context(rows)).is_empty()  # without flows nothing says whose it is


def test_stratus_steal_instance_credentials():
    path = shared("stratus-detonation-logs") / "docs" / "detonation-logs"
    hit = single(
        instance_credentials_outside.run(real(path / "aws.credential-access.ec2-steal-instance-credentials.json"))
    )
    assert hit["key_id"] == "AROALHCCSKSM395EGX3XN:i-786a3A8B5C0d92eF4"
    assert "also used by christophe" in hit["details"] and hit["severity"] >= 7.0


def test_invictus_steal_instance_credentials():
    hit = single(instance_credentials_outside.run(real(shared("invictus-aws-dataset"))))
    assert hit["key_id"].endswith(":i-0dbc91f429e48eeed") and "192.168.10.20" in hit["title"]
    assert "bert-jan" in hit["details"]
