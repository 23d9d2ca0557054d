"""The escaping layer: log text stays data in every output."""

from __future__ import annotations

import re

from sleuth.report import escape
from sleuth.report.document import Document, Section
from sleuth.report.render import render

HOSTILE = "[bold red]x[/] \x1b[2J\x1b]8;;http://evil\x07link \r| a | [img](http://e) <script> =1+1 \u202eevil"


def test_terminal_shows_controls_escaped_and_markup_literally():
    out = render(Document("t", {}, [], [Section("s", ["v"], [[HOSTILE]])]), "table", color=True, max_cell=500)
    assert "\x1b[2J" not in out and "\x07" not in out and "\r" not in out and "\u202e" not in out
    assert "[bold red]x[/]" in out and "\\x1b[2J" in out and "\\u202e" in out


def test_markdown_cell_cannot_break_the_table_or_inject():
    out = render(Document("t", {}, [], [Section("s", ["v"], [[HOSTILE + "\nnew line"]])]), "markdown")
    row = next(line for line in out.splitlines() if "bold" in line)
    assert row.count("|") - row.count("\\|") == 2  # only the cell borders
    assert "<script>" not in out and "&lt;script&gt;" in out
    assert "\\[img\\]" in out and "new line" in row


def test_csv_neutralises_formulas():
    for text in ('=HYPERLINK("http://e")', "+1", "-2", "@SUM(A1)"):
        out = render(Document("t", {}, [{"v": text}]), "csv")
        assert out.splitlines()[1].lstrip('"').startswith("'")


def test_filename_stays_one_component():
    assert escape.filename("../../etc/passwd") == "etc_passwd"
    assert escape.filename("..") == "unnamed"
    assert "/" not in escape.filename("a/b\\c")


def test_mermaid_label_cannot_close_the_label_or_add_syntax():
    label = escape.mermaid_label('x"] --> B["y"]; click A "http://evil" <b>bold</b> \x1b[31m')
    bare = re.sub(r"#\d+;", "", label)  # what is left outside Mermaid's entity codes
    assert not set(bare) & set('"[]<>{}()|;#`')
    assert "\x1b" not in label and "#92;x1b" in label  # the escape shown as text: \x1b
    assert label.startswith("x#34;#93; --")
