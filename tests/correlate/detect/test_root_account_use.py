"""Root account use: spans of root activity, service-invoked calls and failed sign-ins left out."""

from __future__ import annotations

from sleuth.correlate.detect import root_account_use
from tests.conftest import shared
from tests.correlate.detect.behaviour import ACCOUNT, at, context, event, real, single

ROOT = f"arn:aws:iam::{ACCOUNT}:root"


def root(minutes: float, action: str = "ListBuckets", **extra) -> dict:
    return event(action, time=at(minutes=minutes), principal=ROOT, actor_type="Root") | extra


def test_one_hit_per_span_of_root_activity():
    hits = root_account_use.run(context([root(0), root(10), root(30), root(200), root(205)]))
    assert hits["key_id"].to_list() == [ROOT, ROOT] and hits["key_type"].to_list() == ["AwsUser", "AwsUser"]
    assert hits["count"].to_list() == [3, 2] and hits["severity"].to_list() == [2.0, 2.0]
    assert hits["title"][0] == f"Root account of {ACCOUNT} used: 3 events"
    assert len(root_account_use.run(context([root(0), root(200)], root_session_gap_minutes=300))) == 1


def test_service_invoked_root_calls_and_failed_sign_ins_are_left_out():
    rows = [
        root(0, src_ip="ec2.amazonaws.com"),
        root(1, src_ip="AWS Internal"),
        root(2, "ConsoleLogin", response='{"ConsoleLogin": "Failure"}'),
        event("ListBuckets", principal=f"arn:aws:iam::{ACCOUNT}:user/alice"),
    ]
    assert root_account_use.run(context(rows)).is_empty()


def test_sign_in_without_mfa_or_a_root_access_key_raise_the_severity():
    login = root(0, "ConsoleLogin", response='{"ConsoleLogin": "Success"}', mfa=False)
    assert single(root_account_use.run(context([login])))["severity"] == 5.0
    keyed = root(0, access_key="AKIAEXAMPLEROOTKEY01")
    hit = single(root_account_use.run(context([keyed])))
    assert hit["severity"] == 5.0 and "root access key" in hit["title"]


def test_panther_attacker_session():
    hits = root_account_use.run(real(shared("panther-samples/compromised-root-creds")))
    attacker = [h for h in hits.iter_rows(named=True) if "92.55.146.245" in h["details"]]
    assert len(attacker) == 1 and attacker[0]["count"] == 8 and attacker[0]["severity"] == 5.0
    assert "CreateAccessKey" in attacker[0]["details"]
