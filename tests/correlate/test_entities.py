"""Entities: the index, how a user names an entity (resolve / locate), entity search."""

from __future__ import annotations

import polars as pl
import pytest

from sleuth.config import Config
from sleuth.correlate.entities import (
    CATEGORIES,
    EntityRef,
    entity_index,
    entity_row,
    events_of,
    find_entities,
    locate,
    resolve,
    search_entities,
)
from sleuth.dataset import open_dataset
from sleuth.errors import ExitCode, NotFoundError
from sleuth.timewindow import TimeWindow
from tests.conftest import shared
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


NAMES = [
    (ALICE, "AwsUser", ALICE),
    ("alice", "AwsUser", ALICE),
    ("ALICE", "AwsUser", ALICE),  # names are case-insensitive
    ("admin", "AwsRole", ADMIN),
    (ADMIN, "AwsRole", ADMIN),
    (f"arn:aws:sts::{ACCOUNT}:assumed-role/admin/maint", "AwsRole", ADMIN),
    ("AROAADMINROLE0000001", "AwsRole", ADMIN),  # a role's principal id
    (ADMIN_SESSION, "AwsRoleSession", ADMIN_SESSION),
    ("maint", "AwsRoleSession", ADMIN_SESSION),  # a session's name
    ("AKIAALICE00000000001", "AccessKey", "AKIAALICE00000000001"),
    ("035.249.253.232", "IpAddress", "35.249.253.232"),
    ("35.249.253.232", "IpAddress", "35.249.253.232"),
    (" 203.0.113.10 ", "IpAddress", "203.0.113.10"),
    (INSTANCE, "Ec2Instance", INSTANCE),
    (f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/{INSTANCE}", "Ec2Instance", INSTANCE),
    ("my-bucket", "S3Bucket", "my-bucket"),
    ("arn:aws:s3:::my-bucket", "S3Bucket", "my-bucket"),
    ("arn:aws:s3:::my-bucket/some/key.txt", "S3Bucket", "my-bucket"),
    ("aws-sdk-go/1.44", "UserAgent", "aws-sdk-go/1.44"),
    (ACCOUNT, "AwsAccount", ACCOUNT),
    ("198.51.100.7", "IpAddress", "198.51.100.7"),  # seen only in flows
]


@pytest.mark.parametrize(("text", "entity_type", "entity_id"), NAMES)
def test_resolve(index, text, entity_type, entity_id):
    assert resolve(text, index) == EntityRef(entity_type, entity_id)


@pytest.mark.parametrize(("text", "entity_type", "entity_id"), NAMES)
def test_locate_agrees_with_resolve_on_the_whole_index(data, text, entity_type, entity_id):
    """locate indexes only the records that mention the text, and must still find the same entity."""
    found = locate(text, data.events, data.frames["flows"], data.frames["finding_entities"])
    assert found == EntityRef(entity_type, entity_id)


def test_ambiguous_name(data, index):
    for where in (lambda text: resolve(text, index), lambda text: locate(text, data.events, data.frames["flows"])):
        with pytest.raises(NotFoundError) as error:
            where("deploy")
        assert error.value.exit_code == ExitCode.NOT_FOUND
        assert "names 2 entities" in error.value.message
        assert DEPLOY_USER in error.value.message and DEPLOY_ROLE in error.value.message
        assert error.value.fix == "give the full ARN or id"
    assert resolve(DEPLOY_ROLE, index) == EntityRef("AwsRole", DEPLOY_ROLE)


def test_not_found_names_the_closest(data, index):
    for where in (lambda text: resolve(text, index), lambda text: locate(text, data.events)):
        with pytest.raises(NotFoundError) as error:
            where("alise")
        assert error.value.exit_code == ExitCode.NOT_FOUND
        assert error.value.message == "no entity 'alise' in the data"
        assert ALICE in error.value.fix
        with pytest.raises(NotFoundError) as error:
            where("zzzzzz-nothing-like-it")
        assert "sleuth search --entity" in error.value.fix


@pytest.mark.parametrize("text", ["", "   ", "ali*", "a?ice"])
def test_not_one_entity(index, text):
    with pytest.raises(NotFoundError) as error:
        resolve(text, index)
    assert "is not one entity" in error.value.message and "search --entity" in error.value.fix


def test_entity_row_counts_everything_the_entity_did(data, index):
    for entity in (EntityRef("AwsUser", ALICE), EntityRef("IpAddress", "35.249.253.232"),
                   EntityRef("Ec2Instance", INSTANCE), EntityRef("S3Bucket", "my-bucket")):  # fmt: skip
        one = entity_row(entity, data.events, data.frames["flows"])
        expected = row(index, entity.type, entity.id)
        assert one.height == 1
        assert one["events"][0] >= expected["events"] and one["failures"][0] == expected["failures"]
    alice = entity_row(EntityRef("AwsUser", ALICE), data.events).to_dicts()[0]
    assert (alice["events"], alice["failures"], alice["first_seen"], alice["last_seen"]) == (4, 2, at(0), at(3))


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


# --- search ---------------------------------------------------------------------------------------


def test_search_wildcards_names_and_cidr(data, index):
    def found(pattern):
        return [(r["entity_type"], r["entity_id"]) for r in find_entities(data, pattern).iter_rows(named=True)]

    assert found("*alice*") == [("AwsUser", ALICE), ("AccessKey", "AKIAALICE00000000001")]
    assert found("alice") == [("AwsUser", ALICE)]  # a name: the last part of the ARN
    assert found("AKIA*") == [("AccessKey", "AKIAALICE00000000001"), ("AccessKey", "AKIADEPLOY0000000001")]
    assert found("*deploy") == [("AwsRole", DEPLOY_ROLE), ("AwsUser", DEPLOY_USER)]
    assert found("i-0123?56789abcdef0") == [("AwsRoleSession", WEB_SESSION), ("Ec2Instance", INSTANCE)]  # a name
    assert found("35.249.0.0/16") == [("IpAddress", "35.249.253.232")]
    assert found("035.249.253.232") == [("IpAddress", "35.249.253.232")]
    assert found("10.0.0.0/8") == [("IpAddress", "10.0.0.5")]
    assert found("198.51.100.0/24") == [("IpAddress", "198.51.100.7")]  # from flows, with 0 events
    assert found("nothing*") == []
    # The pushed-down pattern gives what filtering the whole index gives.
    for pattern in ("*a*", "*", "10.0.0.0/8", "my-bucket", "*:ci", "35.249.*", "*253.232", "35.0.0.0/8", "*ALICE*",
                    "i-0123*", "arn:aws:s3:::*", "*admin", "a?"):  # fmt: skip
        assert find_entities(data, pattern).equals(search_entities(index, pattern))


def test_search_counts_events_and_orders_by_activity(data):
    found = find_entities(data, "*")
    assert found["events"].to_list() == sorted(found["events"].to_list(), reverse=True)
    both = found.filter(pl.col("entity_id") == "10.0.0.5").to_dicts()
    assert len(both) == 1 and both[0]["events"] == 2  # events and flows merged into one row


# --- real data ------------------------------------------------------------------------------------


def test_zero_padded_addresses_in_stratus_logs():
    data = open_dataset([str(shared("stratus-detonation-logs"))], TimeWindow(), Config())
    padded = data.events.filter(pl.col("src_ip") == "035.249.253.232").select(pl.len()).collect().item()
    assert padded > 0
    entity = locate("035.249.253.232", data.events, data.frames["flows"])
    assert entity == EntityRef("IpAddress", "35.249.253.232")
    assert locate("35.249.253.232", data.events) == entity
    row = entity_row(entity, data.events).to_dicts()[0]
    assert row["events"] == padded
