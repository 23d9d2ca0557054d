"""Console sign-in brute force: failures from one address against one identity, then a success."""

from __future__ import annotations

from sleuth.correlate.detect import console_brute_force
from tests.conftest import shared
from tests.correlate.detect.behaviour import ACCOUNT, at, context, event, real, roles, single

ROOT = f"arn:aws:iam::{ACCOUNT}:root"
ATTACKER, HOME = "198.51.100.66", "203.0.113.10"


def login(hours: float, ok: bool, *, ip: str = ATTACKER, root: bool = True, name: str = "bob") -> dict:
    row = event("ConsoleLogin", "signin.amazonaws.com", time=at(hours=hours), src_ip=ip,
                principal=ROOT if root else None, actor_type="Root" if root else "IAMUser",
                response={"ConsoleLogin": "Success" if ok else "Failure"})  # fmt: skip
    row["user_name"] = "root" if root else name
    if not ok:
        row["error_message"] = "Failed authentication"
    return row


def test_failures_then_success_from_one_address():
    rows = [login(0, False), login(10, False), login(30, False), login(33, True)]
    hit = single(console_brute_force.run(context(rows)))
    assert (hit["key_type"], hit["key_id"]) == ("AwsUser", ROOT)
    assert hit["severity"] == 9.0  # a guessed password (8), for root (+1)
    assert hit["count"] == 4 and len(hit["event_ids"]) == 4
    assert (
        hit["title"] == f"Console sign-in after 3 failed console sign-ins as root (account {ACCOUNT}) from {ATTACKER}"
    )
    assert {("AwsUser", ROOT, "target"), ("IpAddress", ATTACKER, "actor")} <= roles(hit)


def test_failures_only_are_lower_and_too_few_or_too_spread_fire_nothing():
    only = single(console_brute_force.run(context([login(0, False), login(1, False), login(2, False)])))
    assert only["severity"] == 6.0 and "no success" in only["details"]
    assert console_brute_force.run(context([login(0, False), login(1, False), login(2, True)])).is_empty()
    spread = [login(0, False), login(40, False), login(80, False), login(81, True)]  # 72-hour window
    assert console_brute_force.run(context(spread)).is_empty()


def test_other_addresses_and_identities_do_not_add_up():
    rows = [login(0, False), login(1, False, ip=HOME), login(2, False, root=False), login(3, True)]
    assert console_brute_force.run(context(rows)).is_empty()


def test_iam_user_failures_carry_only_a_user_name():
    rows = [login(h, False, root=False) for h in range(4)] + [login(5, True, root=False)]
    rows[-1]["principal"] = f"arn:aws:iam::{ACCOUNT}:user/bob"
    hit = single(console_brute_force.run(context(rows)))
    assert (hit["key_type"], hit["key_id"]) == ("AwsUser", f"arn:aws:iam::{ACCOUNT}:user/bob")
    assert hit["severity"] == 8.0 and hit["count"] == 5
    # Without the success, the identity is built from the account and the name.
    hit = single(console_brute_force.run(context(rows[:-1])))
    assert hit["key_id"] == f"arn:aws:iam::{ACCOUNT}:user/bob" and hit["severity"] == 5.0


def test_mistyping_from_an_address_that_signed_in_before_is_low():
    rows = [login(0, True, ip=HOME), login(5, False, ip=HOME), login(5.1, False, ip=HOME), login(5.2, False, ip=HOME),
            login(5.3, True, ip=HOME)]  # fmt: skip
    hit = single(console_brute_force.run(context(rows)))
    assert hit["severity"] == 4.0 and "signed in as this identity before" in hit["details"]  # Low 3, +1 root


def test_steady_benign_sign_ins_fire_nothing():
    rows = [login(h * 24, True, ip=HOME) for h in range(10)] + [login(50, False, ip=HOME)]
    assert console_brute_force.run(context(rows)).is_empty()


def test_panther_compromised_root():
    hit = single(console_brute_force.run(real(shared("panther-samples/compromised-root-creds"))))
    assert hit["key_id"] == "arn:aws:iam::493859302102:root" and hit["severity"] >= 8.0
    assert "92.55.146.245" in hit["title"] and "3 failed console sign-ins as root" in hit["title"]
    assert str(hit["last_seen"]).startswith("2020-11-01 08:29:10")
    assert ("IpAddress", "92.55.146.245", "actor") in roles(hit)
