"""The fields of a VPC flow log format, for `vpcflow`: the names AWS documents, the ones sleuth reads
(with their valid values and canonical columns), format strings, header lines, and the warnings a
text file's format earns.

Field names are matched with hyphens or underscores, in any case, optionally as `${...}`.
"""

from __future__ import annotations

import re

import polars as pl

from sleuth.parsers.base import ParseResult

DEFAULT_FORMAT: tuple[str, ...] = (
    "version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport", "protocol",
    "packets", "bytes", "start", "end", "action", "log-status",
)  # fmt: skip

# Every field AWS documents for VPC (v2–v8 and later) and Transit Gateway (v6) flow logs.
KNOWN_FIELDS = frozenset(
    (
        *DEFAULT_FORMAT,
        "vpc-id", "subnet-id", "instance-id", "tcp-flags", "type", "pkt-srcaddr", "pkt-dstaddr",  # v3
        "region", "az-id", "sublocation-type", "sublocation-id",  # v4
        "pkt-src-aws-service", "pkt-dst-aws-service", "flow-direction", "traffic-path",  # v5
        "ecs-cluster-arn", "ecs-cluster-name", "ecs-container-instance-arn", "ecs-container-instance-id",
        "ecs-container-id", "ecs-second-container-id", "ecs-service-name", "ecs-task-definition-arn",
        "ecs-task-arn", "ecs-task-id",  # v7
        "reject-reason", "resource-id", "encryption-status",  # v8 and later
        "resource-type", "tgw-id", "tgw-attachment-id", "tgw-src-vpc-account-id", "tgw-dst-vpc-account-id",
        "tgw-src-vpc-id", "tgw-dst-vpc-id", "tgw-src-subnet-id", "tgw-dst-subnet-id", "tgw-src-eni",
        "tgw-dst-eni", "tgw-src-az-id", "tgw-dst-az-id", "tgw-pair-attachment-id", "packets-lost-no-route",
        "packets-lost-blackhole", "packets-lost-mtu-exceeded", "packets-lost-ttl-expired",  # transit gateway
    )
)  # fmt: skip

_MAX_EPOCH = 253_402_300_799  # 9999-12-31T23:59:59Z
_INT32 = 2**31 - 1
_INT64 = 2**63 - 1
# Numeric fields sleuth reads, with their valid range (checked in this order).
NUMERIC_RANGES: dict[str, tuple[int, int]] = {
    "version": (0, _INT32),
    "srcport": (0, 65535),
    "dstport": (0, 65535),
    "protocol": (0, 255),
    "packets": (0, _INT64),
    "bytes": (0, _INT64),
    "start": (0, _MAX_EPOCH),
    "end": (0, _MAX_EPOCH),
    "tcp-flags": (0, 65535),
}
CHOICES: dict[str, tuple[str, ...]] = {
    "action": ("ACCEPT", "REJECT"),
    "log-status": ("OK", "NODATA", "SKIPDATA"),
}
# Canonical column <- flow log field: text columns as read, integer columns as numbers (start and end,
# numbers too, become times).
TEXT_COLUMNS: dict[str, str] = {
    "account": "account-id",
    "region": "region",
    "interface_id": "interface-id",
    "instance_id": "instance-id",
    "vpc_id": "vpc-id",
    "subnet_id": "subnet-id",
    "src_addr": "srcaddr",
    "dst_addr": "dstaddr",
    "action": "action",
    "log_status": "log-status",
    "flow_direction": "flow-direction",
    "pkt_src_addr": "pkt-srcaddr",
    "pkt_dst_addr": "pkt-dstaddr",
}
INT_COLUMNS: dict[str, str] = {
    "src_port": "srcport",
    "dst_port": "dstport",
    "protocol": "protocol",
    "packets": "packets",
    "bytes": "bytes",
    "tcp_flags": "tcp-flags",
}
# The fields sleuth reads; the others are dropped as soon as a line is split.
USED_FIELDS: tuple[str, ...] = tuple(dict.fromkeys([*NUMERIC_RANGES, *CHOICES, *TEXT_COLUMNS.values()]))


def field_name(token: str) -> str:
    """`${account-id}`, `account_id`, `Account-ID` -> `account-id`."""
    token = token.strip()
    if token.startswith("${") and token.endswith("}"):
        token = token[2:-1]
    return token.strip().lower().replace("_", "-")


def parse_format(spec: str) -> tuple[str, ...]:
    """The field list of a format string (`Config.vpc_format` or a header line)."""
    return tuple(field_name(token) for token in spec.split())


_NAME_WORD = r"(\$\{)?[a-z][a-z0-9_-]*\}?"
_HEADER_TOKEN = re.compile(f"^{_NAME_WORD}$")
# A line that may be a header (for polars, which then leaves the deciding to `header_fields`).
HEADER_LIKE = f"^{_NAME_WORD}( +{_NAME_WORD})*$"


def header_fields(line: str) -> tuple[str, ...] | None:
    """The fields a header line names, or None when the line is not a header.

    A header is a line of lowercase field-name-like words separated by spaces (hyphens or
    underscores, optionally `${...}`), starting with a name AWS documents, at least half of them
    names AWS documents."""
    tokens = [token for token in line.split(" ") if token]
    if not tokens or not all(_HEADER_TOKEN.match(token) for token in tokens):
        return None
    fields = tuple(field_name(token) for token in tokens)
    known = sum(name in KNOWN_FIELDS for name in fields)
    return fields if fields[0] in KNOWN_FIELDS and known * 2 >= len(fields) else None


def could_start_header(first: pl.Series) -> bool:
    """Whether a value of a file's first column could start a header line (a repeated header in
    concatenated files)."""
    candidates = first.filter(((first >= "a") & (first < "{")) | first.str.starts_with("${"))
    if not len(candidates):
        return False
    names = candidates.str.strip_prefix("${").str.strip_suffix("}").str.replace_all("_", "-", literal=True)
    return bool(names.is_in(sorted(KNOWN_FIELDS)).any())


def used_columns(fields: tuple[str, ...], prefix: str) -> list[pl.Expr]:
    """The used fields of a format, by their first position (`{prefix}{i}` columns)."""
    positions: dict[str, int] = {}
    for i, name in enumerate(fields):
        if name in USED_FIELDS:
            positions.setdefault(name, i)
    return [pl.col(f"{prefix}{i}").alias(name) for name, i in positions.items()]


def format_warnings(
    raw: pl.DataFrame,
    formats: list[tuple[str, ...]],
    has_header: bool,
    configured: tuple[str, ...] | None,
    result: ParseResult,
) -> None:
    """Warn about unknown fields, a format without start, and (without a header line) a format that
    most records do not fit: the likely sign of a headerless custom format without `vpc_format`."""
    unknown = sorted({name for fmt in formats for name in fmt} - KNOWN_FIELDS)
    if unknown:
        result.warnings.append(f"unknown flow log fields ignored: {', '.join(unknown[:10])}")
    if any("start" not in fmt for fmt in formats) and raw.height:
        result.warnings.append("the format has no start field: these flows have no time")
    if not has_header and raw.height:
        wrong = raw.select((pl.col("_reason") == "wrong field count").sum()).item()
        if wrong * 2 > raw.height:
            expected = len(configured or DEFAULT_FORMAT)
            result.warnings.append(
                f"no header line, and {wrong} of {raw.height} records do not have the {expected} fields of "
                + ("vpc_format" if configured else "the default version 2 format")
                + ": set vpc_format to the field list of a headerless custom format"
            )
