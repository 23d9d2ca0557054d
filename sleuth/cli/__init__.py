"""The command line: each command parses flags, makes one library call, renders (handbook §1, §5).

Errors are translated to a message and an exit code here, in one place.
"""

from __future__ import annotations

import sys

import click
from rich.console import Console
from rich.text import Text

from sleuth import __version__
from sleuth.cli import (
    cmd_findings,
    cmd_groups,
    cmd_ingest,
    cmd_investigate,
    cmd_profile,
    cmd_rules,
    cmd_search,
    cmd_sources,
    cmd_summary,
)
from sleuth.errors import ExitCode, SleuthError, ThresholdReached
from sleuth.report import escape


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="sleuth")
def cli() -> None:
    """sleuth: an offline Amazon Detective for CloudTrail, VPC Flow Logs and GuardDuty exports.

    Point it at log files, folders, s3:// prefixes or a case store (-s) and ask: what is covered
    (sources), what the case looks like (summary), what happened (search), what was flagged
    (findings, with sleuth's own detections: rules), which findings make one incident (groups,
    group), what an entity did against its baseline (profile), and how an incident happened and
    what to do now (investigate). Keep a case for fast re-questioning (ingest).
    """


for module in (cmd_ingest, cmd_sources, cmd_summary, cmd_search, cmd_findings, cmd_profile, cmd_rules):
    cli.add_command(module.command)
cli.add_command(cmd_groups.groups_command)
cli.add_command(cmd_groups.group_command)
cli.add_command(cmd_investigate.command)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turn SleuthError into a message on stderr and its exit code."""
    try:
        code = cli.main(args=argv, prog_name="sleuth", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("sleuth: aborted", err=True)
        sys.exit(ExitCode.ERROR)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except SleuthError as exc:
        console = Console(stderr=True, highlight=False, markup=False, emoji=False, soft_wrap=True)
        prefix = "sleuth: " if isinstance(exc, ThresholdReached) else "sleuth: error: "
        console.print(Text(prefix + escape.terminal(exc.message), style="red"))
        if exc.fix:
            console.print(Text("  fix: " + escape.terminal(exc.fix)))
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        sys.stderr.close()  # `sleuth search ... | head` is not an error
        sys.exit(ExitCode.OK)
    sys.exit(code if isinstance(code, int) else ExitCode.OK)
