import click

from sleuth.cli.options import common_options, make_run, output_options
from sleuth.cli.output import emit, finish, read_dataset, warn
from sleuth.correlate.detect import Lazy, add_findings, cached_detect
from sleuth.findings import FindingFilter, check_threshold, list_findings, parse_severity
from sleuth.report.views import findings_document


@click.command("findings")
@common_options
@output_options
@click.option("--min-severity", metavar="SEVERITY", help="0-10 or low, medium, high, critical.")
@click.option("--type", "types", multiple=True, help="Finding type; wildcards, e.g. 'UnauthorizedAccess:*'.")
@click.option("--entity", "entities", multiple=True, help="An involved entity: ARN, key, instance, IP or CIDR ...")
@click.option("--producer", "producers", multiple=True, help="guardduty or sleuth.")
@click.option("--limit", type=click.IntRange(min=0), help="At most N findings (the most severe).")
@click.option("--fail-on", metavar="SEVERITY", help="Exit 3 if a listed finding reaches SEVERITY (for runbooks).")
@click.option("--no-detections", is_flag=True, help="Only the findings in the sources: skip sleuth's own detections.")
def command(fmt, output, force, min_severity, types, entities, producers, limit, fail_on, no_detections,
            **common) -> None:  # fmt: skip
    """Findings (GuardDuty and sleuth's own), most severe first, then most recent."""
    run = make_run(**common)
    minimum = parse_severity(min_severity) if min_severity else None
    threshold = parse_severity(fail_on, "--fail-on") if fail_on else None
    where = FindingFilter(minimum, types, entities, producers, limit)
    dataset = read_dataset(run)
    if not no_detections and (not producers or "sleuth" in {p.lower() for p in producers}):
        detections = cached_detect(dataset, run.config, geo=Lazy(run.geo), intel=Lazy(run.intel))
        warn(run, detections.warnings)
        dataset = add_findings(dataset, detections)
    result = list_findings(dataset, where)
    emit(run, findings_document(result), fmt, output, force)
    finish(run)
    if threshold is not None:
        check_threshold(result, threshold, fail_on)
