import click

from sleuth.cli.options import common_options, make_run, output_options
from sleuth.cli.output import emit, finish, read_dataset
from sleuth.coverage import coverage
from sleuth.report.views import coverage_document


@click.command("sources")
@common_options
@output_options
def command(fmt, output, force, **common) -> None:
    """Coverage: accounts x regions x days, gaps, logging tampering, skipped inputs."""
    run = make_run(**common)
    dataset = read_dataset(run)
    emit(run, coverage_document(coverage(dataset, run.config)), fmt, output, force)
    finish(run)
