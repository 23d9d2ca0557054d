import dataclasses
from datetime import timedelta

import click

from sleuth.cli.options import (
    common_options,
    make_run,
    output_options,
    parse_scope_option,
    pick_format,
    scope_options,
)
from sleuth.cli.output import emit, finish, read_dataset
from sleuth.correlate.investigate import investigate, now
from sleuth.errors import ThresholdReached
from sleuth.report.investigation_view import investigation_document
from sleuth.severity import parse_severity
from sleuth.timewindow import TimeWindow


@click.command("investigate")
@common_options
@output_options
@scope_options
@click.option("--fail-on", metavar="SEVERITY", help="Exit 3 if the investigation reaches SEVERITY (for runbooks).")
@click.argument("target")
def command(fmt, output, force, scope, baseline_days, fail_on, target, **common) -> None:
    """Investigate TARGET: how it happened, the first intrusion, the TTPs, the timeline, what to do.

    TARGET: a finding id, a finding group id, an ARN, a user or role name, a role session, an access
    key, an IP address or an instance id. --since/--until/--last set the scope (the baseline before it
    is read too); without them, a finding's or group's span, else the last 24 h of the data.
    """
    run = make_run(**common)
    threshold = parse_severity(fail_on, "--fail-on") if fail_on else None
    window = parse_scope_option(scope)
    if window is None and run.window.bounded:
        until = run.window.until or now()
        window = (run.window.since or until - timedelta(hours=run.config.scope_hours), until)
    run = dataclasses.replace(run, window=TimeWindow())  # the baseline lies before the scope: read it all
    dataset = read_dataset(run)
    result = investigate(dataset, target, run.config, run.geo(), run.intel(), window, baseline_days)
    markdown = pick_format(fmt, output) == "markdown"
    emit(run, investigation_document(result, markdown=markdown), fmt, output, force)
    finish(run)
    if threshold is not None and result.severity >= threshold:
        raise ThresholdReached(f"the investigation is {result.severity_label} (--fail-on {fail_on})")
