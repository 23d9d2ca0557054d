"""The time window of a question: --since/--until (ISO 8601) or --last 24h|7d|30m."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import polars as pl

from sleuth.errors import UsageError

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True)
class TimeWindow:
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive

    @classmethod
    def from_options(
        cls, since: str | None, until: str | None, last: str | None, now: datetime | None = None
    ) -> TimeWindow:
        if last and (since or until):
            raise UsageError("--last cannot be combined with --since/--until", "use one or the other")
        if last:
            end = now or datetime.now(UTC)
            return cls(end - parse_duration(last), None)
        window = cls(parse_time(since, "--since") if since else None, parse_time(until, "--until") if until else None)
        if window.since and window.until and window.since >= window.until:
            raise UsageError("--since is not before --until", "swap the two times")
        return window

    @property
    def bounded(self) -> bool:
        return self.since is not None or self.until is not None

    def may_hold_key_day(self, day: date, slack_days: int) -> bool:
        """Could a file delivered on `day` hold records inside the window?"""
        slack = timedelta(days=slack_days)
        if self.since and day < self.since.date() - slack:
            return False
        return not (self.until and day > self.until.date() + slack)

    def may_hold_day(self, day: date) -> bool:
        """Could records whose time falls on `day` lie inside the window?"""
        if self.since and day < self.since.date():
            return False
        return not (self.until and day > self.until.date())

    def expr(self, column: str) -> pl.Expr:
        condition = pl.lit(True)
        if self.since:
            condition &= pl.col(column) >= self.since
        if self.until:
            condition &= pl.col(column) < self.until
        return condition


def parse_duration(text: str) -> timedelta:
    match = _DURATION.match(text)
    if not match:
        raise UsageError(f"cannot read the duration {text!r}", "write it as a number and a unit: 30m, 24h, 7d, 2w")
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


def parse_time(text: str, flag: str) -> datetime:
    """ISO 8601 date or date-time; naive times are UTC."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"{flag}: cannot read the time {text!r}", "use ISO 8601, e.g. 2023-07-10 or 2023-07-10T12:00:00Z"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
