"""Entities: the vocabulary and the index (what each event and flow involves), events_of."""

from __future__ import annotations

import polars as pl
import pytest

from sleuth.correlate.entities import CATEGORIES, EntityRef, entity_index, events_of
from tests.correlate.frames import ACCOUNT, at, dataset, event, flow

ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
ADMIN = f"arn:aws:iam::{ACCOUNT}:role/admin"
WEB = f"arn:aws:iam::{ACCOUNT}:role/web"
DEPLOY_USER = f"arn:aws:iam::{ACCOUNT}:user/deploy"
DEPLOY_ROLE = f"arn:aws:iam::{ACCOUNT}:role/deploy"
INSTANCE = "i-0123456789abcdef0"
ADMIN_SESSION = "AROAADMINROLE0000001:maint"
WEB_SESSION = f"AROAWEBROLE000000001:{INSTANCE}"


def sample():
    # fmt: off
    return dataset(
        [
            event("ListBuckets", time=at(0), access_key="AKIAALICE00000000001"),
            event("GetObject", time=at(1), access_key="AKIAALICE00000000001", resources=["arn:aws:s3:::my-bucket"]),
            event("ConsoleLogin", "signin.amazonaws.com", time=at(2), user_agent="Mozilla/5.0",
                  response={"ConsoleLogin": "Failure"}),  # a failure without an errorCode
            event("AssumeRole", "sts.amazonaws.com", time=at(3), access_key="AKIAALICE00000000001",
                  resources=[ADMIN], error_code="AccessDenied"),
            event("StopLogging", "cloudtrail.amazonaws.com", time=at(4), principal=ADMIN, session=ADMIN_SESSION,
                  access_key="ASIAADMIN00000000001", src_ip="035.249.253.232"),
            event("DescribeInstances", "ec2.amazonaws.com", time=at(5), principal=WEB, session=WEB_SESSION,
                  access_key="ASIAWEB0000000000001", src_ip="10.0.0.5", user_agent="aws-sdk-go/1.44"),
            event("StopInstances", "ec2.amazonaws.com", time=at(6), principal=WEB, session=WEB_SESSION,
                  access_key="ASIAWEB0000000000001", src_ip="10.0.0.5",
                  resources=[f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/{INSTANCE}"]),
            event("ListUsers", "iam.amazonaws.com", time=at(7), principal=DEPLOY_USER,
                  access_key="AKIADEPLOY0000000001", resources=[DEPLOY_USER, DEPLOY_USER]),
            event("ListRoles", "iam.amazonaws.com", time=at(8), principal=DEPLOY_ROLE,
                  session="AROADEPLOY0000000001:ci", access_key="ASIADEPLOY0000000001"),
        ],
        [flow("10.0.0.5", "198.51.100.7", 40000, 443, 5000, time=at(5), instance_id=INSTANCE)],
    )
    # fmt: on


@pytest.fixture(scope="module")
def data():
    return sample()


@pytest.fixture(scope="module")
def index(data):
    return entity_index(data.events, data.frames["flows"], data.frames["finding_entities"])


def row(index: pl.DataFrame, entity_type: str, entity_id: str) -> dict:
    rows = index.filter((pl.col("entity_type") == entity_type) & (pl.col("entity_id") == entity_id))
    assert len(rows) >= 1, f"no {entity_type} {entity_id}"
    return rows.to_dicts()[0]


def test_index_has_every_entity_type(index):
    assert set(index["entity_type"]) == {
        "AwsUser", "AwsRole", "AwsRoleSession", "AccessKey", "IpAddress", "UserAgent", "AwsAccount", "Ec2Instance",
        "S3Bucket",
    }  # fmt: skip
    alice = row(index, "AwsUser", ALICE)
    assert (alice["events"], alice["failures"], alice["account"]) == (4, 2, ACCOUNT)  # the console failure counts
    assert row(index, "AwsRoleSession", ADMIN_SESSION)["owner"] == ADMIN  # a session's owner is its role
    assert row(index, "AccessKey", "ASIAWEB0000000000001")["owner"] == WEB
    assert row(index, "AwsRole", ADMIN)["events"] == 2  # its own call, and the AssumeRole naming it
    assert row(index, "IpAddress", "35.249.253.232")["events"] == 1  # without the leading zero
    assert row(index, "S3Bucket", "my-bucket")["events"] == 1
    assert row(index, "Ec2Instance", INSTANCE)["events"] == 2  # its role session's call, and the call on it
    assert row(index, "AwsAccount", ACCOUNT)["events"] == 9
    assert row(index, "AwsUser", DEPLOY_USER)["events"] == 1  # caller and (twice) resource of one event


def test_categories():
    assert EntityRef("AwsUser", ALICE).category == "Identity"
    assert EntityRef("AccessKey", "AKIA").category == "Identity"
    assert EntityRef("IpAddress", "1.2.3.4").category == "Network"
    assert EntityRef("UserAgent", "x").category == "Network"
    assert EntityRef("S3Bucket", "b").category == "Storage"
    assert EntityRef("Ec2Instance", INSTANCE).category == "Compute"
    assert EntityRef("Finding", "f").category == "Finding"
    assert EntityRef("Something", "x").category == "Other"
    assert EntityRef("AwsRole", ADMIN).key == f"AwsRole:{ADMIN}"
    assert {"AwsAccount", "AwsUser", "AwsRole", "AwsRoleSession", "IpAddress", "S3Bucket", "Ec2Instance"} <= set(
        CATEGORIES
    )


def test_events_of(data):
    events = data.events.collect()
    count = {
        EntityRef("AwsUser", ALICE): 4,
        EntityRef("AwsRoleSession", WEB_SESSION): 2,
        EntityRef("AccessKey", "AKIAALICE00000000001"): 3,
        EntityRef("IpAddress", "35.249.253.232"): 1,
        EntityRef("UserAgent", "Mozilla/5.0"): 1,
        EntityRef("Ec2Instance", INSTANCE): 2,  # its session's calls, and the call on its ARN
        EntityRef("S3Bucket", "my-bucket"): 1,
        EntityRef("AwsAccount", ACCOUNT): 9,
        EntityRef("Finding", "x"): 0,
    }
    for entity, n in count.items():
        assert events.filter(events_of(entity)).height == n, entity
