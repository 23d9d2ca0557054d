"""One escaping layer per output (handbook §6): log text is data, never markup, escapes or formulas.

Every renderer passes every string that came from a log through the function for its output.
"""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, and the bidirectional overrides/isolates that reorder what a reader sees.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ufeff]")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]!|~])")
_MARKDOWN_LINE_START = ("#", "-", "+", "=")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "|")
_FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MERMAID_SPECIAL = frozenset('"#&<>[](){}|;`\\')


def _escape_char(match: re.Match) -> str:
    char = match.group(0)
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
    if char in named:
        return named[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """Control characters, ANSI escapes and bidi overrides shown as escapes (\\x1b, \\u202e)."""
    return _UNSAFE.sub(_escape_char, text)


def terminal(text: str, limit: int | None = None) -> str:
    """Text for a terminal cell. Rich markup is never parsed: renderers wrap this in rich.text.Text."""
    shown = visible(text)
    if limit is not None and len(shown) > limit:
        shown = shown[: max(1, limit - 1)] + "…"
    return shown


def markdown(text: str) -> str:
    """Text for a markdown table cell or paragraph: no structure, link, HTML or line break survives."""
    shown = visible(text)
    shown = _MARKDOWN_SPECIAL.sub(r"\\\1", shown)
    if shown.startswith(_MARKDOWN_LINE_START):
        shown = "\\" + shown
    return shown.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mermaid_label(text: str) -> str:
    """A Mermaid node or edge label, to be written inside double quotes: A["label"].

    Mermaid reads entity codes (#quot; #91;) inside quoted labels, so every character that could end
    the label, start markup or a link is written as one; no data becomes syntax or HTML."""
    shown = visible(text).replace("\n", " ")
    return "".join(f"#{ord(char)};" if char in _MERMAID_SPECIAL else char for char in shown)


def csv_cell(text: str) -> str:
    """A CSV cell that a spreadsheet will not evaluate as a formula."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def filename(text: str, default: str = "unnamed") -> str:
    """A single safe path component derived from data: no separators, no dot-dot, no hidden file."""
    name = _FILENAME_UNSAFE.sub("_", text).strip("._")
    return name[:120] or default
