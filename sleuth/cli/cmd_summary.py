import click

from sleuth.cli.options import common_options, make_run, output_options, parse_scope_option, scope_options
from sleuth.cli.output import emit, finish, read_dataset
from sleuth.correlate.summary import build_summary
from sleuth.report.entity_views import summary_document


@click.command("summary")
@common_options
@output_options
@scope_options
def command(fmt, output, force, scope, baseline_days, **common) -> None:
    """The case at a glance: busiest and most-failing principals and instances, flow volume, new
    geolocations, findings by severity (Detective's summary page)."""
    run = make_run(**common)
    window = parse_scope_option(scope)
    dataset = read_dataset(run)
    summary = build_summary(dataset, run.config, run.geo(), window, baseline_days, run.intel())
    emit(run, summary_document(summary), fmt, output, force)
    finish(run)
