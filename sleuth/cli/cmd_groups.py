import click

from sleuth.cli.options import common_options, make_run, output_options, pick_format
from sleuth.cli.output import emit, finish, read_dataset, write_text
from sleuth.correlate.groups import find_group, find_groups, group_evidence, group_graph
from sleuth.correlate.lineage import links_for
from sleuth.report.graph_render import RENDERERS
from sleuth.report.group_views import group_document, groups_document


@click.command("groups")
@common_options
@output_options
def groups_command(fmt, output, force, **common) -> None:
    """Finding groups (one incident each), most severe first, then most recent."""
    run = make_run(**common)
    dataset = read_dataset(run)
    emit(run, groups_document(find_groups(dataset, run.config, run.geo(), run.intel())), fmt, output, force)
    finish(run)


@click.command("group")
@common_options
@output_options
@click.option(
    "--graph",
    "graph_format",
    type=click.Choice(["text", "mermaid", "dot", "graphml"]),
    help="Print only the group's graph in this format (for a ticket, Graphviz or Gephi).",
)
@click.argument("group_id")
def group_command(fmt, output, force, graph_format, group_id, **common) -> None:
    """One finding group in full: findings, entities by category, tactic chain, evidence, graph."""
    run = make_run(**common)
    dataset = read_dataset(run)
    links = links_for(dataset, run.config)
    geo = run.geo()
    result = find_groups(dataset, run.config, geo, run.intel(), links=links)
    group = find_group(result, group_id)
    group.evidence = group_evidence(dataset, group, run.config, geo)  # the one group shown, not every group
    graph = group_graph(group, links)
    if graph_format:
        write_text(run, RENDERERS[graph_format](graph), output, force)
    else:
        shown = "mermaid" if pick_format(fmt, output) == "markdown" else "text"
        emit(run, group_document(group, RENDERERS[shown](graph), shown), fmt, output, force)
    finish(run)
