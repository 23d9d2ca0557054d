import click

from sleuth.cli.options import common_options, make_run, output_options
from sleuth.cli.output import emit, finish, read_dataset
from sleuth.correlate.lookup import find_entities
from sleuth.errors import UsageError
from sleuth.report.entity_views import entities_document
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
@click.option(
    "--entity",
    metavar="PATTERN",
    help="Find entities instead of events: any type, by id or name; * and ? wildcards; IP or CIDR.",
)
def command(fmt, output, force, principal, ip, action, service, access_key, errors, limit, entity, **common) -> None:
    """Events matching filters, earliest first. Repeated filters of one kind are alternatives.

    With --entity, the entities (principals, sessions, keys, addresses, instances, buckets, user
    agents) matching a pattern, most active first, with their event counts.
    """
    run = make_run(**common)
    where = EventFilter(principal, ip, action, service, access_key, errors, limit)
    if entity is not None and where != EventFilter(limit=limit):
        raise UsageError("--entity finds entities; it does not combine with event filters", "use one or the other")
    dataset = read_dataset(run)
    if entity is not None:
        document = entities_document(find_entities(dataset, entity), entity, limit)
    else:
        document = search_document(search(dataset, where))
    emit(run, document, fmt, output, force)
    finish(run)
