"""API enumeration burst: distinct read calls of one principal in a sliding window."""

from __future__ import annotations

from sleuth.correlate.detect import api_enumeration
from sleuth.correlate.detect.base import HITS
from tests.conftest import shared
from tests.correlate.detect.behaviour import at, context, event, real, single

BOB = "arn:aws:iam::123456789012:user/bob"
SERVICES = ["ec2", "iam", "s3", "rds", "lambda"]


def reads(n: int, *, start: float = 0, step: float = 0.1, principal: str = BOB, error: str | None = None) -> list[dict]:
    """n distinct read calls (Describe0, List1, Get2 ... across five services), `step` minutes apart."""
    verbs = ["Describe", "List", "Get"]
    return [
        event(f"{verbs[i % 3]}Thing{i}", f"{SERVICES[i % 5]}.amazonaws.com", time=at(minutes=start + i * step),
              principal=principal, error_code=error)
        for i in range(n)
    ]  # fmt: skip


def test_a_burst_of_distinct_reads_is_one_hit_with_its_evidence():
    hit = single(api_enumeration.run(context(reads(30))))
    assert (hit["key_type"], hit["key_id"]) == ("AwsUser", BOB)
    assert hit["count"] == 30 and len(hit["event_ids"]) == 30
    assert hit["severity"] == 5.0  # all 30 calls new for bob; fewer than twice the threshold; none refused
    assert "30 distinct read calls within 10 min" in hit["title"] and "bob" in hit["title"]
    assert "30 distinct read calls (30 new for this principal) across 5 services" in hit["details"]
    assert hit["first_seen"] == at() and hit["last_seen"] == at(minutes=2.9)


def test_threshold_and_window_are_the_configured_ones():
    assert len(api_enumeration.run(context(reads(25)))) == 1
    assert api_enumeration.run(context(reads(24))).is_empty()
    # 25 distinct calls spread over 25 minutes: never 25 within 10 minutes.
    assert api_enumeration.run(context(reads(25, step=1))).is_empty()
    assert len(api_enumeration.run(context(reads(25, step=1), enum_burst_minutes=30))) == 1
    assert len(api_enumeration.run(context(reads(10), enum_burst_distinct=10))) == 1


def test_steady_repetitive_reads_fire_nothing():
    # Five calls every minute for two hours: busy, but never more than five distinct.
    steady = [e for minute in range(120) for e in reads(5, start=minute, step=0.01)]
    hits = api_enumeration.run(context(steady))
    assert hits.is_empty() and dict(hits.schema) == HITS


def test_writes_and_aws_services_do_not_count():
    writes = [event(f"CreateThing{i}", "ec2.amazonaws.com", time=at(minutes=i * 0.1), principal=BOB) for i in range(30)]
    service = reads(30, principal="ec2.amazonaws.com")
    for row in service:
        row["actor_type"] = "AWSService"
    assert api_enumeration.run(context(writes + service)).is_empty()


def test_calls_made_before_make_the_burst_routine_and_refusals_make_it_worse():
    yesterday = reads(30, start=-24 * 60, step=1)
    assert single(api_enumeration.run(context(yesterday + reads(30))))["severity"] == 3.0
    assert single(api_enumeration.run(context(reads(30, error="AccessDenied"))))["severity"] == 6.5
    assert single(api_enumeration.run(context(reads(50))))["severity"] == 6.0  # twice the threshold


def test_two_bursts_far_apart_are_two_hits_and_close_ones_are_one():
    far = reads(30) + reads(30, start=120)
    assert len(api_enumeration.run(context(far))) == 2
    close = reads(30) + reads(30, start=5)
    assert len(api_enumeration.run(context(close))) == 1


def test_invictus_recon_by_bert_jan():
    ctx = real(shared("invictus-aws-dataset"))
    hits = api_enumeration.run(ctx)
    assert "arn:aws:iam::123837392027:user/bert-jan" in hits["key_id"].to_list()
    assert hits["severity"].min() >= 5.0
