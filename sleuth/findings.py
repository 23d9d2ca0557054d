"""`sleuth findings`: GuardDuty's findings and sleuth's own, most severe first."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from sleuth.dataset import Dataset
from sleuth.errors import ThresholdReached
from sleuth.netaddr import parse_ip, parse_network
from sleuth.patterns import addresses_in, text_matches
from sleuth.severity import parse_severity

__all__ = ["FindingFilter", "FindingsResult", "check_threshold", "list_findings", "parse_severity"]


@dataclass(frozen=True)
class FindingFilter:
    min_severity: float | None = None
    types: tuple[str, ...] = ()  # finding types; wildcards
    entities: tuple[str, ...] = ()  # entity ids (ARN, key, instance, bucket ...; wildcards) or IP/CIDR
    producers: tuple[str, ...] = ()  # guardduty, sleuth
    limit: int | None = None


@dataclass
class FindingsResult:
    findings: pl.DataFrame  # most severe first, then most recent
    entities: pl.DataFrame  # finding_entities of those findings
    total: int


def list_findings(dataset: Dataset, where: FindingFilter) -> FindingsResult:
    findings = dataset.frames["findings"]
    if where.min_severity is not None:
        findings = findings.filter(pl.col("severity") >= where.min_severity)
    if where.types:
        findings = findings.filter(pl.any_horizontal([text_matches(pl.col("type"), t) for t in where.types]))
    if where.producers:
        findings = findings.filter(pl.col("producer").is_in([p.lower() for p in where.producers]))
    entities = dataset.frames["finding_entities"]
    if where.entities:
        ids = _finding_ids_with_entities(entities, where.entities)
        findings = findings.filter(pl.col("finding_id").is_in(ids))
    ranked = findings.sort(["severity", "last_seen", "finding_id"], descending=[True, True, False], nulls_last=True)
    collected = ranked.collect()
    total = len(collected)
    if where.limit is not None:
        collected = collected.head(where.limit)
    shown = entities.filter(pl.col("finding_id").is_in(collected["finding_id"].implode())).collect()
    return FindingsResult(collected, shown, total)


def _finding_ids_with_entities(entities: pl.LazyFrame, patterns: tuple[str, ...]) -> list[str]:
    table = entities.select("finding_id", "entity_type", "entity_id").collect()
    conditions = []
    for pattern in patterns:
        network = parse_network(pattern) if parse_ip(pattern.split("/")[0]) else None
        if network is not None:
            ips = addresses_in(table.filter(pl.col("entity_type") == "IpAddress")["entity_id"].unique(), [network])
            conditions.append(pl.col("entity_id").is_in(ips) & (pl.col("entity_type") == "IpAddress"))
        else:
            conditions.append(text_matches(pl.col("entity_id"), pattern))
    return table.filter(pl.any_horizontal(conditions))["finding_id"].unique().to_list()


def check_threshold(result: FindingsResult, threshold: float, given: str) -> None:
    """--fail-on: raise ThresholdReached when any listed finding is at least `threshold`."""
    reached = result.findings.filter(pl.col("severity") >= threshold)
    if len(reached):
        raise ThresholdReached(f"{len(reached)} finding(s) at or above {given} (--fail-on)")
