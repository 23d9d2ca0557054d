"""Scope, baseline and the spike statistic, against values computed by hand or with exact arithmetic."""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import math
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext

import polars as pl
import pytest

from sleuth.config import Config
from sleuth.correlate.baseline import (
    Scope,
    api_name,
    bucket_every,
    newly_observed,
    parse_scope,
    poisson_tail,
    resolve_scope,
    spikes,
)
from sleuth.errors import ExitCode, UsageError

START = datetime(2026, 3, 3, tzinfo=UTC)
SCOPE = Scope(START, START + timedelta(hours=24), START - timedelta(days=45))
BASELINE_HOURS = 45 * 24


def exact_tail(k: int, lam: int) -> float:
    """P(X >= k) for X ~ Poisson(lam) in 80-digit decimal arithmetic: e^-λ Σ_{i>=k} λ^i / i!, the sum
    taken far past k (the terms then shrink faster than 10^-80 of the total)."""
    with localcontext() as context:
        context.prec = 80
        term, total = Decimal(1), Decimal(0)  # term = λ^i / i!
        for i in range(k + 600):
            if i >= k:
                total += term
            term = term * lam / (i + 1)
        return float(total * Decimal(-lam).exp())


# --- poisson_tail -------------------------------------------------------------------------------


def test_poisson_tail_by_hand():
    # P(X >= 3 | λ=1) = 1 - e^-1 (1 + 1 + 1/2)
    assert poisson_tail(3, 1.0) == pytest.approx(1 - math.exp(-1) * 2.5, rel=1e-12)
    assert poisson_tail(3, 1.0) == pytest.approx(0.0803013970713942, rel=1e-12)
    # P(X >= 1 | λ) = 1 - e^-λ
    assert poisson_tail(1, 0.5) == pytest.approx(1 - math.exp(-0.5), rel=1e-12)
    # P(X >= 2 | λ=2) = 1 - e^-2 (1 + 2) = 1 - 3/e²
    assert poisson_tail(2, 2.0) == pytest.approx(1 - 3 * math.exp(-2), rel=1e-12)


@pytest.mark.parametrize(("k", "lam"), [(10, 2), (50, 10), (30, 24), (200, 24), (90, 100), (120, 100), (1000, 900)])
def test_poisson_tail_matches_exact_arithmetic(k, lam):
    assert poisson_tail(k, float(lam)) == pytest.approx(exact_tail(k, lam), rel=1e-9, abs=1e-300)


def test_poisson_tail_edges():
    assert poisson_tail(0, 5.0) == 1.0  # X >= 0 always
    assert poisson_tail(-3, 5.0) == 1.0
    assert poisson_tail(0, 0.0) == 1.0
    assert poisson_tail(1, 0.0) == 0.0  # λ = 0: X is always 0
    assert poisson_tail(5, -1.0) == 0.0
    huge = poisson_tail(10**6, 1.0)  # far in the tail: tiny, not an error nor a negative number
    assert 0.0 <= huge < 1e-300
    assert poisson_tail(400, 24.0) < 1e-200
    assert 0.49 < poisson_tail(10_000, 10_000.0) < 0.51  # k = λ, a large mean: about one half


def test_poisson_tail_decreases_with_k():
    tails = [poisson_tail(k, 7.5) for k in range(0, 40)]
    assert all(a >= b for a, b in itertools.pairwise(tails))
    assert all(0.0 <= t <= 1.0 for t in tails)


# --- spikes ---------------------------------------------------------------------------------------


def poisson_sampler(lam: float):
    """Draws from Poisson(λ) by inverting its cumulative distribution (one uniform number a draw)."""
    cdf, term, total = [], math.exp(-lam), 0.0
    for k in range(int(lam + 12 * math.sqrt(lam) + 12)):
        total += term
        cdf.append(total)
        term *= lam / (k + 1)
    return lambda rng: bisect.bisect_left(cdf, rng.random() * total)


def hourly_calls(rates: dict[str, float], hours: range, seed: int, failure_share: float = 0.0) -> pl.DataFrame:
    """One row per call: each api at its hourly rate with Poisson noise (and failed calls at
    `failure_share` of that rate, also Poisson), each hour from START + hour."""
    rng = random.Random(seed)
    samplers = {(api, failed): poisson_sampler(rate * (failure_share if failed else 1 - failure_share))
                for api, rate in rates.items() for failed in (False, True)}  # fmt: skip
    rows = [
        (START + timedelta(hours=hour), api, failed, draw(rng))
        for hour in hours
        for (api, failed), draw in samplers.items()
    ]
    hourly = pl.DataFrame(rows, schema={"time": pl.Datetime("us", "UTC"), "api": pl.String, "failed": pl.Boolean,
                                        "n": pl.Int64}, orient="row")  # fmt: skip
    return hourly.select(pl.exclude("n").repeat_by("n").explode()).drop_nulls()


def steady(seed: int = 7) -> pl.DataFrame:
    rates = {"s3:GetObject": 100, "ec2:DescribeInstances": 20, "iam:ListUsers": 1}
    return hourly_calls(rates, range(-BASELINE_HOURS, 24), seed, failure_share=0.05)


def test_the_sampler_is_poisson_like():
    calls = hourly_calls({"x": 100}, range(2000), seed=1)
    per_hour = calls.group_by("time").len()["len"]
    assert 99 < per_hour.mean() < 101 and 90 < per_hour.var() < 110  # Poisson: variance = mean


def test_steady_traffic_reports_nothing():
    activity = steady()
    assert activity.filter(SCOPE.in_scope()).height > 2000  # the scope does hold traffic
    assert spikes(activity, SCOPE, Config(), ["api"]).is_empty()
    failures = activity.filter(pl.col("failed"))
    assert failures.filter(SCOPE.in_scope()).height > 100
    assert spikes(failures, SCOPE, Config(), ["api"]).is_empty()


def test_steady_traffic_is_quiet_by_the_statistic_alone():
    """Without the count and ratio guards, the Poisson tail itself stays above the threshold."""
    loose = dataclasses.replace(Config(), spike_min_count=1, spike_min_ratio=1.0)
    for seed in (1, 2):
        activity = steady(seed)
        assert spikes(activity, SCOPE, loose, ["api"]).is_empty()
        assert spikes(activity.filter(pl.col("failed")), SCOPE, loose, ["api"]).is_empty()


def calls_at(*parts: pl.Series | list[datetime], api: str = "secretsmanager:GetSecretValue") -> pl.DataFrame:
    """One call of `api` at each of the times in `parts`."""
    times = pl.concat([pl.Series("time", part, pl.Datetime("us", "UTC")) for part in parts])
    return pl.DataFrame({"time": times}).with_columns(pl.lit(api).alias("api"))


def evenly(start: datetime, hours: float, n: int) -> pl.Series:
    """n calls spread evenly over `hours` from `start`."""
    step = timedelta(hours=hours) / n
    return pl.datetime_range(start, start + step * (n - 1), step, eager=True, time_unit="us").head(n)


def test_a_real_spike_is_reported_with_its_expected_count_and_ratio():
    # Baseline: one call an hour for 45 days (1080 calls); scope: 200 calls in 24 h.
    activity = calls_at(evenly(SCOPE.baseline_start, BASELINE_HOURS, BASELINE_HOURS), evenly(START, 24, 200))
    found = spikes(activity, SCOPE, Config(), ["api"])
    assert found.height == 1
    row = found.row(0, named=True)
    assert row["api"] == "secretsmanager:GetSecretValue"
    assert (row["scope_count"], row["baseline_count"]) == (200, 1080)
    assert row["expected"] == pytest.approx(24.0)  # 1080 calls / 1080 h x 24 h
    assert row["ratio"] == pytest.approx(200 / 24)
    assert row["p_value"] == pytest.approx(exact_tail(200, 24), rel=1e-9)


def test_the_baseline_rate_counts_from_the_entitys_first_activity():
    # Active for 10 days at one call an hour: λ is 24 for the scope, not 24 x 10/45.
    first = START - timedelta(days=10)
    activity = calls_at(evenly(first, 240, 240), evenly(START, 24, 200))
    row = spikes(activity, SCOPE, Config(), ["api"], first_seen=first).row(0, named=True)
    assert row["baseline_count"] == 240 and row["expected"] == pytest.approx(24.0)


def test_min_count_guard():
    # One call in the whole baseline: λ = 24/1080; 9 calls are far beyond it but under spike_min_count (10).
    one = [SCOPE.baseline_start + timedelta(days=1)]
    assert spikes(calls_at(one, evenly(START, 24, 9)), SCOPE, Config(), ["api"]).is_empty()
    found = spikes(calls_at(one, evenly(START, 24, 10)), SCOPE, Config(), ["api"])
    assert found["scope_count"].to_list() == [10]
    assert found["expected"][0] == pytest.approx(24 / BASELINE_HOURS)


def test_min_ratio_guard():
    # 100 calls an hour in the baseline (λ = 2400 for 24 h): 2.9x is overwhelming evidence, but under
    # spike_min_ratio (3x); 3.1x is reported.
    baseline = evenly(SCOPE.baseline_start, BASELINE_HOURS, 100 * BASELINE_HOURS)
    assert poisson_tail(int(2.9 * 2400), 2400.0) < 1e-100
    assert spikes(calls_at(baseline, evenly(START, 24, int(2.9 * 2400))), SCOPE, Config(), ["api"]).is_empty()
    found = spikes(calls_at(baseline, evenly(START, 24, int(3.1 * 2400))), SCOPE, Config(), ["api"])
    assert found["ratio"][0] == pytest.approx(3.1)


def test_less_than_a_day_of_baseline_reports_nothing():
    activity = calls_at(evenly(START - timedelta(hours=23), 23, 23), evenly(START, 24, 500))
    assert spikes(activity, SCOPE, Config(), ["api"], first_seen=START - timedelta(hours=23)).is_empty()
    short = Scope(START, START + timedelta(hours=24), START - timedelta(hours=23))  # --baseline-days 0, say
    assert spikes(activity, short, Config(), ["api"]).is_empty()
    # A day and an hour of history is enough.
    activity = calls_at(evenly(START - timedelta(hours=25), 25, 25), evenly(START, 24, 500))
    assert not spikes(activity, SCOPE, Config(), ["api"], first_seen=START - timedelta(hours=25)).is_empty()


def test_a_call_new_in_the_scope_is_not_a_spike():
    activity = calls_at(evenly(START, 24, 500))  # never in the baseline: newly observed instead
    assert spikes(activity, SCOPE, Config(), ["api"]).is_empty()


def test_spikes_of_an_empty_frame_keep_the_key_columns():
    found = spikes(calls_at([]), SCOPE, Config(), ["api"])
    assert found.is_empty()
    assert found.columns == ["api", "scope_count", "baseline_count", "expected", "ratio", "p_value"]


# --- newly observed -------------------------------------------------------------------------------


def test_newly_observed_and_new_for_the_account():
    day = timedelta(days=1)
    hours = [timedelta(hours=h) for h in (1, 2, 3, 4, 5)]
    entity = pl.DataFrame(
        {
            "time": [START - day, *(START + h for h in hours)],
            "user_agent": ["aws-cli/2", "aws-cli/2", "curl/8", "curl/8", "boto3/1.34", None],
        }
    )
    account = pl.DataFrame({"user_agent": ["aws-cli/2", "boto3/1.34", "terraform"]})
    new = newly_observed(entity, account, SCOPE, "user_agent")
    assert new.to_dicts() == [
        {"value": "curl/8", "first_seen": START + timedelta(hours=2), "count": 2, "new_for_account": True},
        {"value": "boto3/1.34", "first_seen": START + timedelta(hours=4), "count": 1, "new_for_account": False},
    ]
    unflagged = newly_observed(entity, None, SCOPE, "user_agent")
    assert unflagged["value"].to_list() == ["curl/8", "boto3/1.34"]
    assert unflagged["new_for_account"].to_list() == [None, None]


def test_nothing_is_new_when_the_scope_repeats_the_baseline():
    entity = pl.DataFrame(
        {"time": [START - timedelta(days=3), START + timedelta(hours=1)], "api": ["iam:ListUsers", "iam:ListUsers"]}
    )
    assert newly_observed(entity, None, SCOPE, "api").is_empty()


# --- scope ------------------------------------------------------------------------------------------


def test_parse_scope():
    assert parse_scope("2020-10-30..2020-11-02") == (
        datetime(2020, 10, 30, tzinfo=UTC),
        datetime(2020, 11, 2, tzinfo=UTC),
    )
    start, end = parse_scope("2023-07-10T11:00:00Z..2023-07-10T14:00+02:00")
    assert (start, end) == (datetime(2023, 7, 10, 11, tzinfo=UTC), datetime(2023, 7, 10, 12, tzinfo=UTC))


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("2024-05-01", "is not START..END"),
        ("2024-05-01..", "is not START..END"),
        ("..2024-05-02", "is not START..END"),
        ("2024-05-02..2024-05-01", "ends before it starts"),
        ("2024-05-01..2024-05-01", "ends before it starts"),
        ("yesterday..today", "cannot read the time"),
    ],
)
def test_parse_scope_errors(text, says):
    with pytest.raises(UsageError) as error:
        parse_scope(text)
    assert says in error.value.message
    assert error.value.fix  # every error names the fix
    assert error.value.exit_code == ExitCode.USAGE


def test_resolve_scope_defaults_to_the_last_24_hours_of_the_data():
    last = datetime(2023, 7, 10, 12, 37, 50, tzinfo=UTC)
    scope = resolve_scope(last, Config())
    assert scope.end == last + timedelta(seconds=1)  # the last record is inside (the end is exclusive)
    fraction = resolve_scope(last + timedelta(microseconds=999_999), Config())
    assert fraction.end == scope.end  # a whole second, whatever the last record's fraction
    assert scope.end - scope.start == timedelta(hours=24)
    assert scope.start - scope.baseline_start == timedelta(days=45)
    assert scope.baseline_end == scope.start
    assert resolve_scope(last, Config(), baseline_days=7).baseline_start == scope.start - timedelta(days=7)
    given = (datetime(2023, 7, 10, 11, tzinfo=UTC), datetime(2023, 7, 10, 13, tzinfo=UTC))
    explicit = resolve_scope(last, Config(), given, baseline_days=0)
    assert (explicit.start, explicit.end, explicit.baseline_start) == (*given, given[0])
    assert explicit.hours == 2


def test_resolve_scope_follows_config():
    config = dataclasses.replace(Config(), scope_hours=6, baseline_days=14)
    scope = resolve_scope(START, config)
    assert scope.end - scope.start == timedelta(hours=6)
    assert scope.start - scope.baseline_start == timedelta(days=14)


def test_scope_json_and_buckets():
    assert SCOPE.as_json() == {
        "scope": {"start": "2026-03-03T00:00:00Z", "end": "2026-03-04T00:00:00Z"},
        "baseline": {"start": "2026-01-17T00:00:00Z", "end": "2026-03-03T00:00:00Z"},
    }
    assert bucket_every(SCOPE) == "1h"
    assert bucket_every(Scope(START, START + timedelta(hours=72), START)) == "1h"
    assert bucket_every(Scope(START, START + timedelta(hours=73), START)) == "1d"


def test_api_name():
    frame = pl.DataFrame({"service": ["iam.amazonaws.com", "s3.amazonaws.com", None], "action": ["CreateUser"] * 3})
    assert frame.select(api_name().alias("api"))["api"].to_list() == ["iam:CreateUser", "s3:CreateUser", "CreateUser"]
