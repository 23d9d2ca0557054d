"""Credential lineage: who obtained which credentials, role chains, and where the credentials were used."""

from __future__ import annotations

import polars as pl
import pytest

from sleuth.config import Config
from sleuth.correlate.lineage import chains, credential_links, with_usage
from sleuth.dataset import open_dataset
from sleuth.timewindow import TimeWindow
from tests.conftest import shared
from tests.correlate.frames import ACCOUNT, at, event, events_frame

OTHER = "210987654321"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
CAROL = f"arn:aws:iam::{ACCOUNT}:user/carol"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
ADMIN = f"arn:aws:iam::{ACCOUNT}:role/admin"
OPS = f"arn:aws:iam::{OTHER}:role/ops"


def assume(caller: str, role: str, issued: str, key: str, hours: float, **extra) -> dict:
    """An AssumeRole of `role` by `caller` that issued session `issued` with temporary key `key`."""
    account, name = role.split(":")[4], role.rsplit("/", 1)[1]
    user = {"assumedRoleId": issued, "arn": f"arn:aws:sts::{account}:assumed-role/{name}/x"}
    return event(
        "AssumeRole", "sts.amazonaws.com", time=at(hours), principal=caller, request={"roleArn": role},
        response={"credentials": {"accessKeyId": key}, "assumedRoleUser": user}, **extra,
    )  # fmt: skip


def sample() -> pl.LazyFrame:
    # fmt: off
    rows = [
        assume(ALICE, ADMIN, "AROAADMIN:s1", "ASIAADMIN1", 0, access_key="AKIAALICE1"),
        event("ListUsers", time=at(0.5), principal=ADMIN, session="AROAADMIN:s1", access_key="ASIAADMIN1"),
        event("ListRoles", time=at(0.6), principal=ADMIN, session="AROAADMIN:s1", access_key="ASIAADMIN1"),
        # Role chaining into another account: the admin session assumes ops.
        assume(ADMIN, OPS, "AROAOPS:s2", "ASIAOPS2", 1, session="AROAADMIN:s1", access_key="ASIAADMIN1"),
        event("GetSecretValue", time=at(1.5), principal=OPS, session="AROAOPS:s2", access_key="ASIAOPS2",
              account=OTHER),
        # Refused: no link.
        event("AssumeRole", "sts.amazonaws.com", time=at(2), principal=ALICE, request={"roleArn": OPS},
              error_code="AccessDenied"),
        event("GetSessionToken", "sts.amazonaws.com", time=at(3), principal=ALICE, access_key="AKIAALICE1",
              response={"credentials": {"accessKeyId": "ASIATOKEN3"}}),
        event("CreateAccessKey", "iam.amazonaws.com", time=at(4), principal=ALICE, request={"userName": "bob"},
              response={"accessKey": {"accessKeyId": "AKIABOB4", "userName": "bob"}}),
        # Root makes a key for itself: no userName in the request (the response says "Root").
        event("CreateAccessKey", "iam.amazonaws.com", time=at(5), principal=ROOT, request=None,
              response={"accessKey": {"accessKeyId": "AKIAROOT5", "userName": "Root"}}),
        # A console sign-in, then the console's temporary key used from the same address.
        event("ConsoleLogin", "signin.amazonaws.com", time=at(6), principal=CAROL, src_ip="198.51.100.9",
              response={"ConsoleLogin": "Success"}),
        event("DescribeInstances", time=at(6.1), principal=CAROL, access_key="ASIACONSOLE6", src_ip="198.51.100.9"),
        event("DescribeInstances", time=at(6.2), principal=CAROL, access_key="ASIAELSEWHERE", src_ip="203.0.113.99"),
        event("DescribeInstances", time=at(19), principal=CAROL, access_key="ASIALATER", src_ip="198.51.100.9"),
        # A failed console sign-in issues nothing.
        event("ConsoleLogin", "signin.amazonaws.com", time=at(7), principal=ALICE, src_ip="203.0.113.66",
              response={"ConsoleLogin": "Failure"}),
        event("ListBuckets", time=at(7.5), principal=ALICE, access_key="ASIAALICE7", src_ip="203.0.113.66"),
    ]
    # fmt: on
    return events_frame(rows).lazy()


@pytest.fixture(scope="module")
def links() -> pl.DataFrame:
    events = sample()
    return with_usage(credential_links(events), events)


def link(links: pl.DataFrame, key: str) -> dict:
    rows = links.filter(pl.col("issued_key") == key).to_dicts()
    assert len(rows) == 1, f"{len(rows)} links issue {key}"
    return rows[0]


def test_one_link_per_successful_issuing_event(links):
    assert links["kind"].to_list() == ["assume_role", "assume_role", "session_token", "access_key", "access_key",
                                       "console"]  # fmt: skip
    assert links["time"].is_sorted()


def test_assume_role_links_caller_role_session_key_and_usage(links):
    first = link(links, "ASIAADMIN1")
    assert (first["caller"], first["caller_key"], first["role"], first["issued_to"]) == (
        ALICE, "AKIAALICE1", ADMIN, ADMIN
    )
    assert first["issued_session"] == "AROAADMIN:s1" and not first["cross_account"]
    # The session made three calls with the key (ListUsers, ListRoles, and the AssumeRole into ops).
    assert first["keys_used"] == ["ASIAADMIN1"] and first["events"] == 3
    assert (first["first_used"], first["last_used"]) == (at(0.5), at(1))


def test_role_chaining_across_accounts(links):
    hop = link(links, "ASIAOPS2")
    assert (hop["caller"], hop["caller_session"], hop["role"]) == (ADMIN, "AROAADMIN:s1", OPS)
    assert hop["cross_account"] and hop["events"] == 1
    found = chains(links)
    assert [[row["issued_session"] for row in chain] for chain in found] == [["AROAADMIN:s1", "AROAOPS:s2"]]


def test_tokens_and_access_keys(links):
    token = link(links, "ASIATOKEN3")
    assert (token["kind"], token["caller"], token["issued_to"], token["events"]) == ("session_token", ALICE, ALICE, 0)
    bob = link(links, "AKIABOB4")
    assert (bob["kind"], bob["caller"], bob["issued_to"]) == ("access_key", ALICE, f"arn:aws:iam::{ACCOUNT}:user/bob")
    # Without a userName the key is the caller's own (the response's "Root" is not a user).
    assert link(links, "AKIAROOT5")["issued_to"] == ROOT


def test_console_sign_in_links_the_key_first_used_from_its_address(links):
    console = link(links, "ASIACONSOLE6")
    assert (console["kind"], console["caller"], console["time"], console["src_ip"]) == (
        "console", CAROL, at(6), "198.51.100.9"
    )
    issued = set(links["issued_key"].drop_nulls())
    assert "ASIAELSEWHERE" not in issued  # another address
    assert "ASIALATER" not in issued  # 13 hours later: beyond the window
    assert "ASIAALICE7" not in issued  # after a failed sign-in


def test_no_links():
    events = events_frame([event("ListBuckets")]).lazy()
    found = with_usage(credential_links(events), events)
    assert found.is_empty()
    assert {"keys_used", "events", "first_used", "last_used"} <= set(found.columns)
    assert chains(found) == []


def test_invictus_stratus_role_sessions_link_to_the_keys_they_used():
    """Acceptance: bert-jan assumed the Stratus roles; each session is linked to the keys its events used."""
    data = open_dataset([str(shared("invictus-aws-dataset"))], TimeWindow(), Config())
    links = with_usage(credential_links(data.events), data.events)
    stratus = links.filter(
        (pl.col("kind") == "assume_role")
        & pl.col("role").str.contains(":role/stratus-red-team-")
        & pl.col("issued_session").is_not_null()
    )
    assert stratus.height >= 8
    assert set(stratus["caller"]) == {"arn:aws:iam::123837392027:user/bert-jan"}
    sessions = stratus["issued_session"].unique().to_list()
    used = (
        data.events.filter(pl.col("session").is_in(sessions))
        .group_by("session")
        .agg(pl.col("access_key").drop_nulls().unique().sort().alias("keys"), pl.len().alias("events"))
        .collect()
    )
    assert used.height == len(sessions) >= 4
    for row in stratus.join(used, left_on="issued_session", right_on="session").iter_rows(named=True):
        assert row["keys_used"] == row["keys"] and row["keys_used"], row
        assert row["events"] == row["events_right"] > 0
        assert set(row["keys_used"]) <= set(stratus["issued_key"])  # each key came from one of its AssumeRoles
