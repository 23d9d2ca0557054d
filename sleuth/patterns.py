"""User patterns: `*`/`?` wildcards as anchored, case-insensitive regular expressions."""

from __future__ import annotations

import re

WILDCARDS = re.compile(r"[*?]")


def has_wildcard(pattern: str) -> bool:
    return bool(WILDCARDS.search(pattern))


def wildcard_regex(pattern: str) -> str:
    """`Put*Policy` -> `(?i)^Put.*Policy$`; every other character is literal."""
    parts = []
    for char in pattern:
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return "(?i)^" + "".join(parts) + "$"
