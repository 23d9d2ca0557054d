"""Results to stdout (or -o FILE), status, progress and warnings to stderr."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from sleuth.cli.options import Run, pick_format
from sleuth.errors import OutputError, StrictModeError
from sleuth.report import escape
from sleuth.report.document import Document
from sleuth.report.render import render

MAX_WARNINGS_SHOWN = 20


def stderr_console(run: Run) -> Console:
    return Console(stderr=True, highlight=False, markup=False, emoji=False, no_color=not run.color, soft_wrap=True)


def emit(run: Run, document: Document, fmt: str | None, output: Path | None, force: bool) -> None:
    chosen = pick_format(fmt, output)
    # A terminal gets its own width (long cells fold); a pipe or file gets room for whole lines.
    width = shutil.get_terminal_size((120, 40)).columns if output is None and sys.stdout.isatty() else 200
    text = render(document, chosen, width=width, color=run.color and output is None, max_cell=run.config.table_max_cell)
    write_text(run, text, output, force)


def write_text(run: Run, text: str, output: Path | None, force: bool) -> None:
    """Rendered text to stdout, or to the -o file (never over an existing one without --force)."""
    if output is None:
        click.echo(text, nl=False)
        return
    if output.exists() and not force:
        raise OutputError(f"{output} exists", "add --force to overwrite it, or choose another -o file")
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write {output}: {exc.strerror or exc}", "choose a writable -o path") from exc
    status(run, f"wrote {output}")


def read_dataset(run: Run):  # -> sleuth.dataset.Dataset
    """The -s sources as a dataset, with a progress bar and the input warnings on stderr."""
    from sleuth.dataset import open_dataset

    with progress_bar(run, "reading") as progress:
        dataset = open_dataset(run.sources, run.window, run.config, progress, run.remote)
    warn(run, dataset.warnings)
    return dataset


def status(run: Run, message: str) -> None:
    if not run.quiet:
        stderr_console(run).print(Text("sleuth: " + escape.terminal(message)))


def warn(run: Run, lines: list[str]) -> None:
    """Each warning on stderr (paths and reasons come from data: escaped)."""
    run.warnings.extend(lines)
    console = stderr_console(run)
    for line in lines[:MAX_WARNINGS_SHOWN]:
        console.print(Text("sleuth: warning: " + escape.terminal(line), style="yellow"))
    if len(lines) > MAX_WARNINGS_SHOWN:
        console.print(Text(f"sleuth: warning: ... and {len(lines) - MAX_WARNINGS_SHOWN} more (see sleuth sources)"))


def finish(run: Run) -> None:
    """Under --strict, any warning makes the run fail (after the results are out)."""
    if run.strict and run.warnings:
        raise StrictModeError(f"{len(run.warnings)} warning(s) under --strict", "fix or remove the inputs named above")


class _Bar:
    def __init__(self, bar: Progress, label: str) -> None:
        self.bar = bar
        self.task = bar.add_task(label, total=None, records=0)
        self.records = 0

    def start(self, files: int) -> None:
        """A new phase (download, then parse): the bar starts again."""
        self.bar.reset(self.task, total=files, records=self.records)

    def advance(self, files: int, records: int) -> None:
        self.records += records
        self.bar.update(self.task, advance=files, records=self.records)


@contextmanager
def progress_bar(run: Run, label: str) -> Iterator[_Bar | None]:
    """Files and records done, on stderr; silent with -q or when stderr is not a terminal."""
    if run.quiet or not sys.stderr.isatty():
        yield None
        return
    columns = (
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("files, {task.fields[records]:,} records"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=stderr_console(run), transient=True) as bar:
        yield _Bar(bar, label)
