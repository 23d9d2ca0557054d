import click

from sleuth.cli.options import common_options, make_run, output_options
from sleuth.cli.output import emit, finish, progress_bar, warn
from sleuth.coverage import coverage
from sleuth.dataset import open_dataset
from sleuth.report.views import coverage_document


@click.command("sources")
@common_options
@output_options
def command(fmt, output, force, **common) -> None:
    """Coverage: accounts x regions x days, gaps, logging tampering, skipped inputs."""
    run = make_run(**common)
    with progress_bar(run, "reading") as progress:
        dataset = open_dataset(run.sources, run.window, run.config, progress, run.remote)
    warn(run, dataset.warnings)
    emit(run, coverage_document(coverage(dataset, run.config)), fmt, output, force)
    finish(run)
