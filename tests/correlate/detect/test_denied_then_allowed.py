"""Denied, then a linked policy change, then allowed."""

from __future__ import annotations

from sleuth.correlate.detect import denied_then_allowed
from tests.correlate.detect.behaviour import at, context, event, single

BOB = "arn:aws:iam::123456789012:user/bob"
ADMIN = "arn:aws:iam::123456789012:user/admin"


def list_users(minutes: float, error: str | None = None) -> dict:
    return event("ListUsers", "iam.amazonaws.com", time=at(minutes=minutes), principal=BOB, error_code=error)


def change(minutes: float, action: str, by: str = BOB, **request) -> dict:
    return event(action, "iam.amazonaws.com", time=at(minutes=minutes), principal=by, request=request or None)


def test_self_made_policy_change_between_refusal_and_success():
    rows = [
        list_users(0, "AccessDenied"),
        change(5, "CreatePolicyVersion", policyArn="arn:aws:iam::123456789012:policy/bob", setAsDefault=True),
        list_users(6),
    ]
    hit = single(denied_then_allowed.run(context(rows)))
    assert (hit["key_type"], hit["key_id"]) == ("AwsUser", BOB)
    assert hit["severity"] == 7.5 and hit["count"] == 1
    assert hit["title"] == "bob was denied, then allowed after changing its own permissions (CreatePolicyVersion)"
    assert "refused, then allowed: iam:ListUsers; CreatePolicyVersion by bob" in hit["details"]
    assert sorted(hit["event_ids"]) == sorted(r["event_id"] for r in rows)
    assert hit["first_seen"] == at() and hit["last_seen"] == at(minutes=6)


def test_a_change_for_the_principal_by_someone_else_is_low():
    rows = [list_users(0, "AccessDenied"), change(5, "AttachUserPolicy", by=ADMIN, userName="bob"), list_users(6)]
    hit = single(denied_then_allowed.run(context(rows)))
    assert hit["severity"] == 3.0 and "after admin changed a policy (AttachUserPolicy)" in hit["title"]
    assert ADMIN in {e["entity_id"] for e in hit["entities"]}


def test_assume_role_allowed_after_its_trust_policy_changed():
    asked = {"roleArn": "arn:aws:iam::123456789012:role/admin-role", "roleSessionName": "x"}
    assume = [
        event("AssumeRole", "sts.amazonaws.com", time=at(minutes=m), principal=BOB, error_code=e, request=asked)
        for m, e in ((0, "AccessDenied"), (10, None))
    ]
    rows = [*assume, change(5, "UpdateAssumeRolePolicy", roleName="admin-role", policyDocument="{}")]
    hit = single(denied_then_allowed.run(context(rows)))
    assert "sts:AssumeRole:admin-role" in hit["details"] and hit["severity"] == 7.5


def test_unrelated_or_missing_changes_and_earlier_successes_fire_nothing():
    denied, allowed = list_users(0, "AccessDenied"), list_users(6)
    assert denied_then_allowed.run(context([denied, allowed])).is_empty()  # no change at all
    other = change(5, "AttachUserPolicy", by=ADMIN, userName="carol")
    assert denied_then_allowed.run(context([denied, other, allowed])).is_empty()
    # The call had worked before the refusal: a passing failure, not a missing permission.
    mine = change(5, "PutUserPolicy", userName="bob")
    assert denied_then_allowed.run(context([list_users(-60), denied, mine, allowed])).is_empty()
    # The change came before the refusal, or after the success.
    assert denied_then_allowed.run(context([change(-1, "PutUserPolicy", userName="bob"), denied, allowed])).is_empty()
    assert denied_then_allowed.run(context([denied, allowed, change(7, "PutUserPolicy", userName="bob")])).is_empty()


def test_outside_the_window_fires_nothing():
    rows = [list_users(0, "AccessDenied"), change(60, "PutUserPolicy", userName="bob"), list_users(25 * 60)]
    assert denied_then_allowed.run(context(rows)).is_empty()
    assert len(denied_then_allowed.run(context(rows, escalation_window_hours=26))) == 1
