"""What every parser returns, and the accounting rule it keeps: read = kept + duplicate + skipped."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import polars as pl


@dataclass
class ParseResult:
    """The canonical rows of one input plus the fate of every record read from it."""

    format: str
    frames: dict[str, pl.DataFrame] = field(default_factory=dict)
    read: int = 0
    skipped: Counter = field(default_factory=Counter)  # reason -> records
    warnings: list[str] = field(default_factory=list)
    ignored: str | None = None  # set when the whole input is knowingly not data (a digest file)
    error: str | None = None  # set when the whole input is unreadable (it is skipped)

    @property
    def kept(self) -> int:
        return sum(len(df) for name, df in self.frames.items() if name != "finding_entities")

    def skip(self, reason: str, count: int = 1) -> None:
        if count:
            self.skipped[reason] += count
