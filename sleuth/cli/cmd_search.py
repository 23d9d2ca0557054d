import click

from sleuth.cli.options import common_options, make_run, output_options
from sleuth.cli.output import emit, finish, progress_bar, warn
from sleuth.dataset import open_dataset
from sleuth.report.views import search_document
from sleuth.search import EventFilter, search


@click.command("search")
@common_options
@output_options
@click.option("--principal", multiple=True, help="ARN, user, role or session name; * and ? wildcards.")
@click.option("--ip", multiple=True, help="Source IP address or CIDR.")
@click.option("--action", multiple=True, help="eventName; wildcards, e.g. 'Put*Policy'.")
@click.option("--service", multiple=True, help="eventSource, e.g. iam or iam.amazonaws.com; wildcards.")
@click.option("--access-key", multiple=True, help="Access key id (AKIA... / ASIA...).")
@click.option("--errors", is_flag=True, help="Only failed calls (with an errorCode).")
@click.option("--limit", type=click.IntRange(min=0), help="At most N events (the earliest).")
def command(fmt, output, force, principal, ip, action, service, access_key, errors, limit, **common) -> None:
    """Events matching filters, earliest first. Repeated filters of one kind are alternatives."""
    run = make_run(**common)
    where = EventFilter(principal, ip, action, service, access_key, errors, limit)
    with progress_bar(run, "reading") as progress:
        dataset = open_dataset(run.sources, run.window, run.config, progress, run.remote)
    warn(run, dataset.warnings)
    emit(run, search_document(search(dataset, where)), fmt, output, force)
    finish(run)
