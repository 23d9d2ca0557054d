"""The shape every command's result takes before it is rendered.

Analysis returns data; a view in `sleuth/report/views.py` turns it into a `Document`; a renderer in
`sleuth/report/render.py` turns the document into text for one format. Renderers never compute.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Section:
    """A titled table (the terminal and markdown formats)."""

    title: str
    columns: list[str]
    rows: list[list[Any]]
    empty: str = "none"
    note: str | None = None
    limits: dict[str, int] = field(default_factory=dict)  # terminal: longest cell per column
    # table: rows under columns. text: `body` as one paragraph (a line break in it, which may come from
    # a log, is shown escaped). diagram: `body` as a Mermaid block in markdown, as plain lines in the
    # terminal. details: a table folded under <details> in markdown.
    kind: str = "table"
    body: str | None = None


@dataclass
class Document:
    kind: str  # the JSON schema name: sleuth/<kind>/v1
    data: dict[str, Any]  # the JSON payload (snake_case keys)
    records: list[dict[str, Any]]  # the primary rows: one jsonl line / csv row each
    sections: list[Section] = field(default_factory=list)
    headline: str | None = None  # one sentence above the tables
    columns: list[str] = field(default_factory=list)  # of `records`, so an empty CSV still has its header

    @property
    def schema(self) -> str:
        return f"sleuth/{self.kind}/v1"
