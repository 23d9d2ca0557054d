"""Every tunable, in one frozen dataclass with defaults; `sleuth.toml` overrides them.

A `sleuth.toml` in the working directory (or the file named by `SLEUTH_CONFIG`) may set any field
of `Config` at the top level, e.g. `max_decompressed_bytes = 2_000_000_000`, and `sources = [...]`.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path

from sleuth.errors import ConfigError


@dataclass(frozen=True)
class Config:
    # Limits on hostile input (handbook §6).
    max_decompressed_bytes: int = 1 << 30  # per input file; a gzip bomb stops here
    max_record_bytes: int = 4 << 20  # a single JSON record larger than this is skipped
    max_json_depth: int = 64  # deeper nesting than this is skipped
    max_files: int = 1_000_000  # per run; more is an error naming the limit
    # Ingest.
    batch_files: int = 24  # input files per unit of work in the ingest map ...
    batch_bytes: int = 16 << 20  # ... and bytes on disk (bounds a worker's memory on big flow-log files)
    workers: int = 0  # processes for ingest; 0 = one per core
    # Sources.
    sources: tuple[str, ...] = ()
    key_date_slack_days: int = 1  # AWSLogs key dates are delivery days (handbook §2)
    # VPC Flow Logs: the field list of headerless custom-format files ("version account-id ...").
    vpc_format: str | None = None
    # S3 sources.
    s3_max_parallel: int = 8  # concurrent downloads
    # Coverage.
    gap_min_hours: int = 1  # an hour without events inside the covered span is a gap
    # Output.
    table_max_cell: int = 80  # characters shown per table cell in the terminal
    # Scope and baseline (profile, summary, groups, investigate): Detective's defaults.
    scope_hours: int = 24  # the default scope: the last 24 h of the data
    baseline_days: int = 45  # the baseline: this many days before the scope
    # Volume spikes: a call's scope count is a spike when a Poisson with the baseline's hourly rate
    # (times the scope's hours) gives it a tail probability below spike_p_value, and it is at least
    # spike_min_count calls and spike_min_ratio times the expected count.
    spike_p_value: float = 0.001
    spike_min_count: int = 10
    spike_min_ratio: float = 3.0
    # The behavior graph: an address, user agent, bucket or key used by at least this many distinct
    # identities (a NAT address, the console's user agent) is marked high-degree and links nothing.
    high_degree_min: int = 25
    # Finding groups: findings sharing a linking identity join when one starts within this many hours
    # of the latest end so far of the other's cluster.
    group_window_hours: int = 24
    # Findings whose every user agent is infrastructure-as-code tooling (planned changes) group apart
    # from the same identity's other findings; a user agent containing any of these marks such tooling.
    automation_user_agents: tuple[str, ...] = ("Terraform", "HashiCorp", "aws-cdk", "CloudFormation", "Pulumi")
    # Investigations: a finding's span is padded by this many hours on each side to make the scope.
    investigate_margin_hours: int = 2
    # Detections (sleuth/correlate/detect/): thresholds and windows.
    finding_merge_hours: int = 24  # hits of one detection on one entity within this span are one finding
    enum_burst_minutes: int = 10  # API enumeration: distinct read calls by one principal ...
    enum_burst_distinct: int = 25  # ... at least this many in that many minutes
    denied_burst_minutes: int = 10  # AccessDenied/UnauthorizedOperation burst ...
    denied_burst_count: int = 10  # ... at least this many failures
    brute_force_hours: int = 72  # console login failures then a success from the same source ...
    brute_force_failures: int = 3  # ... at least this many failures first
    secret_burst_minutes: int = 10  # mass secret / parameter retrieval ...
    secret_burst_distinct: int = 5  # ... at least this many distinct secrets or parameters
    travel_speed_kmh: int = 1000  # faster than a commercial flight between two source IPs
    travel_min_km: int = 500  # shorter hops are within geolocation error
    port_scan_minutes: int = 10  # flows: one source to one address ...
    port_scan_ports: int = 20  # ... on at least this many distinct destination ports
    login_brute_force_attempts: int = 20  # flows: SSH/RDP connections from one source to one address
    exfil_min_bytes: int = 1 << 20  # flows: outbound bytes to one external address in the scope
    escalation_window_hours: int = 24  # denied, then a policy change, then the same call allowed: within this span
    root_session_gap_minutes: int = 60  # root activity with gaps shorter than this is one span (one hit)
    history_hours: int = 24  # an identity seen this long before counts as established: new places, new secrets matter
    extra: dict = field(default_factory=dict)


def load_config(path: str | os.PathLike | None = None) -> Config:
    """Read sleuth.toml (or `path`, or $SLEUTH_CONFIG) over the defaults; every setting is checked."""
    named = path or os.environ.get("SLEUTH_CONFIG")
    candidate = Path(named or "sleuth.toml")
    if not candidate.is_file():
        if named:
            source = "" if path else " ($SLEUTH_CONFIG)"
            raise ConfigError(
                f"config file {candidate}{source} does not exist", "give an existing sleuth.toml, or none"
            )
        return Config()
    try:
        data = tomllib.loads(candidate.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {candidate}: {exc}", "fix the TOML syntax") from exc
    known = {f.name for f in dataclasses.fields(Config)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"{candidate}: unknown setting(s) {', '.join(unknown)}",
            f"use only: {', '.join(sorted(known - {'extra'}))}",
        )
    return dataclasses.replace(Config(), **{name: _checked(candidate, name, value) for name, value in data.items()})


# Whole-number settings that may be 0; every other one must be at least 1 (a limit, a size, a count).
_INT_MINIMUM = {"workers": 0, "key_date_slack_days": 0}


def _checked(file: Path, name: str, value: object) -> object:
    """`value` as the Config field `name` holds it, or a ConfigError naming the file, the setting, what
    was given and what is expected, with an example of a valid setting."""
    expected = _FIELD_TYPES[name]
    if expected is int:
        minimum = _INT_MINIMUM.get(name, 1)
        if isinstance(value, int) and not isinstance(value, bool) and value >= minimum:
            return value
        example = int(value) if isinstance(value, float) and value.is_integer() and value >= minimum else None
        _fail(file, name, value, f"a whole number of at least {minimum}", example or getattr(Config(), name))
    elif expected is float:
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            return float(value)
        _fail(file, name, value, "a number above 0", getattr(Config(), name))
    elif expected == tuple[str, ...]:
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return tuple(value)
        given = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        example = [item for item in given if isinstance(item, str)] or ["./logs", "s3://bucket/AWSLogs/"]
        _fail(file, name, value, "a list of strings", example)
    elif expected == str | None:
        if isinstance(value, str):
            return value
        _fail(file, name, value, "a string (or no setting at all)", "version account-id srcaddr dstaddr")
    elif expected is dict:
        if isinstance(value, dict):
            return value
        _fail(file, name, value, "a table", {})
    raise AssertionError(f"Config.{name}: no check for its type {expected!r}")  # a new field type needs one


def _fail(file: Path, name: str, value: object, expected: str, example: object) -> typing.NoReturn:
    raise ConfigError(
        f"{file}: {name} = {_toml(value)} is {_kind(value)}, expected {expected}",
        f"write it as e.g. {name} = {_toml(example)}",
    )


def _kind(value: object) -> str:
    """What a TOML value is, in the words a user would use."""
    kinds = [
        (bool, "a boolean"),
        (int, "a whole number"),
        (float, "a decimal number"),
        (str, "a string"),
        (list, "a list"),
        (dict, "a table"),
        (datetime.datetime, "a date and time"),
        (datetime.date, "a date"),
        (datetime.time, "a time"),
    ]
    for kind, words in kinds:
        if isinstance(value, kind):
            if kind is int and value < 0:
                return "a negative number"
            if kind is int and value == 0:
                return "zero"
            return words
    return type(value).__name__


def _toml(value: object, limit: int = 80) -> str:
    """`value` as it would be written in TOML, shortened to `limit` characters."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, list):
        text = "[" + ", ".join(_toml(item, limit) for item in value) + "]"
    elif isinstance(value, dict):
        text = (
            "{ " + ", ".join(f"{key} = {_toml(item, limit)}" for key, item in value.items()) + " }" if value else "{}"
        )
    elif isinstance(value, datetime.date | datetime.time):
        text = value.isoformat()
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_FIELD_TYPES = typing.get_type_hints(Config)
