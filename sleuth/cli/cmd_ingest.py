from dataclasses import replace
from pathlib import Path

import click

from sleuth.cli.options import common_options, make_run
from sleuth.cli.output import emit, finish, progress_bar, warn
from sleuth.dataset import input_warnings
from sleuth.errors import SourceError
from sleuth.ingest import ingest
from sleuth.report.render import FORMATS
from sleuth.report.views import ingest_document
from sleuth.sources import resolve


@click.command("ingest")
@common_options
@click.option(
    "-o",
    "--output",
    "case",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Case folder to build or extend.",
)
@click.option("-f", "--format", "fmt", type=click.Choice(FORMATS), default="table", help="Format of the summary.")
def command(case: Path, fmt: str, **common) -> None:
    """Build or extend a case store (Parquet by day + manifest.json) from raw logs."""
    run = make_run(**common)
    if not run.sources:
        raise SourceError("no sources given", "pass -s FILE|FOLDER|s3://..., or set SLEUTH_SOURCES")
    remote = replace(run.remote, cache_dir=case / ".s3-cache")  # downloads are kept with the case
    with progress_bar(run, "ingest") as progress:
        sources = resolve(run.sources, run.window, run.config, remote, progress)
        if sources.cases:
            raise SourceError(f"{sources.cases[0]} is a case store", "query it directly with -s; ingest takes raw logs")
        summary = ingest(sources, case, run.window, run.config, progress)
    warn(run, input_warnings(summary.inputs))
    emit(run, ingest_document(summary), fmt, None, False)
    finish(run)
