"""Console sign-in without MFA."""

from __future__ import annotations

from sleuth.correlate.detect import console_login_without_mfa
from tests.conftest import shared
from tests.correlate.detect.behaviour import ACCOUNT, context, event, real, single

ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"


def login(mfa: str = "No", ok: bool = True, **extra) -> dict:
    row = event("ConsoleLogin", "signin.amazonaws.com", principal=ALICE,
                response={"ConsoleLogin": "Success" if ok else "Failure"})  # fmt: skip
    row["additional"] = f'{{"LoginTo": "https://console.aws.amazon.com/", "MFAUsed": "{mfa}"}}'
    row["mfa"] = mfa == "Yes"
    return row | extra


def test_password_only_sign_in_of_a_user_is_low_and_of_root_high():
    hit = single(console_login_without_mfa.run(context([login()])))
    assert (hit["key_type"], hit["key_id"], hit["severity"]) == ("AwsUser", ALICE, 3.0)
    assert hit["title"] == "Console sign-in without MFA by alice from 203.0.113.10"
    root = login(principal=f"arn:aws:iam::{ACCOUNT}:root", actor_type="Root")
    assert single(console_login_without_mfa.run(context([root])))["severity"] == 7.0


def test_mfa_failures_and_federated_sign_ins_fire_nothing():
    sso = login(principal="arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_0123",
                actor_type="AssumedRole", session="AROAX:alice@example.com")  # fmt: skip
    rows = [login("Yes"), login(ok=False), sso, login(actor_type="FederatedUser")]
    assert console_login_without_mfa.run(context(rows)).is_empty()


def test_stratus_console_login_without_mfa():
    path = (
        shared("stratus-detonation-logs")
        / "docs"
        / "detonation-logs"
        / "aws.initial-access.console-login-without-mfa.json"
    )
    hit = single(console_login_without_mfa.run(real(path)))
    assert hit["key_id"].endswith(":user/stratus-red-team-nmfalu-jfzdtsvchl")


def test_panther_root_sign_ins_without_mfa():
    hits = console_login_without_mfa.run(real(shared("panther-samples/compromised-root-creds")))
    assert len(hits) == 4 and set(hits["severity"]) == {7.0}
    assert any("92.55.146.245" in title for title in hits["title"])
