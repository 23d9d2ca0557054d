"""The renderers: a terminal table wider than the terminal folds its cells and loses none; markdown steps."""

from __future__ import annotations

import pytest

from sleuth.report.document import Document, Section
from sleuth.report.render import render

COLUMNS = ["severity_label", "severity", "title", "tactics", "findings", "first_seen", "last_seen", "id"]
ROW = ["Critical", 10, "7 findings: C&CActivity.B!DNS, CompromisedCredentials", "Reconnaissance -> Initial Access",
       7, "2026-03-03T08:00:00Z", "2026-03-04T05:10:00Z", "5408865f-a541-58aa-8143-c0a3e3e5b2f0"]  # fmt: skip


@pytest.mark.parametrize("width", [200, 120, 80, 60])
def test_no_column_vanishes_in_a_narrow_terminal(width):
    text = render(Document("t", {}, [], [Section("Groups", COLUMNS, [ROW])]), "table", width=width)
    flat = "".join(text.split())  # folded cells: their pieces, read in order across lines
    assert all(len(line) <= width for line in text.splitlines())
    for value in ("Critical", "Reconna", "5408865f", "2026-03"):
        assert value[:4] in flat, (width, value)
    for header in ("title", "tactics", "id"):
        assert header[:3] in text, (width, header)


def test_markdown_steps_past_nine_stay_in_one_list():
    steps = [[f"Step {n}", f"aws iam do-thing --n {n}", "why"] for n in range(1, 12)]
    text = render(Document("t", {}, [], [Section("Remediation", [], steps, kind="steps")]), "markdown")
    lines = text.splitlines()
    tenth = lines.index("10. Step 10")
    # CommonMark: the blocks of item "10." must be indented 4 spaces (its marker's width) to stay inside it
    assert lines[tenth + 2] == "    ```sh" and lines[tenth + 3] == "    aws iam do-thing --n 10"
    ninth = lines.index("9. Step 9")
    assert lines[ninth + 2] == "   ```sh"


def test_long_columns_fold_before_short_ones():
    from sleuth.report.render import column_widths

    # a time (20), an address (13) and a long title (60) in 60 columns: only the title gives way
    assert column_widths([20, 13, 60], 60) == [20, 13, 23]
    # then columns of words; single values (ids, times) fold last
    assert column_widths([20, 20, 30, 20], 70, texty=[False, True, True, False]) == [20, 12, 12, 20]
    assert sum(column_widths([20] * 8, 60)) + 2 * 7 <= 60


def test_a_time_in_a_narrow_terminal_folds_between_date_and_hour():
    from datetime import UTC, datetime

    rows = [[datetime(2026, 3, 3, 10, 0, tzinfo=UTC), "several words here"]]
    text = render(Document("t", {}, [], [Section("T", ["time", "a"], rows)]), "table", width=34)
    assert "2026-03-03" in text and "10:00:00Z" in text and "2026-03-03 10:00:00Z" not in text
    wide = render(Document("t", {}, [], [Section("T", ["time", "a"], rows)]), "table", width=200)
    assert "2026-03-03 10:00:00Z" in wide


def test_rows_too_wide_for_the_terminal_become_records():
    """Rather than fold every column into slivers, each row is shown as `column  value` lines."""
    text = render(Document("t", {}, [], [Section("Findings", COLUMNS, [ROW, ROW])]), "table", width=60)
    lines = [line.rstrip() for line in text.splitlines()]
    assert "id              5408865f-a541-58aa-8143-c0a3e3e5b2f0" in lines
    assert sum(line.startswith("severity_label  Critical") for line in lines) == 2
    assert all(len(line) <= 60 for line in lines)


def test_records_keep_the_note_and_long_cells():
    row = [*ROW[:2], "t" * 150, *ROW[3:]]
    section = Section("Findings", COLUMNS, [row], note="run 2026-01-01", limits={"title": 200})
    text = render(Document("t", {}, [], [section]), "table", width=60, max_cell=80)
    assert "run 2026-01-01" in text
    assert "".join(text.split()).count("t" * 150) == 1  # the title's own limit, not max_cell, applies
