from pathlib import Path

import click

from sleuth.cli.options import common_options, make_run
from sleuth.cli.output import emit, finish, progress_bar, warn
from sleuth.dataset import input_warnings
from sleuth.derived import prepare_case
from sleuth.ingest import ingest_sources
from sleuth.report.render import FORMATS
from sleuth.report.views import ingest_document


@click.command("ingest")
@common_options
@click.option("-o", "--output", "case", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Case folder to build or extend.")  # fmt: skip
@click.option("-f", "--format", "fmt", type=click.Choice(FORMATS), default="table", help="Format of the summary.")
@click.option("--prepare", is_flag=True,
              help="Also run the detections and build lineage now, so the first investigation is fast.")  # fmt: skip
def command(case: Path, fmt: str, prepare: bool, **common) -> None:
    """Build or extend a case store (Parquet by day + manifest.json) from raw logs."""
    run = make_run(**common)
    with progress_bar(run, "ingest") as progress:
        summary = ingest_sources(run.sources, case, run.window, run.config, run.remote, progress)
    warn(run, input_warnings(summary.inputs))
    if prepare:
        prepare_case(case, run.config, run.geo(), run.intel())
    emit(run, ingest_document(summary), fmt, None, False)
    finish(run)
