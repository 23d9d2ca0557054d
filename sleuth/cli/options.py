"""Shared flags, declared once (handbook §5), and the run context they build."""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import click

from sleuth.config import Config, load_config
from sleuth.report.render import EXTENSIONS, FORMATS
from sleuth.sources import Remote
from sleuth.timewindow import TimeWindow


@dataclass
class Run:
    """What every command needs besides its own flags."""

    config: Config
    sources: list[str]
    window: TimeWindow
    quiet: bool = False
    color: bool = False
    strict: bool = False
    remote: Remote = field(default_factory=Remote)
    warnings: list[str] = field(default_factory=list)
    intel_files: tuple[str, ...] = ()
    geoip_db: str | None = None

    def geo(self):  # -> sleuth.enrich.geo.GeoResolver
        """The offline geolocation: shipped country/ASN data, plus the --geoip-db city database."""
        from sleuth.enrich.geo import GeoResolver

        return GeoResolver(self.geoip_db)

    def intel(self):  # -> sleuth.enrich.intel.IntelList
        """The threat-intel address lists given with --intel (empty when none)."""
        from sleuth.enrich.intel import IntelList

        return IntelList.load(self.intel_files)


def _sources(given: tuple[str, ...], config: Config) -> list[str]:
    if given:
        return list(given)
    from_env = os.environ.get("SLEUTH_SOURCES", "").split()
    return from_env or list(config.sources)


def _stack(function: Callable, decorators: list[Callable]) -> Callable:
    """Apply click options so that --help lists them in the order written."""
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


def common_options(function: Callable) -> Callable:
    """-s/--source, --since/--until/--last, -q, --no-color, --strict, --config, S3 settings: see make_run."""
    return _stack(function, [
        click.option(
            "-s",
            "--source",
            "source",
            multiple=True,
            metavar="SRC",
            help="File, folder, glob, s3:// prefix or case (repeatable). Default: $SLEUTH_SOURCES or sleuth.toml.",
        ),
        click.option("--since", metavar="TIME", help="Only records at or after TIME (ISO 8601, UTC if no zone)."),
        click.option("--until", metavar="TIME", help="Only records before TIME (ISO 8601)."),
        click.option("--last", metavar="DURATION", help="Only the last DURATION before now: 30m, 24h, 7d."),
        click.option("-q", "--quiet", is_flag=True, help="No progress or status on stderr."),
        click.option("--no-color", is_flag=True, help="No color, even on a terminal."),
        click.option("--strict", is_flag=True, help="Exit 1 if any input or record had to be skipped."),
        click.option("--config", "config_path", type=click.Path(dir_okay=False), help="sleuth.toml to read."),
        click.option("--vpc-format", metavar="FIELDS",
                     help='Fields of headerless custom VPC flow logs, e.g. "version account-id srcaddr ...".'),
        click.option("--profile", help="AWS profile for s3:// sources (default: the standard credential chain)."),
        click.option("--region", help="AWS region for s3:// sources."),
        click.option("--endpoint-url", help="S3-compatible endpoint for s3:// sources (MinIO, a local server)."),
        click.option("--intel", "intel_files", multiple=True, type=click.Path(dir_okay=False), metavar="FILE",
                     help="Threat-intel IP/CIDR list (text, or CSV with a reason column); repeatable."),
        click.option("--geoip-db", type=click.Path(dir_okay=False), metavar="FILE",
                     help="MaxMind GeoLite2/GeoIP2 City database (.mmdb) for city and coordinates."),
    ])  # fmt: skip


def make_run(
    source,
    since,
    until,
    last,
    quiet,
    no_color,
    strict,
    config_path,
    vpc_format,
    profile,
    region,
    endpoint_url,
    intel_files=(),
    geoip_db=None,
) -> Run:
    config = load_config(config_path)
    if vpc_format:
        config = dataclasses.replace(config, vpc_format=vpc_format)
    color = not no_color and "NO_COLOR" not in os.environ and sys.stdout.isatty()
    window = TimeWindow.from_options(since, until, last)
    remote = Remote(profile, region, endpoint_url)
    run = Run(config, _sources(source, config), window, quiet, color, strict, remote)
    run.intel_files, run.geoip_db = tuple(intel_files), geoip_db
    return run


def output_options(function: Callable) -> Callable:
    """-f/--format, -o/--output, --force."""
    return _stack(function, [
        click.option(
            "-f",
            "--format",
            "fmt",
            type=click.Choice(FORMATS),
            default=None,
            help="Output format (default: table, or from the -o extension).",
        ),
        click.option(
            "-o",
            "--output",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Write results to FILE instead of stdout.",
        ),
        click.option("--force", is_flag=True, help="Overwrite the -o file if it exists."),
    ])  # fmt: skip


def pick_format(fmt: str | None, output: Path | None) -> str:
    if fmt:
        return fmt
    if output is not None:
        return EXTENSIONS.get(output.suffix.lower(), "table")
    return "table"


def scope_options(function: Callable) -> Callable:
    """--scope START..END and --baseline-days N (profiles, summary, investigations)."""
    return _stack(function, [
        click.option("--scope", metavar="START..END",
                     help="The window to examine (ISO 8601). Default: the last 24 h of the data."),
        click.option("--baseline-days", type=click.IntRange(min=0), metavar="DAYS",
                     help="Days before the scope that form the baseline (default 45)."),
    ])  # fmt: skip


def parse_scope_option(scope: str | None):
    """The --scope window, or None for the default."""
    from sleuth.correlate.baseline import parse_scope

    return parse_scope(scope) if scope else None
