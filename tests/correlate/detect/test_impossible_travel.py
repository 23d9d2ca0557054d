"""Impossible travel between consecutive calls of one identity."""

from __future__ import annotations

from sleuth.correlate.detect import impossible_travel
from tests.correlate.detect.behaviour import ACCOUNT, FakeGeo, at, context, event, single

ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
PARIS, SYDNEY, LYON, AWS = "81.2.69.1", "1.128.0.1", "90.1.1.1", "3.3.3.3"
GEO = FakeGeo({
    PARIS: ("public", "FR", "Orange", 48.86, 2.35),
    LYON: ("public", "FR", "Free", 45.76, 4.84),  # ~390 km from Paris
    SYDNEY: ("public", "AU", "Telstra", -33.87, 151.21),
    AWS: ("public", "US", "AMAZON-02", 39.0, -77.5),
})  # fmt: skip


def call(ip: str, hours: float, principal: str = ALICE, **extra) -> dict:
    return event("ListBuckets", time=at(hours=hours), principal=principal, src_ip=ip, **extra)


def test_paris_then_sydney_half_an_hour_later():
    hit = single(impossible_travel.run(context([call(PARIS, 0), call(PARIS, 1), call(SYDNEY, 1.5)], geo=GEO)))
    assert (hit["key_type"], hit["key_id"]) == ("AwsUser", ALICE)
    assert hit["title"] == "Impossible travel by alice: FR to AU in 30 min"
    assert "FR (81.2.69.1) then AU (1.128.0.1): 16961 km in 30 min (33921 km/h)" in hit["details"]
    assert "a new place, but the identity has no history" in hit["details"]
    assert len(hit["event_ids"]) == 2 and hit["first_seen"] == at(hours=1) and hit["last_seen"] == at(hours=1.5)
    assert hit["severity"] == 3.0  # alice has no history before the hop


def test_a_new_country_for_an_established_identity_is_medium():
    rows = [call(PARIS, 0), call(PARIS, 30), call(SYDNEY, 30.5)]
    hit = single(impossible_travel.run(context(rows, geo=GEO)))
    assert (
        hit["severity"] == 5.0 and "a new place for this identity, in a country new for the account" in hit["details"]
    )
    # Sydney was used by a colleague before: not a new country for the account.
    colleague = call(SYDNEY, 2, principal=f"arn:aws:iam::{ACCOUNT}:user/bob")
    assert single(impossible_travel.run(context([*rows, colleague], geo=GEO)))["severity"] == 3.0


def test_back_and_forth_is_one_hit_per_pair_of_places():
    rows = [call(PARIS if i % 2 else SYDNEY, i * 0.1) for i in range(20)]
    hit = single(impossible_travel.run(context(rows, geo=GEO)))
    assert hit["count"] == 19 and "19 hops between these places" in hit["details"]


def test_short_slow_or_unlocated_hops_fire_nothing():
    assert impossible_travel.run(context([call(PARIS, 0), call(LYON, 0.1)], geo=GEO)).is_empty()  # < 500 km
    assert impossible_travel.run(context([call(PARIS, 0), call(SYDNEY, 20)], geo=GEO)).is_empty()  # 850 km/h
    assert impossible_travel.run(context([call(AWS, 0), call(SYDNEY, 0.1)], geo=GEO)).is_empty()  # Amazon's network
    private = [call("10.0.0.1", 0), call(SYDNEY, 0.1), call("ec2.amazonaws.com", 0.2)]
    assert impossible_travel.run(context(private, geo=GEO)).is_empty()
    assert impossible_travel.run(context([call(PARIS, 0), call(SYDNEY, 0.5)])).is_empty()  # no geolocation


def test_sessions_of_one_role_travel_separately():
    role = f"arn:aws:iam::{ACCOUNT}:role/sso-admin"
    rows = [call(PARIS, 0, role, session="AROA1:alice"), call(SYDNEY, 0.1, role, session="AROA1:bob")]
    assert impossible_travel.run(context(rows, geo=GEO)).is_empty()
    rows.append(call(SYDNEY, 0.2, role, session="AROA1:alice"))
    assert single(impossible_travel.run(context(rows, geo=GEO)))["key_id"] == role
