"""Renderers: a `Document` to text in one of the CLI contract's formats (handbook §5).

table: rich tables for a terminal; markdown: for tickets; json: the versioned contract with
`"schema": "sleuth/<kind>/v1"` first; jsonl and csv: the document's primary records, one per line.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime
from typing import Any

import orjson
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from sleuth.report import escape
from sleuth.report.document import Document, Section

FORMATS = ("table", "markdown", "json", "jsonl", "csv")
EXTENSIONS = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".txt": "table",
}
# Characters that only appear inside JSON strings and that orjson leaves raw.
_JSON_INVISIBLE = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ufeff]")
_KEEP_WHOLE = 20  # terminal columns whose longest cell is this short fold only when nothing else can
_FOLD_LEAST = 8  # the narrowest a column of one tier is folded to before the next tier folds too
_READABLE = 14  # a table that would fold a column narrower than this shows its rows as records instead
_JSON_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC | orjson.OPT_NON_STR_KEYS


def render(document: Document, fmt: str, *, width: int = 120, color: bool = False, max_cell: int = 80) -> str:
    if fmt == "table":
        return render_table(document, width=width, color=color, max_cell=max_cell)
    if fmt == "markdown":
        return render_markdown(document)
    if fmt == "json":
        return render_json(document)
    if fmt == "jsonl":
        return render_jsonl(document)
    if fmt == "csv":
        return render_csv(document)
    raise ValueError(f"unknown format {fmt!r}")


def cell_text(value: Any) -> str:
    """A value as plain text, before the escaping of any one output."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return (
            value.strftime("%Y-%m-%dT%H:%M:%SZ") if value.microsecond == 0 else value.isoformat().replace("+00:00", "Z")
        )
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return ", ".join(cell_text(v) for v in value)
    if isinstance(value, dict):
        return orjson.dumps(value, option=_JSON_OPTIONS).decode()
    return str(value)


# --- terminal --------------------------------------------------------------------------------


def render_table(document: Document, *, width: int, color: bool, max_cell: int) -> str:
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=width,
        color_system="standard" if color else None,
        force_terminal=color,
        no_color=not color,
        highlight=False,
        emoji=False,
        markup=False,
    )
    if document.headline:
        console.print(Text(escape.terminal(document.headline)))
    for section in document.sections:
        if section.kind in ("text", "diagram"):
            console.print(Text(escape.terminal(section.title), style="bold"))
            body = section.body or section.empty
            # text: one paragraph that holds log data, so a \n or \r of it is shown escaped, never obeyed
            # (splitlines() broke it at \r, \x1c-\x1e, \x85, \u2028). diagram: as_text's lines (labels escaped).
            lines = [body] if section.kind == "text" else body.splitlines()
            console.print(Text("\n".join(escape.terminal(line) for line in lines) + "\n"))
            continue
        if section.kind == "steps":
            console.print(Text(escape.terminal(section.title), style="bold"))
            for number, (title, command, why) in enumerate(section.rows, start=1):
                console.print(Text(f"{number}. {escape.terminal(title)}"))
                # soft_wrap: never a line break inside a command (a pasted half would run on its own)
                console.print(Text(f"   $ {escape.terminal(command)}", style="cyan"), soft_wrap=True)
                console.print(Text(f"   {escape.terminal(why)}", style="dim"))
            console.print(Text(""))
            continue
        console.print(_rich_table(section, max_cell, width))
    return buffer.getvalue()


def _rich_table(section: Section, max_cell: int, width: int) -> Table | Text:
    title = Text(escape.terminal(section.title), style="bold")
    if not section.rows:
        return Text.assemble(title, Text(f": {section.empty}\n"))
    # Two spaces between columns (a one-space divider and one of padding), none at the edges.
    table = Table(
        title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0)
    )
    cells = _cells(section, [section.limits.get(column, max_cell) for column in section.columns])
    longest = [max(len(column), *(len(row[i]) for row in cells)) for i, column in enumerate(section.columns)]
    texty = [any(" " in row[i] for row in cells) for i in range(len(section.columns))]
    widths = column_widths(longest, width, texty)
    if any(fitted < min(n, _READABLE) for fitted, n in zip(widths, longest, strict=True)):
        # a record has the terminal's width for each value: no column limit below max_cell applies
        limits = [max(section.limits.get(column, max_cell), max_cell) for column in section.columns]
        table = _record_table(table, section.columns, _cells(section, limits))
    else:
        for column, fitted in zip(section.columns, widths, strict=True):
            table.add_column(Text(column), width=fitted, overflow="fold")
        for row in cells:
            table.add_row(*(Text(cell) for cell in row))
    if section.note:
        table.caption = Text(escape.terminal(section.note))
        table.caption_justify = "left"
    return table


def _cells(section: Section, limits: list[int]) -> list[list[str]]:
    return [
        [escape.terminal(_terminal_text(v), limit) or "-" for v, limit in zip(row, limits, strict=True)]
        for row in section.rows
    ]


def _record_table(table: Table, columns: list[str], cells: list[list[str]]) -> Table:
    """Rows too wide for the terminal, one record after another as `column  value` lines (as psql's
    expanded display): every value is read whole rather than folded into slivers."""
    table.show_header = False
    table.add_column(no_wrap=True, style="dim")
    table.add_column(overflow="fold")
    for number, row in enumerate(cells):
        if number:
            table.add_section()
        for column, cell in zip(columns, row, strict=True):
            table.add_row(Text(column), Text(cell))
    return table


def _terminal_text(value: Any) -> str:
    """cell_text, but a time with a space for its T (RFC 3339 allows it), so a narrow column folds it
    into its date and its time of day rather than in the middle of the hour."""
    if isinstance(value, datetime) and value.microsecond == 0:
        return value.strftime("%Y-%m-%d %H:%M:%SZ")
    return cell_text(value)


def column_widths(longest: list[int], width: int, texty: list[bool] | None = None) -> list[int]:
    """Each column's width so that the table fits `width` terminal columns; longer values fold.

    Columns give way in tiers, each capped at the largest width that fits: first the long ones (over
    `_KEEP_WHOLE` characters: titles, ARNs), then also those of words (`texty`: a tactic name folds
    at a space), and only then the short single values (times, ids, addresses), which read badly
    folded. A tier is tried only if its columns keep `_FOLD_LEAST` characters each; the last tier
    caps every column (rich would otherwise squeeze a column out of sight)."""
    budget = max(width - 2 * (len(longest) - 1), len(longest))
    if sum(longest) <= budget:
        return longest
    texty = texty or [False] * len(longest)
    long = [n > _KEEP_WHOLE for n in longest]
    for tier in (long, [a or b for a, b in zip(long, texty, strict=True)]):
        rest = budget - sum(n for n, give in zip(longest, tier, strict=True) if not give)
        giving = [n for n, give in zip(longest, tier, strict=True) if give]
        if giving and rest >= _FOLD_LEAST * len(giving):
            cap = _cap(giving, rest)
            return [min(n, cap) if give else n for n, give in zip(longest, tier, strict=True)]
    cap = _cap(longest, budget)
    return [min(n, cap) for n in longest]


def _cap(widths: list[int], budget: int) -> int:
    """The largest cap c (at least 1) with sum(min(w, c)) <= budget."""
    cap = max(budget // max(len(widths), 1), 1)
    while sum(min(w, cap + 1) for w in widths) <= budget and cap < max(widths):
        cap += 1
    return cap


# --- markdown --------------------------------------------------------------------------------


def render_markdown(document: Document) -> str:
    lines: list[str] = []
    if document.headline:
        lines += [escape.markdown(document.headline), ""]
    for section in document.sections:
        lines += [f"## {escape.markdown(section.title)}", ""]
        if section.kind == "text":
            # One paragraph: a blank line in log data must not start a paragraph of its own.
            lines += [escape.markdown(section.body or section.empty) + "\n"]
            continue
        if section.kind == "diagram":
            # Mermaid source whose labels the view escaped with escape.mermaid_label; a fence in the
            # data cannot close the block because labels hold no backtick.
            lines += ["```mermaid", (section.body or "").replace("`", "#96;").rstrip(), "```", ""]
            continue
        if section.kind == "steps":
            told: set[str] = set()  # a reason said once: the steps for ten keys need not repeat it ten times
            for number, (title, command, why) in enumerate(section.rows, start=1):
                fence = _fence(command)
                # A list item's blocks are indented to its text ("10. " is 4 wide): less ends the list.
                pad = " " * (len(str(number)) + 2)
                block = [f"{fence}sh", escape.visible(command), fence]
                if why not in told:
                    block += ["", escape.markdown(why)]
                    told.add(why)
                lines += [f"{number}. {escape.markdown(title)}", "", *(pad + ln if ln else "" for ln in block), ""]
            if not section.rows:
                lines += [escape.markdown(section.empty.capitalize()) + ".", ""]
            continue
        folded = section.kind == "details" and section.rows
        if folded:
            # a title such as "Timeline (25 of 140; ...)" counts its rows already
            count = "" if " of " in section.title else f" ({len(section.rows)} rows)"
            lines += [f"<details><summary>{escape.markdown(section.title)}{count}</summary>", ""]
        if not section.rows:
            lines += [escape.markdown(section.empty.capitalize()) + ".", ""]
            continue
        lines.append("| " + " | ".join(escape.markdown(c) for c in section.columns) + " |")
        lines.append("|" + "---|" * len(section.columns))
        for row in section.rows:
            lines.append("| " + " | ".join(escape.markdown(cell_text(v)) for v in row) + " |")
        lines.append("")
        if section.note:
            lines += [escape.markdown(section.note), ""]
        if folded:
            lines += ["</details>", ""]
    return "\n".join(lines)


def _fence(text: str) -> str:
    """A code fence longer than any run of backticks in `text`, so the text cannot close it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


# --- machine formats -------------------------------------------------------------------------


def render_json(document: Document) -> str:
    payload = {"schema": document.schema, **document.data}
    return _json_text(payload, orjson.OPT_INDENT_2) + "\n"


def render_jsonl(document: Document) -> str:
    return "".join(_json_text(record) + "\n" for record in document.records)


def _json_text(value: Any, option: int = 0) -> str:
    """JSON whose strings carry no raw invisible character: orjson escapes only C0, so DEL, C1 controls
    and bidi overrides are written as \\u escapes too (a terminal would otherwise obey them)."""
    text = orjson.dumps(value, option=_JSON_OPTIONS | option, default=_json_default).decode()
    return _JSON_INVISIBLE.sub(lambda match: f"\\u{ord(match.group(0)):04x}", text)


def render_csv(document: Document) -> str:
    buffer = io.StringIO()
    columns = list(document.records[0]) if document.records else document.columns
    if not columns:
        return ""
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for record in document.records:
        writer.writerow([escape.csv_cell(escape.visible(cell_text(record.get(column)))) for column in columns])
    return buffer.getvalue()


def _json_default(value: Any) -> Any:
    if isinstance(value, set | frozenset):
        return sorted(value)
    return str(value)
