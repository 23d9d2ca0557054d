"""User patterns: `*`/`?` wildcards as anchored, case-insensitive regular expressions."""

from __future__ import annotations

import re
from collections.abc import Iterable

import polars as pl

from sleuth.netaddr import Network, parse_ip

WILDCARDS = re.compile(r"[*?]")


def has_wildcard(pattern: str) -> bool:
    return bool(WILDCARDS.search(pattern))


def wildcard_regex(pattern: str) -> str:
    """`Put*Policy` -> `(?is)^Put.*Policy$`; every other character is literal. `s`: a wildcard matches a
    line break too, so a name with a newline in it (written by an attacker) cannot hide from `*`."""
    parts = []
    for char in pattern:
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return "(?is)^" + "".join(parts) + "$"


def text_matches(column: pl.Expr, pattern: str) -> pl.Expr:
    """Case-insensitive equality, or a wildcard match when the pattern has * or ?; null is no match."""
    if has_wildcard(pattern):
        return column.str.contains(wildcard_regex(pattern)).fill_null(False)
    return (column.str.to_lowercase() == pattern.lower()).fill_null(False)


def addresses_in(values: Iterable[str | None], networks: list[Network]) -> list[str]:
    """The values (as written in the logs) that are addresses inside any of the networks."""
    matching = []
    for value in values:
        address = parse_ip(value)
        if address is not None and any(address.version == n.version and address in n for n in networks):
            matching.append(value)
    return matching
