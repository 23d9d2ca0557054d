"""Hostile input (handbook §6): every command and format over fixtures/hostile/, checked as a responder would.

The fixtures (written by fixtures/hostile/make.py) are valid logs whose attacker-controlled fields carry
rich markup, ANSI / OSC escapes, carriage returns, bidi overrides, markdown and HTML injection, Mermaid
syntax, spreadsheet formulas, NUL bytes, path traversal, a 1 MB user agent and deep nesting. Nothing of
that may be interpreted by a terminal, a markdown viewer or a spreadsheet, and nothing may crash.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from click.testing import Result

from tests.conftest import FIXTURES, run_cli

HOSTILE = FIXTURES / "hostile"
FORMATS = ("table", "markdown", "json", "jsonl", "csv")
COMMANDS = ("search", "sources", "findings")
BIG_USER_AGENT_CHARS = 1 << 20  # as fixtures/hostile/make.py writes it

# Characters that must never reach a reader raw: C0 controls but the line feed (ESC, BEL, CR, NUL, TAB ...),
# DEL, C1 controls (U+009B is a one-character CSI), and the bidi marks, overrides and isolates.
C0 = re.compile("[\x00-\x09\x0b-\x1f]")
INVISIBLE = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ufeff]")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
NUMBER = re.compile(r"[-+]?\d+(\.\d+)?([eE][-+]?\d+)?")
# A pipe that ends a markdown cell: preceded by an even number (0, 2, ...) of backslashes.
CELL_PIPE = re.compile(r"(?<!\\)(?:\\\\)*\|")
# The hostile text a terminal must show literally (markup as text, escapes spelled out), per command.
SHOWN_LITERALLY = {
    "search": ["[bold red]pwned[/]", "[link=http://evil]x[/link]", "\\x1b[31mred\\x1b[0m", "ok\\rEVIL",
               "invoice\\u202eexe.pdf", "\\x9b31mc1", "a\\x00b", "| x | y |", "user/[bold red]pwned[/]"],
    "sources": ["[bold red]pwned[/]", "\\x1b]8;;http://evil\\x07link\\x1b]8;;\\x07", "invoice\\u202eexe.pdf",
                "[bold]eni[/]", "eni-\\x1b[31m", "eni-\\u202eexe", '=HYPERLINK("x")'],
    "findings": ["[bold red]pwned[/] (markup)", "\\x1b[31mred\\x1b[0m", "ok\\rEVIL", "invoice\\u202eexe.pdf",
                 "|x|[red]t[/]"],
}  # fmt: skip


def _run(args: list) -> Result:
    return run_cli([*args, "--no-color"])


class Outputs:
    """Each (source, command, format) run once per module, however many tests look at it."""

    def __init__(self, case: Path) -> None:
        self.sources = {"raw": HOSTILE, "case": case}
        self.results: dict[tuple[str, str, str], Result] = {}

    def get(self, source: str, command: str, fmt: str) -> Result:
        key = (source, command, fmt)
        if key not in self.results:
            self.results[key] = _run([command, "-s", self.sources[source], "-f", fmt])
        return self.results[key]


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    case = tmp_path_factory.mktemp("hostile") / "case"
    _run(["ingest", "-s", HOSTILE, "-o", case, "-q"])
    return case


@pytest.fixture(scope="module")
def outputs(case: Path) -> Outputs:
    return Outputs(case)


# --- checks a responder would make, one per format ----------------------------------------------


def check_no_raw_controls(text: str, where: str) -> None:
    for pattern in (C0, INVISIBLE):
        found = pattern.search(text)
        assert found is None, (
            f"raw {found.group(0)!r} in {where} at {found.start()}: {text[found.start() - 60 :][:120]!r}"
        )


def check_table(text: str, command: str) -> None:
    check_no_raw_controls(text, "table")
    for shown in SHOWN_LITERALLY.get(command, []):
        assert shown in text, f"{shown!r} not shown literally in the {command} table"


def check_markdown(text: str) -> None:
    check_no_raw_controls(text, "markdown")
    lines = text.split("\n")
    assert "<" not in text, "raw < in markdown: HTML could be injected"
    for match in re.finditer(r"\]\(", text):
        assert text[match.start() - 1] == "\\", f"unescaped link or image: {text[match.start() - 40 :][:80]!r}"
    for match in re.finditer("`", text):
        backslashes = len(text[: match.start()]) - len(text[: match.start()].rstrip("\\"))
        assert backslashes % 2 == 1, f"unescaped backtick: {text[match.start() - 40 :][:80]!r}"
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("#"):
            assert re.match(r"## [A-Z]", line), f"a heading that is not the document's own: {line[:120]!r}"
        if line.startswith("|"):
            # A table: header, separator, rows up to the blank line; every row has the header's cells.
            width = len(CELL_PIPE.findall(line))
            assert re.fullmatch(r"\|(---\|)+", lines[index + 1]), f"no separator under {line[:120]!r}"
            assert lines[index + 1].count("|") == width
            index += 2
            while index < len(lines) and lines[index]:
                row = lines[index]
                assert row.startswith("| ") and row.endswith(" |"), f"a broken table row: {row[:120]!r}"
                assert len(CELL_PIPE.findall(row)) == width, f"a row with other cells than its header: {row[:200]!r}"
                index += 1
            continue
        index += 1


def check_csv(text: str) -> list[list[str]]:
    check_no_raw_controls(text.replace("\n", ""), "csv")
    limit = csv.field_size_limit(1 << 22)  # the 1 MB user agent is one cell
    try:
        rows = list(csv.reader(io.StringIO(text)))
    finally:
        csv.field_size_limit(limit)
    assert rows, "no CSV header"
    for row in rows:
        assert len(row) == len(rows[0]), f"a CSV row with {len(row)} cells, header has {len(rows[0])}"
        for cell in row:
            if cell.startswith(FORMULA_START) and not NUMBER.fullmatch(cell):
                raise AssertionError(f"a CSV cell a spreadsheet would evaluate: {cell[:120]!r}")
    return rows


def check_json(text: str, fmt: str) -> list:
    """Parses; ESC, BEL, CR, NUL, TAB appear only as JSON escapes (bidi and C1: see the xfail below)."""
    found = C0.search(text)
    assert found is None, f"raw {found.group(0)!r} in {fmt} output"
    if fmt == "json":
        return [json.loads(text)]
    return [json.loads(line) for line in text.splitlines()]


def check_output(result: Result, command: str, fmt: str) -> None:
    check_no_raw_controls(result.stderr, "stderr")
    text = result.stdout
    if fmt == "table":
        check_table(text, command)
    elif fmt == "markdown":
        check_markdown(text)
    elif fmt == "csv":
        check_csv(text)
    else:
        check_json(text, fmt)


# --- every command x format, on the raw files and on a case built from them ---------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("command", COMMANDS)
def test_raw_files(outputs: Outputs, command: str, fmt: str) -> None:
    check_output(outputs.get("raw", command, fmt), command, fmt)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("command", COMMANDS)
def test_case(outputs: Outputs, command: str, fmt: str) -> None:
    check_output(outputs.get("case", command, fmt), command, fmt)


def _walk(folder: Path) -> set[Path]:
    return set(folder.rglob("*"))


@pytest.mark.parametrize("fmt", FORMATS)
def test_ingest(tmp_path: Path, fmt: str) -> None:
    """`ingest -o tmp/case` writes only inside tmp/case (nothing beside it, nothing in the inputs' folder);
    its summary is as clean as any other output."""
    (tmp_path / "before.txt").write_text("x")
    before, inputs_before = _walk(tmp_path), _walk(HOSTILE)
    case = tmp_path / "case"
    result = _run(["ingest", "-s", HOSTILE, "-o", case, "-f", fmt])
    outside = {p for p in _walk(tmp_path) - before if case not in p.parents and p != case}
    assert not outside, f"ingest wrote outside its case folder: {sorted(outside)}"
    assert _walk(HOSTILE) == inputs_before, "ingest wrote into the inputs' folder"
    assert (case / "manifest.json").is_file()
    assert all(p.resolve().is_relative_to(case.resolve()) for p in _walk(case)), "a case file points outside"
    check_output(result, "ingest", fmt)
    if fmt == "json":
        run = json.loads(result.stdout)["run"]
        assert run["read"] == run["kept"] + run["duplicate"] + run["skipped"]
        assert run["skipped"] >= 1  # the record nested 2000 levels deep


# --- what the fixtures are there to prove -------------------------------------------------------


@pytest.mark.parametrize("source", ["raw", "case"])
def test_accounting(outputs: Outputs, source: str) -> None:
    """read = kept + duplicate + skipped; the record nested 2000 levels deep is skipped and counted."""
    totals = json.loads(outputs.get(source, "sources", "json").stdout)["totals"]
    assert totals["read"] == totals["kept"] + totals["duplicate"] + sum(totals["skipped"].values())
    assert totals["skipped"].get("nesting too deep", 0) >= 1, totals
    assert totals["read"] >= 100, totals  # every fixture file was read (not skipped whole)
    search = json.loads(outputs.get(source, "search", "json").stdout)
    sessions = {event["session"] for event in search["events"]}
    assert "AROAX:too-deep" not in sessions and "AROAX:big" in sessions
    findings = json.loads(outputs.get(source, "findings", "json").stdout)["findings"]
    assert sum(f["producer"] == "guardduty" for f in findings) == 27  # sleuth's own detections come on top
    flows = json.loads(outputs.get(source, "sources", "json").stdout)["flows"]
    assert sum(row["flows"] for row in flows) == 14  # every hostile interface-id line is a valid flow


@pytest.mark.parametrize("source", ["raw", "case"])
def test_json_keeps_hostile_text_exact(outputs: Outputs, source: str) -> None:
    """JSON is data for machines: the payloads come back byte for byte (escaping is the renderers' job)."""
    events = json.loads(outputs.get(source, "search", "json").stdout)["events"]
    agents = {event["user_agent"] for event in events}
    assert "\x1b]8;;http://evil\x07link\x1b]8;;\x07" in agents
    assert "ok\rEVIL" in agents and "a\x00b" in agents and "invoice\u202eexe.pdf" in agents
    sessions = {event["session"] for event in events}
    assert "AROAX:[bold red]pwned[/]" in sessions
    resources = {arn for event in events for arn in event["resources"] or []}
    assert {"arn:aws:s3:::../../etc/passwd", "arn:aws:s3:::..\\..\\x", "arn:aws:s3:::a\x00b"} <= resources
    titles = {f["title"] for f in json.loads(outputs.get(source, "findings", "json").stdout)["findings"]}
    assert "<script>alert(1)</script> (html-script)" in titles
    interfaces = {row["interface_id"] for row in json.loads(outputs.get(source, "sources", "json").stdout)["flows"]}
    assert {"eni-\x1b[31m", '=HYPERLINK("x")', "[bold]eni[/]"} <= interfaces


@pytest.mark.parametrize("source", ["raw", "case"])
def test_big_user_agent_is_cut_in_the_terminal_kept_whole_in_json(outputs: Outputs, source: str) -> None:
    table = outputs.get(source, "search", "table").stdout
    assert len(table) < 100_000, f"the search table is {len(table):,} characters"
    assert "[bold red]BIG[/]\\x1b[31m" in table  # the start of the cell, escaped, then cut with …
    assert "…" in table
    events = json.loads(outputs.get(source, "search", "json").stdout)["events"]
    big = [event["user_agent"] for event in events if event["session"] == "AROAX:big"]
    assert [len(agent) for agent in big] == [BIG_USER_AGENT_CHARS]
    lines = [json.loads(line) for line in outputs.get(source, "search", "jsonl").stdout.splitlines()]
    assert [len(e["user_agent"]) for e in lines if e["session"] == "AROAX:big"] == [BIG_USER_AGENT_CHARS]


def test_csv_neutralises_formulas_with_a_quote(outputs: Outputs) -> None:
    """The formula payloads are still there, as text: prefixed with `'`, not dropped."""
    cells = {cell for row in check_csv(outputs.get("raw", "search", "csv").stdout) for cell in row}
    assert {'\'=HYPERLINK("http://evil","x")', "'+1+1", "'-2+3", "'@SUM(A1)"} <= cells
    regions = {row[1] for row in check_csv(outputs.get("raw", "sources", "csv").stdout)[1:]}
    assert '\'=HYPERLINK("http://evil","x")' in regions and "[bold red]pwned[/]" in regions


def test_markdown_shows_payloads_as_text(outputs: Outputs) -> None:
    """Escaped, not dropped: a reader of the ticket still sees what the attacker wrote."""
    text = outputs.get("raw", "search", "markdown").stdout
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "\\[click\\](http://evil)" in text and "\\!\\[img\\](http://evil/i.png)" in text
    assert "a\\\\n\\| --- \\|\\\\nb" in text  # the newline shown as \n, its pipes escaped
    findings = outputs.get("raw", "findings", "markdown").stdout
    assert "Exfiltration:S3/\\[bold red\\]pwned\\[/\\]\\|x\\|\\[red\\]t\\[/\\]" in findings


# --- bugs these fixtures found ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "command", "fmt"),
    [(source, command, fmt) for source in ("raw", "case") for command in COMMANDS for fmt in ("json", "jsonl")],
)
def test_json_has_no_raw_invisible_characters(outputs: Outputs, source: str, command: str, fmt: str) -> None:
    text = outputs.get(source, command, fmt).stdout
    found = INVISIBLE.search(text)
    assert found is None, f"raw {found.group(0)!r} in {command} -f {fmt}"


@pytest.mark.parametrize("source", ["raw", "case"])
def test_request_parameters_stay_json(outputs: Outputs, source: str) -> None:
    events = json.loads(outputs.get(source, "search", "json").stdout)["events"]
    broken = [e["request"] for e in events if e["request"] is not None and not isinstance(e["request"], dict)]
    assert not broken, f"{len(broken)} events whose request is not an object, e.g. {broken[0][:120]!r}"


def _deep_cloudtrail(path: Path, depth: int) -> Path:
    record = {
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/deep", "accountId": "123456789012"},
        "eventTime": "2026-03-05T10:00:00Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.10",
        "requestParameters": "@@DEEP@@",
        "eventID": "00000000-0000-4000-8000-000000000300",
        "recipientAccountId": "123456789012",
    }
    nested = '{"a":' * depth + "1" + "}" * depth
    path.write_text('{"Records":[' + json.dumps(record).replace('"@@DEEP@@"', nested) + "]}")
    return path


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv"])
def test_request_nested_300_deep_does_not_crash_search(tmp_path: Path, fmt: str) -> None:
    source = _deep_cloudtrail(tmp_path / "deep.json", 300)
    result = _run(["search", "-s", source, "-f", fmt])  # skipped under the default max_json_depth
    assert "1 nesting too deep" in result.stderr
    config = tmp_path / "sleuth.toml"
    config.write_text("max_json_depth = 1000\n")
    result = _run(["search", "-s", source, "--config", config, "-f", fmt])  # kept: JSON output copes
    assert '{""a"":' in result.stdout if fmt == "csv" else '{\\"a\\":' in result.stdout


def test_cloudtrail_honours_max_json_depth(outputs: Outputs) -> None:
    totals = json.loads(outputs.get("raw", "sources", "json").stdout)["totals"]
    assert totals["skipped"].get("nesting too deep") == 2  # 200 and 2000 levels deep
