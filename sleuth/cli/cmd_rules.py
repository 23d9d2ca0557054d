"""`sleuth rules`: the built-in detections and the mapped CloudTrail events, with their ATT&CK mapping."""

import click

from sleuth.cli.options import make_run, output_options
from sleuth.cli.output import emit
from sleuth.correlate.detect import rules_listing
from sleuth.report.views import rules_document


@click.command("rules")
@output_options
@click.option("--tactic", metavar="TACTIC", help='Only rules of one ATT&CK tactic, e.g. "Defense Evasion" or TA0005.')
@click.option("--no-color", is_flag=True, help="No color, even on a terminal.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="sleuth.toml to read.")
def command(fmt, output, force, tactic, no_color, config_path) -> None:
    """Every detection and every mapped CloudTrail event: id, severity, tactics, techniques, title."""
    run = make_run((), None, None, None, False, no_color, False, config_path, None, None, None, None)
    emit(run, rules_document(rules_listing(tactic)), fmt, output, force)
