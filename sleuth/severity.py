"""Severity: GuardDuty's 0-10 scale and its label bands, shared by findings of every producer."""

from __future__ import annotations

import polars as pl

from sleuth.errors import UsageError

# The lowest score of each band: Low 1-3.9, Medium 4-6.9, High 7-8.9, Critical 9-10; below 1 Informational.
BANDS = {"Informational": 0.0, "Low": 1.0, "Medium": 4.0, "High": 7.0, "Critical": 9.0}
ORDER = list(BANDS)


def severity_label(severity: float | None) -> str | None:
    if severity is None:
        return None
    label = "Informational"
    for name, floor in BANDS.items():
        if severity >= floor:
            label = name
    return label


def label_expr(column: str = "severity") -> pl.Expr:
    """severity_label as a polars expression."""
    expr = pl.lit("Informational")
    for name, floor in BANDS.items():
        expr = pl.when(pl.col(column) >= floor).then(pl.lit(name)).otherwise(expr)
    return pl.when(pl.col(column).is_not_null()).then(expr)


def parse_severity(text: str, option: str = "--min-severity") -> float:
    """A severity flag's value (`option` names the flag in errors): a number from 0 to 10 or a band name."""
    bands = {name.lower(): floor for name, floor in BANDS.items()}
    band = bands.get(text.strip().lower())
    if band is not None:
        return band
    try:
        value = float(text)
    except ValueError:
        raise UsageError(
            f"{option} {text!r} is not a severity", "give a number from 0 to 10 or low/medium/high/critical"
        ) from None
    if not 0 <= value <= 10:
        raise UsageError(f"{option} {text} is outside 0-10", "give a number from 0 to 10")
    return value
