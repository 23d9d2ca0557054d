"""What every parser returns, and the accounting rule it keeps: read = kept + duplicate + skipped."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import polars as pl


@dataclass
class ParseResult:
    """The fate of every record read from one input (and, from `parse`, its canonical rows)."""

    format: str
    frames: dict[str, pl.DataFrame] = field(default_factory=dict)
    read: int = 0
    kept: int = 0
    skipped: Counter = field(default_factory=Counter)  # reason -> records
    warnings: list[str] = field(default_factory=list)
    ignored: str | None = None  # set when the whole input is knowingly not data (a digest file)
    error: str | None = None  # set when the whole input is unreadable (it is skipped)

    def skip(self, reason: str, count: int = 1) -> None:
        if count:
            self.skipped[reason] += count
