"""Scope and baseline: what an entity did in the scope window against its own history.

The scope is the window under investigation (default: the last `Config.scope_hours` of the data);
the baseline is the `Config.baseline_days` before it, as in Amazon Detective. From them come
Detective's "newly observed" sets (values seen in the scope and never in the baseline, each flagged
when it is new for the whole account too) and volume spikes.

The spike statistic: a call's baseline rate is its baseline count divided by the hours the baseline
covers (from the entity's first activity, or the baseline start, to the scope start). Its scope count
k is a spike when, with λ = rate x scope hours, the Poisson tail P(X >= k) is below
`Config.spike_p_value`, k >= `Config.spike_min_count` and k >= `Config.spike_min_ratio` x λ. Steady
traffic has k near λ, a tail near one half, and reports nothing; a call absent from the baseline is
newly observed, not a spike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import polars as pl

from sleuth.config import Config
from sleuth.errors import UsageError
from sleuth.timewindow import parse_time

_MIN_BASELINE_HOURS = 24  # less history than a day is no baseline to compare with


@dataclass(frozen=True)
class Scope:
    start: datetime
    end: datetime  # exclusive
    baseline_start: datetime

    @property
    def baseline_end(self) -> datetime:
        return self.start

    @property
    def hours(self) -> float:
        return max((self.end - self.start).total_seconds() / 3600, 1 / 60)

    def in_scope(self, column: str = "time") -> pl.Expr:
        return (pl.col(column) >= self.start) & (pl.col(column) < self.end)

    def in_baseline(self, column: str = "time") -> pl.Expr:
        return (pl.col(column) >= self.baseline_start) & (pl.col(column) < self.start)

    def as_json(self) -> dict:
        return {
            "scope": {"start": _iso(self.start), "end": _iso(self.end)},
            "baseline": {"start": _iso(self.baseline_start), "end": _iso(self.start)},
        }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_scope(text: str) -> tuple[datetime, datetime]:
    """`START..END` in ISO 8601 (UTC when no zone is given)."""
    start_text, sep, end_text = text.partition("..")
    if not sep or not start_text.strip() or not end_text.strip():
        raise UsageError(f"--scope {text!r} is not START..END", "e.g. --scope 2024-05-01T00:00..2024-05-02T00:00")
    start, end = parse_time(start_text.strip(), "--scope"), parse_time(end_text.strip(), "--scope")
    if end <= start:
        raise UsageError(f"--scope {text!r} ends before it starts", "give START..END with START earlier")
    return start, end


def resolve_scope(
    data_end: datetime | None,
    config: Config,
    scope: tuple[datetime, datetime] | None = None,
    baseline_days: int | None = None,
) -> Scope:
    """The scope given, or the last `scope_hours` up to the data's last record; then its baseline."""
    days = config.baseline_days if baseline_days is None else baseline_days
    if scope is None:  # up to the next whole second after the last record: it is inside (the end is exclusive)
        end = (data_end or datetime.now(UTC)).replace(microsecond=0) + timedelta(seconds=1)
        scope = (end - timedelta(hours=config.scope_hours), end)
    start, end = scope
    return Scope(start, end, start - timedelta(days=days))


def finding_span(findings: pl.DataFrame, config: Config) -> tuple[datetime, datetime] | None:
    """The default scope of an entity with findings (Detective opens a profile at its finding's time):
    its Medium-or-above findings chained in time order (one joins when it starts within
    `group_window_hours` of the latest end so far, as in groups), the most severe chain (then the
    latest), padded by `investigate_margin_hours`. None when the entity has no such finding."""
    serious = findings.filter(pl.col("severity") >= 4).sort("first_seen", "finding_id")
    if serious.is_empty():
        return None
    window = timedelta(hours=config.group_window_hours)
    chains: list[list] = []  # [top severity, end, start]
    for severity, first, last in serious.select("severity", "first_seen", "last_seen").iter_rows():
        last = last or first
        if chains and first <= chains[-1][1] + window:
            chain = chains[-1]
            chain[0], chain[1] = max(chain[0], severity), max(chain[1], last)
        else:
            chains.append([severity, last, first])
    _, end, start = max(chains)
    margin = timedelta(hours=config.investigate_margin_hours)
    return start - margin, end + margin


def data_end(frame: pl.LazyFrame, column: str = "time") -> datetime | None:
    """The time of the last record, or None for an empty frame."""
    return frame.select(pl.col(column).max()).collect().item()


def last_record(dataset) -> datetime | None:
    """The time of the dataset's last event or flow, or None when it holds neither."""
    ends = [end for end in (data_end(dataset.events), data_end(dataset.frames["flows"], "start")) if end is not None]
    return max(ends) if ends else None


def poisson_tail(k: int, lam: float) -> float:
    """P(X >= k) for X ~ Poisson(lam), summed in log space so that large counts stay exact enough."""
    if k <= 0:
        return 1.0
    if lam <= 0:
        return 0.0
    # P(X >= k) = 1 - sum_{i<k} e^-lam lam^i / i!; for k far above lam sum the upper tail instead.
    if k > lam:
        log_terms = []
        i = k
        while True:
            term = -lam + i * math.log(lam) - math.lgamma(i + 1)
            log_terms.append(term)
            if term < log_terms[0] - 40 or i - k > 10_000:
                break
            i += 1
        peak = max(log_terms)
        return min(1.0, math.exp(peak) * sum(math.exp(t - peak) for t in log_terms))
    below = sum(math.exp(-lam + i * math.log(lam) - math.lgamma(i + 1)) for i in range(k))
    return max(0.0, 1.0 - below)


def spikes(
    activity: pl.DataFrame, scope: Scope, config: Config, keys: list[str], first_seen: datetime | None = None
) -> pl.DataFrame:
    """Keys (e.g. service+action) whose scope count is a spike against the baseline rate.

    `activity` has a `time` column and the key columns, one row per call. Returns the keys with
    scope_count, baseline_count, expected (λ), ratio and p_value, strongest first; nothing when the
    baseline covers less than a day.
    """
    empty = pl.DataFrame(
        schema={
            **{key: activity.schema[key] for key in keys},
            "scope_count": pl.UInt32,
            "baseline_count": pl.UInt32,
            "expected": pl.Float64,
            "ratio": pl.Float64,
            "p_value": pl.Float64,
        }
    )
    baseline_from = max(scope.baseline_start, first_seen) if first_seen else scope.baseline_start
    baseline_hours = (scope.start - baseline_from).total_seconds() / 3600
    if baseline_hours < _MIN_BASELINE_HOURS or activity.is_empty():
        return empty
    counts = activity.group_by(keys).agg(
        scope.in_scope().sum().cast(pl.UInt32).alias("scope_count"),
        scope.in_baseline().sum().cast(pl.UInt32).alias("baseline_count"),
    )
    candidates = counts.filter(
        (pl.col("baseline_count") > 0) & (pl.col("scope_count") >= config.spike_min_count)
    ).with_columns((pl.col("baseline_count") / baseline_hours * scope.hours).alias("expected"))
    rows = []
    for row in candidates.iter_rows(named=True):
        ratio = row["scope_count"] / row["expected"]
        if ratio < config.spike_min_ratio:
            continue
        p_value = poisson_tail(row["scope_count"], row["expected"])
        if p_value < config.spike_p_value:
            rows.append({**row, "ratio": ratio, "p_value": p_value})
    if not rows:
        return empty
    return pl.DataFrame(rows, schema=empty.schema).sort(["p_value", "ratio"], descending=[False, True])


def newly_observed(
    entity_activity: pl.DataFrame, account_baseline_values: pl.DataFrame | None, scope: Scope, column: str
) -> pl.DataFrame:
    """Values of `column` the entity used in the scope and never in its baseline.

    Columns: value, first_seen, count, new_for_account (true when no principal of the account used it
    in the baseline either; null when the account's baseline was not given).
    """
    values = entity_activity.filter(pl.col(column).is_not_null())
    in_baseline = values.filter(scope.in_baseline()).select(pl.col(column).unique())
    new = (
        values.filter(scope.in_scope())
        .join(in_baseline, on=column, how="anti")
        .group_by(column)
        .agg(pl.col("time").min().alias("first_seen"), pl.len().alias("count"))
        .rename({column: "value"})
    )
    if account_baseline_values is None:
        flag = pl.lit(None, pl.Boolean)
    else:
        known = account_baseline_values.get_column(account_baseline_values.columns[0]).drop_nulls().unique()
        flag = ~pl.col("value").is_in(known.implode())
    return new.with_columns(flag.alias("new_for_account")).sort("first_seen", "value")


def api_name() -> pl.Expr:
    """`service:Action` with the service's short name, e.g. `iam:CreateAccessKey`."""
    service = pl.col("service").str.replace(r"\.amazonaws\.com$", "")
    return pl.when(service.is_null()).then(pl.col("action")).otherwise(pl.concat_str(service, pl.lit(":"), "action"))


def bucket_every(scope: Scope) -> str:
    """Timeline buckets: hourly for scopes up to three days, daily beyond."""
    return "1h" if scope.hours <= 72 else "1d"
