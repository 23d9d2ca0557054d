"""Access-denied burst: refused calls of one principal in a sliding window."""

from __future__ import annotations

from sleuth.correlate.detect import access_denied_burst
from tests.conftest import shared
from tests.correlate.detect.behaviour import at, context, event, real, single

ROLE = "arn:aws:iam::123456789012:role/app"


def refused(n: int, *, code: str = "AccessDenied", action: str = "GetPasswordData", vary: bool = True, step=0.5):
    return [
        event(action, "ec2.amazonaws.com", time=at(minutes=i * step), principal=ROLE, session="AROAX:app",
              error_code=code, request={"instanceId": f"i-{i:08x}" if vary else "i-00000001"})
        for i in range(n)
    ]  # fmt: skip


def test_ten_refusals_in_ten_minutes_are_a_hit():
    hit = single(access_denied_burst.run(context(refused(12, code="Client.UnauthorizedOperation"))))
    assert (hit["key_type"], hit["key_id"]) == ("AwsRole", ROLE)
    assert hit["count"] == 12 and len(hit["event_ids"]) == 12
    assert "12 refused calls within 10 min" in hit["title"]
    assert "(Client.UnauthorizedOperation) to 1 distinct actions with 12 distinct requests" in hit["details"]
    assert hit["severity"] == 5.0  # one action against twelve targets: probing
    assert ("AwsRoleSession", "AROAX:app", "actor") in {tuple(e.values()) for e in hit["entities"]}


def test_one_request_retried_in_a_loop_is_low_and_many_actions_are_higher():
    assert single(access_denied_burst.run(context(refused(12, vary=False))))["severity"] == 3.0
    many = [row | {"action": f"Describe{i}"} for i, row in enumerate(refused(12))]
    assert single(access_denied_burst.run(context(many)))["severity"] == 6.0


def test_below_the_count_or_spread_out_or_other_errors_fire_nothing():
    assert access_denied_burst.run(context(refused(9))).is_empty()
    assert access_denied_burst.run(context(refused(12, step=2))).is_empty()  # 12 over 22 minutes: 5 per 10 min
    assert access_denied_burst.run(context(refused(30, code="ThrottlingException"))).is_empty()
    ok = [row | {"error_code": None} for row in refused(30)]
    assert access_denied_burst.run(context(ok)).is_empty()


def test_access_denied_variants_count():
    codes = ["AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "Client.UnauthorizedOperation",
             "VpceAccessDenied"]  # fmt: skip
    rows = [row | {"error_code": codes[i % 5]} for i, row in enumerate(refused(10))]
    assert single(access_denied_burst.run(context(rows)))["count"] == 10


def test_invictus_get_password_data_role():
    hits = access_denied_burst.run(real(shared("invictus-aws-dataset")))
    role = "arn:aws:iam::123837392027:role/stratus-red-team-ec2-get-password-data-role"
    hit = hits.filter(hits["key_id"] == role).row(0, named=True)
    assert hit["count"] == 29 and hit["severity"] == 5.0


def test_stratus_ec2_get_password_data():
    path = (
        shared("stratus-detonation-logs")
        / "docs"
        / "detonation-logs"
        / "aws.credential-access.ec2-get-password-data.json"
    )
    hit = single(access_denied_burst.run(real(path)))
    assert "GetPasswordData" in hit["details"]
