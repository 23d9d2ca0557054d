import click

from sleuth.cli.options import common_options, make_run, output_options, parse_scope_option, scope_options
from sleuth.cli.output import emit, finish, read_dataset
from sleuth.correlate.profile import build_profile
from sleuth.report.entity_views import profile_document


@click.command("profile")
@common_options
@output_options
@scope_options
@click.argument("entity")
def command(fmt, output, force, scope, baseline_days, entity, **common) -> None:
    """What ENTITY did in the scope against its baseline (Detective's profile panels).

    ENTITY: an ARN, user or role name, role session, access key, IP address, instance id, bucket or
    user agent.
    """
    run = make_run(**common)
    window = parse_scope_option(scope)
    dataset = read_dataset(run)
    profile = build_profile(dataset, entity, run.config, run.geo(), window, baseline_days, run.intel())
    emit(run, profile_document(profile), fmt, output, force)
    finish(run)
