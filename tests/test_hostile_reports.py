"""Hostile input in the reports (handbook §6): summary, profile, search --entity, rules, groups, group (and its
text, Mermaid, DOT and GraphML graphs) and investigate (and its remediation commands), every format.

They run over a case built from fixtures/hostile/ (group and investigate over the raw files too), whose
attacker also makes successful IAM, S3 and CloudTrail calls with names meant for a shell (see
REMEDIATION_NAMES in fixtures/hostile/make.py). Besides tests/test_hostile.py's checks per format: a
markdown code fence (Mermaid, a remediation command) or <details> block cannot be closed by data; graph
labels stay labels in every graph format; and a name from the logs in a remediation command is one
shell-quoted argument: the commands are run through bash, with a stub `aws`, to prove it.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from xml.etree import ElementTree

import pytest
from click.testing import Result

from sleuth.report.escape import visible
from tests.conftest import ROOT, run_cli
from tests.test_hostile import (
    FORMATS,
    HOSTILE,
    INVISIBLE,
    check_csv,
    check_json,
    check_markdown,
    check_no_raw_controls,
)


def _fixture_module():
    spec = importlib.util.spec_from_file_location("hostile_make", HOSTILE / "make.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MAKE = _fixture_module()
ACCOUNT = MAKE.ACCOUNT
ATTACKER_ARN = f"arn:aws:iam::{ACCOUNT}:user/{MAKE.ATTACKER}"
NAMES = MAKE.REMEDIATION_NAMES
NEW_USER_ARN = f"arn:aws:iam::{ACCOUNT}:user/{NAMES['new-user']}"
FIXED = {"SOURCE_DATE_EPOCH": "1767225600"}  # the run's time is in remediation commands: the same every run

# name -> arguments after the command's -s (None: a command without sources); GROUP is the attacker's group.
COMMANDS: dict[str, list[str] | None] = {
    "summary": ["summary"],
    "rules": None,
    "groups": ["groups"],
    "group": ["group", "GROUP"],
    "entities": ["search", "--entity", "*"],
    "profile": ["profile", ATTACKER_ARN],
    "investigate": ["investigate", MAKE.ATTACKER_KEY],  # the attacker's key: remediation of its names
    "investigate-users": ["investigate", "AKIAEXAMPLEHOSTILE01"],  # the key every hostile IAM user signs with
}
# Text a terminal must show literally: markup as text, controls spelled out (\x1b, \n, \r, \u202e).
SHOWN_LITERALLY = {
    "summary": ["user/[bold red]pwned[/]", "user/\\x1b]8;;http://evil\\x07link", "user/invoice\\u202eexe.pdf",
                "user/| x | y |", 'user/mallory"]]-->|x|#<b>\\;'],
    "group": ['user/mallory"]]-->|x|#<b>\\;touch /tmp/pwned', 'user/x$(touch /tmp/pwned)\\n"]]-->#<script>',
              "role/r'&&touch /tmp/pwned&&'"],
    "entities": ["[bold red]pwned[/]", "[link=http://evil]x[/link]", "\\x1b[31mred\\x1b[0m", "ok\\rEVIL",
                 "invoice\\u202eexe.pdf", "| x | y |", "a\\x00b", "\\x9b31mc1"],
    "profile": [f"AwsUser {ATTACKER_ARN}", "cloudtrail:StopLogging"],
    "investigate": [ATTACKER_ARN, "--bucket 'b\\n$(touch /tmp/pwned)'", "--policy-name 'p`touch /tmp/pwned`'",
                    'user/x$(touch /tmp/pwned)\\n"]]-->#<script>'],
    "investigate-users": ["user/[bold red]pwned[/]", "--name '| x | y |'", "--name 'invoice\\u202eexe.pdf'",
                          "--name 'evil\\x07link\\x1b]8;;\\x07'"],
}  # fmt: skip
# Exact strings the JSON must hold (in any string of the document), per command.
IN_JSON = {
    "summary": [ATTACKER_ARN, f"arn:aws:iam::{ACCOUNT}:user/\x1b]8;;http://evil\x07link\x1b]8;;\x07"],
    "groups": [f"by user/{MAKE.ATTACKER}"],
    "group": [ATTACKER_ARN, NEW_USER_ARN, f"arn:aws:iam::{ACCOUNT}:role/{NAMES['role']}"],
    "entities": [ATTACKER_ARN, *MAKE.PAYLOADS.values()],
    "profile": [ATTACKER_ARN, "aws-cli/2.15.0"],
    "investigate": [ATTACKER_ARN, NAMES["bucket-newline"], NAMES["inline-policy"], NAMES["policy-arn"]],
    "investigate-users": [f"arn:aws:iam::{ACCOUNT}:user/ok\rEVIL", "invoice\u202eexe.pdf"],
}


class Outputs:
    """Each (source, command, format) run once per module, however many tests look at it."""

    def __init__(self, case: Path) -> None:
        self.sources = {"raw": HOSTILE, "case": case}
        self.results: dict[tuple, Result] = {}
        groups = json.loads(self._run(["groups", "-s", case, "-f", "json"]).stdout)["groups"]
        (self.group,) = [g["id"] for g in groups if f"by user/{MAKE.ATTACKER}" in g["title"]]

    @staticmethod
    def _run(args: list) -> Result:
        return run_cli([*args, "--no-color"], env=FIXED)

    def get(self, source: str, command: str, fmt: str, *extra: str) -> Result:
        key = (source, command, fmt, *extra)
        if key not in self.results:
            args = COMMANDS[command]
            if args is None:
                line = [command]
            else:
                line = [args[0], "-s", self.sources[source], *(self.group if a == "GROUP" else a for a in args[1:])]
            self.results[key] = self._run([*line, "-f", fmt, *extra])
        return self.results[key]


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> Outputs:
    case = tmp_path_factory.mktemp("hostile-reports") / "case"
    run_cli(["ingest", "-s", HOSTILE, "-o", case, "-q"])
    return Outputs(case)


# --- markdown with code fences and <details> -----------------------------------------------------

FENCE_OPEN = re.compile(r"( {0,6})(`{3,})(mermaid|sh)")  # inside a list item "10. ", fences are indented 4
DETAILS_OPEN = re.compile(r"<details><summary>[^<>`]*</summary>")
# A Mermaid label: no character that could end it or become markup, only entity codes (#34; ...).
LABEL = r'(?:[^"#&<>\[\](){}|;`\\\n]|#\d+;)*'
MERMAID_LINE = re.compile(
    rf'graph LR|  n\d+(?:\[|\{{\{{|\(\[|\[/)"{LABEL}"(?:\]|\}}\}}|\]\)|/\])|  n\d+ -->\|"{LABEL}"\| n\d+'
)


def mermaid_labels(lines: list[str]) -> set[str]:
    """The labels of a Mermaid flowchart, decoded, after checking every line against the grammar sleuth writes."""
    for line in lines:
        assert MERMAID_LINE.fullmatch(line), f"a Mermaid line data could have changed: {line[:200]!r}"
    quoted = [label for line in lines for label in re.findall(r'"([^"]*)"', line)]
    return {re.sub(r"#(\d+);", lambda m: chr(int(m.group(1))), label) for label in quoted}


def split_markdown(text: str) -> tuple[str, dict[str, list[list[str]]]]:
    """The markdown outside code fences and our <details> lines, and the fenced blocks by language.

    A fence ends at the first line a markdown reader takes as its closing fence; that must be the line
    sleuth wrote, so no data closed it early. <details> blocks open and close in pairs, on lines of their own."""
    lines = text.split("\n")
    outside: list[str] = []
    blocks: dict[str, list[list[str]]] = {"mermaid": [], "sh": []}
    depth = 0
    index = 0
    while index < len(lines):
        line = lines[index]
        opened = FENCE_OPEN.fullmatch(line)
        if opened:
            indent, fence, language = opened.groups()
            closing = re.compile(rf" {{0,{len(indent) + 3}}}`{{{len(fence)},}} *")  # any line that could close it
            end = next(i for i in range(index + 1, len(lines)) if closing.fullmatch(lines[i]))
            assert lines[end] == indent + fence, f"a fence closed by {lines[end]!r}"
            body = lines[index + 1 : end]
            if language == "sh":
                assert len(body) == 1, f"a command over {len(body)} lines: {body!r}"
            blocks[language].append(body)
            index = end + 1
            continue
        if DETAILS_OPEN.fullmatch(line):
            depth += 1
        elif line == "</details>":
            depth -= 1
            assert depth >= 0, "a </details> without its <details>"
        else:
            assert "details>" not in line, f"a <details> tag written by data: {line[:200]!r}"
            outside.append(line)
        index += 1
    assert depth == 0, "a <details> block left open"
    return "\n".join(outside), blocks


def check_report_markdown(text: str) -> dict[str, list[list[str]]]:
    check_no_raw_controls(text, "markdown")
    rest, blocks = split_markdown(text)
    check_markdown(rest)
    for block in blocks["mermaid"]:
        mermaid_labels(block)
    return blocks


def strings(value) -> set[str]:
    """Every string in a JSON document, keys included."""
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return set(value) | {s for v in value.values() for s in strings(v)}
    if isinstance(value, list):
        return {s for v in value for s in strings(v)}
    return set()


# --- every new command x format --------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_format(outputs: Outputs, command: str, fmt: str) -> None:
    result = outputs.get("case", command, fmt)
    check_no_raw_controls(result.stderr, "stderr")
    text = result.stdout
    if fmt == "table":
        check_no_raw_controls(text, f"{command} table")
        for shown in SHOWN_LITERALLY.get(command, []):
            assert shown in text, f"{shown!r} not shown literally in the {command} table"
    elif fmt == "markdown":
        check_report_markdown(text)
    elif fmt == "csv":
        check_csv(text)
    else:
        documents = check_json(text, fmt)
        found = INVISIBLE.search(text)
        assert found is None, f"raw {found.group(0)!r} in {command} -f {fmt}"
        if fmt == "json":
            held = strings(documents[0])
            for exact in IN_JSON.get(command, []):
                assert any(exact in s for s in held), f"{exact!r} not kept exactly in {command} -f json"


@pytest.mark.parametrize(("command", "fmt"), [("investigate", "json"), ("investigate", "markdown"), ("group", "table")])
def test_raw_files_give_the_same_report(outputs: Outputs, command: str, fmt: str) -> None:
    """The raw files, parsed on the fly, render as the case does (a report names its inputs: compared without)."""
    raw, case = outputs.get("raw", command, fmt).stdout, outputs.get("case", command, fmt).stdout
    if fmt == "json":
        raw_data, case_data = json.loads(raw), json.loads(case)
        for data in (raw_data, case_data):
            del data["inputs"], data["run"]
        assert raw_data == case_data
    else:
        assert raw.split("## Evidence manifest")[0] == case.split("## Evidence manifest")[0]


def test_markdown_shows_payloads_as_text(outputs: Outputs) -> None:
    text = outputs.get("case", "investigate", "markdown").stdout
    assert 'user/mallory"\\]\\]--&gt;\\|x\\|#&lt;b&gt;\\\\;touch /tmp/pwned' in text
    assert "inline policy p\\`touch /tmp/pwned\\` put on" in text
    assert "\\[bold red\\]pwned\\[/\\]" in outputs.get("case", "summary", "markdown").stdout
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in outputs.get("case", "entities", "markdown").stdout


def test_csv_neutralises_formulas(outputs: Outputs) -> None:
    cells = {cell for row in check_csv(outputs.get("case", "entities", "csv").stdout) for cell in row}
    assert {'\'=HYPERLINK("http://evil","x")', "'+1+1", "'-2+3", "'@SUM(A1)"} <= cells


# --- graphs ------------------------------------------------------------------------------------------

DOT_STRING = r'"(?:[^"\\\n]|\\.)*"'
DOT_LINE = re.compile(
    rf"digraph {DOT_STRING} \{{|  rankdir=LR;|  node \[shape=box, fontname=Helvetica\];"
    rf"|  n\d+ \[label=({DOT_STRING}), shape=\w+\];|  n\d+ -> n\d+ \[label={DOT_STRING}\];|\}}"
)
# The labels of the attacker's group as every graph must show them: controls escaped, the rest as is.
GRAPH_LABELS = {
    f"user/{visible(MAKE.ATTACKER)}",
    f"user/{visible(NAMES['new-user'])}",
    visible(NAMES["bucket-newline"]),
}


def _dot_labels(text: str) -> list[tuple[str, str]]:
    """(type, label) of every node; DOT's line breaks (\\n \\l \\r) only where sleuth put one."""
    labels = []
    for line in text.splitlines():
        match = DOT_LINE.fullmatch(line)
        assert match, f"a DOT line data could have changed: {line[:200]!r}"
        if match.group(1):
            parts = re.findall(r"\\.|[^\\]", match.group(1)[1:-1])
            breaks = [i for i, part in enumerate(parts) if part in ("\\n", "\\l", "\\r")]
            assert len(breaks) == 1, f"a label whose data makes DOT line breaks: {line[:200]!r}"
            text_of = ["".join(p[-1] for p in parts[: breaks[0]]), "".join(p[-1] for p in parts[breaks[0] + 1 :])]
            labels.append((text_of[0], text_of[1]))
    return labels


def test_group_graph_dot(outputs: Outputs) -> None:
    text = outputs.get("case", "group", "table", "--graph", "dot").stdout
    check_no_raw_controls(text, "dot")
    labels = {label for _, label in _dot_labels(text)}
    assert labels >= GRAPH_LABELS, GRAPH_LABELS - labels


def test_group_graph_graphml(outputs: Outputs) -> None:
    text = outputs.get("case", "group", "table", "--graph", "graphml").stdout
    check_no_raw_controls(text, "graphml")
    root = ElementTree.fromstring(text.encode("utf-8"))
    namespace = {"g": "http://graphml.graphdrawing.org/xmlns"}
    keys = root.findall("g:key", namespace)
    (key,) = [k.get("id") for k in keys if k.get("attr.name") == "label" and k.get("for") == "node"]
    labels = {d.text for d in root.iterfind(f".//g:node/g:data[@key='{key}']", namespace)}
    assert labels >= GRAPH_LABELS, GRAPH_LABELS - labels


@pytest.mark.parametrize("source", ["group", "investigate"])
def test_mermaid_labels_stay_labels(outputs: Outputs, source: str) -> None:
    if source == "group":
        lines = outputs.get("case", "group", "table", "--graph", "mermaid").stdout.rstrip("\n").split("\n")
    else:
        (lines,) = check_report_markdown(outputs.get("case", "investigate", "markdown").stdout)["mermaid"]
    labels = {label.split(": ", 1)[-1] for label in mermaid_labels(lines)}
    wanted = GRAPH_LABELS if source == "group" else GRAPH_LABELS - {visible(NAMES["bucket-newline"])}
    assert labels >= wanted, wanted - labels


def test_group_graph_text(outputs: Outputs) -> None:
    text = outputs.get("case", "group", "table", "--graph", "text").stdout
    check_no_raw_controls(text, "text graph")
    for label in GRAPH_LABELS:
        assert label in text


# --- remediation commands ----------------------------------------------------------------------------


def _templates() -> dict[str, list[str]]:
    """The shipped command templates by kind; a tampering step's command is a restore line of tampering.csv."""
    table = tomllib.loads((ROOT / "sleuth" / "data" / "remediation.toml").read_text(encoding="utf-8"))
    templates: dict[str, list[str]] = {}
    for step in table["step"]:
        templates.setdefault(step["applies"], []).append(step["command"])
    restores = (ROOT / "sleuth" / "data" / "tampering.csv").read_text(encoding="utf-8")
    templates["tampering"] = [row["restore"] for row in csv.DictReader(restores.splitlines())]
    return templates


def _pattern(template: str) -> list[re.Pattern]:
    """A template's arguments as patterns: each {placeholder} stands for part of exactly one argument."""
    parts = [re.split(r"(\{\w+\})", arg) for arg in shlex.split(template)]
    return [re.compile("".join(".*" if p.startswith("{") else re.escape(p) for p in arg), re.S) for arg in parts]


def _remediation(outputs: Outputs, command: str) -> list[dict]:
    return json.loads(outputs.get("case", command, "json").stdout)["remediation"]


@pytest.mark.parametrize("command", ["investigate", "investigate-users"])
def test_remediation_commands_keep_their_template_arguments(outputs: Outputs, command: str) -> None:
    """Filled with names from the logs, a command splits into as many arguments as its template."""
    templates = _templates()
    steps = _remediation(outputs, command)
    assert steps
    for step in steps:
        arguments = shlex.split(step["command"])
        assert any(
            len(arguments) == len(patterns) and all(p.fullmatch(a) for p, a in zip(patterns, arguments, strict=True))
            for patterns in map(_pattern, templates[step["applies"]])
        ), f"{step['applies']} command with other arguments than its template: {step['command']!r}"


def test_remediation_names_are_one_argument_each(outputs: Outputs) -> None:
    arguments = {a for step in _remediation(outputs, "investigate") for a in shlex.split(step["command"])}
    for name, value in NAMES.items():
        assert value in arguments, f"{name} {value!r} is not one argument of a remediation command"


STUB = """#!/bin/sh
printf '%s\\0' "${0##*/}" "$#" "$@" >> "$CALLS"
"""


def test_remediation_commands_run_as_written(outputs: Outputs, tmp_path: Path) -> None:
    """Pasted into bash, each command calls `aws` with the names as written and runs nothing else.

    PATH holds only stubs that record their arguments: `aws`, and what the payloads would run (touch, id)."""
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash")
    stubs = tmp_path / "bin"
    stubs.mkdir()
    for name in ("aws", "touch", "id", "rm", "sh", "curl", "xargs"):
        (stubs / name).write_text(STUB.replace("#!/bin/sh", f"#!{shutil.which('sh')}"))
        (stubs / name).chmod(0o755)
    calls = tmp_path / "calls"
    ran = 0
    for step in _remediation(outputs, "investigate"):
        if "<" in re.sub(r"'[^']*'", "", step["command"]):
            continue  # a <placeholder> the responder fills in first (bash would read it as a redirection)
        calls.unlink(missing_ok=True)
        done = subprocess.run(
            [bash, "--noprofile", "--norc", "-c", step["command"]],
            env={"PATH": str(stubs), "CALLS": str(calls)},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=10,
        )
        assert done.returncode == 0 and not done.stderr, f"{step['command']!r}: {done.stderr}"
        fields = calls.read_text().split("\0")[:-1]
        invoked = []
        while fields:
            program, count = fields[0], int(fields[1])
            invoked.append([program, *fields[2 : 2 + count]])
            fields = fields[2 + count :]
        assert {call[0] for call in invoked} == {"aws"}, f"{step['command']!r} ran {invoked}"
        expected = [part.split("\0") for part in "\0".join(shlex.split(step["command"])).split("\0&&\0")]
        assert invoked == expected
        ran += 1
    assert ran >= 8


@pytest.mark.parametrize("fmt", ["table", "markdown"])
@pytest.mark.parametrize("command", ["investigate", "investigate-users"])
def test_remediation_commands_are_shown_whole(outputs: Outputs, command: str, fmt: str) -> None:
    """The terminal and markdown show each command on one line, controls escaped, quoting intact."""
    expected = [visible(step["command"]) for step in _remediation(outputs, command)]
    text = outputs.get("case", command, fmt).stdout
    if fmt == "table":
        shown = [line[len("   $ ") :] for line in text.split("\n") if line.startswith("   $ ")]
    else:
        shown = [block[0].strip() for block in check_report_markdown(text)["sh"]]
    assert shown == expected
    for line, step in zip(shown, _remediation(outputs, command), strict=True):
        assert len(shlex.split(line)) == len(shlex.split(step["command"]))


# --- bugs these tests found ----------------------------------------------------------------------------


def test_summary_paragraph_shows_a_carriage_return_escaped(outputs: Outputs, tmp_path: Path) -> None:
    """The investigation summary names the principal `ok\\rEVIL`: the \\r is shown, not obeyed as a line break."""
    args = ["investigate", "-s", outputs.sources["case"], f"arn:aws:iam::{ACCOUNT}:user/ok\rEVIL", "--no-color"]
    table = run_cli([*args, "-f", "table"]).stdout
    summary = " ".join(table.split("\nSummary\n", 1)[1].split("\n\n", 1)[0].split())
    assert "events by user/ok\\rEVIL in the scope" in summary
    markdown = run_cli([*args, "-f", "markdown"]).stdout
    assert "events by user/ok\\\\rEVIL in the scope" in markdown.split("## Summary\n\n", 1)[1].split("\n")[0]


@pytest.mark.parametrize("fmt", ["table", "markdown"])
def test_text_section_is_one_paragraph(fmt: str) -> None:
    """A blank line or line separator in log data inside a text section starts no line or paragraph of its own."""
    from sleuth.report.document import Document, Section
    from sleuth.report.render import render

    body = "by user/x\n\n# All clear\u2028\x1cno compromise\x85found"
    text = render(Document("x", {}, [], [Section("Summary", [], [], kind="text", body=body)]), fmt)
    lines = [line for line in text.split("\n") if line.strip()]
    assert len(lines) == 2, lines  # the title, then the paragraph
    assert "All clear" in lines[1] and "\\u2028" in lines[1] and "\\x1c" in lines[1] and "\\x85" in lines[1]


def test_graphml_holds_no_character_xml_forbids() -> None:
    import networkx as nx

    from sleuth.report.graph_render import as_graphml

    graph = nx.MultiDiGraph()
    graph.add_node("UserAgent:a\ufffeb\uffff", type="UserAgent", label="a\ufffeb\uffff")
    root = ElementTree.fromstring(as_graphml(graph).encode("utf-8"))
    assert "a\\ufffeb\\uffff" in {d.text for d in root.iter("{http://graphml.graphdrawing.org/xmlns}data")}


def test_a_wildcard_matches_names_with_a_line_break(outputs: Outputs) -> None:
    """`*` stops at no character: an attacker's newline in a name does not hide it from a wildcard search."""
    user = f"arn:aws:iam::{ACCOUNT}:user/{MAKE.PAYLOADS['md-heading-newline']}"
    found = json.loads(outputs.get("case", "entities", "json").stdout)["entities"]
    assert user in {entity["entity_id"] for entity in found}
    events = run_cli(["search", "-s", outputs.sources["case"], "--principal", "*heading*sub", "-f", "json"]).stdout
    assert user in {event["principal"] for event in json.loads(events)["events"]}  # (and the role session)
