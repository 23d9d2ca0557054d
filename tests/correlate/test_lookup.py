"""Lookup: how a user names an entity (resolve / locate / entity_row), entity search."""

from __future__ import annotations

import polars as pl
import pytest

from sleuth.config import Config
from sleuth.correlate.entities import EntityRef, entity_index
from sleuth.correlate.lookup import entity_row, find_entities, locate, resolve, search_entities
from sleuth.dataset import open_dataset
from sleuth.errors import ExitCode, NotFoundError
from sleuth.timewindow import TimeWindow
from tests.conftest import shared
from tests.correlate.frames import ACCOUNT, at
from tests.correlate.test_entities import (
    ADMIN,
    ADMIN_SESSION,
    ALICE,
    DEPLOY_ROLE,
    DEPLOY_USER,
    INSTANCE,
    WEB_SESSION,
    row,
    sample,
)


@pytest.fixture(scope="module")
def data():
    return sample()


@pytest.fixture(scope="module")
def index(data):
    return entity_index(data.events, data.frames["flows"], data.frames["finding_entities"])


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
