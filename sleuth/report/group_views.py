"""Views of finding groups: the ranked list, and one group in full with its graph."""

from __future__ import annotations

from typing import Any

import polars as pl

from sleuth.correlate.groups import Group, GroupsResult
from sleuth.report.document import Document, Section
from sleuth.report.entity_views import frame_records, frame_section

GROUP_COLUMNS = ["severity_label", "severity", "title", "tactics", "findings", "first_seen", "last_seen", "id"]


def _summary(group: Group) -> dict[str, Any]:
    counts = group.findings.group_by("severity_label").len().sort("severity_label")
    return {
        "id": group.id,
        "title": group.title,
        "severity": group.severity,
        "severity_label": group.severity_label,
        "tactics": group.tactics,
        "first_seen": group.first_seen,
        "last_seen": group.last_seen,
        "accounts": group.accounts,
        "findings": len(group.finding_ids),
        "findings_by_severity": dict(counts.iter_rows()),
        "entities": len(group.entities),
    }


def groups_document(result: GroupsResult) -> Document:
    records = [_summary(group) for group in result.groups]
    rows = [[r[c] if c != "tactics" else " → ".join(r[c]) for c in GROUP_COLUMNS] for r in records]
    section = Section(
        f"Finding groups ({len(records)}, from {result.findings} findings)",
        GROUP_COLUMNS,
        rows,
        empty="no finding in the sources",
        limits={"title": 60, "tactics": 60, "id": 36},
    )
    flat = [
        {
            **r,
            "tactics": "; ".join(r["tactics"]),
            "accounts": "; ".join(r["accounts"]),
            "findings_by_severity": "; ".join(f"{k}={v}" for k, v in r["findings_by_severity"].items()),
        }
        for r in records
    ]
    data = {"count": len(records), "findings": result.findings, "groups": records, "hubs": result.hubs}
    return Document("groups", data, flat, [section], columns=[c for c in records[0]] if records else GROUP_COLUMNS)


_EVIDENCE_TITLES = {
    "geolocations": "New geolocation observed",
    "asos": "New Autonomous System Organization (ASO) observed",
    "user_agents": "New user agent observed",
    "api_calls": "New API call issued",
    "addresses": "New IP address observed",
    "principals": "New IAM principal observed",
}


def group_document(group: Group, graph_text: str, graph_format: str) -> Document:
    summary = _summary(group)
    headline = (
        f"{group.severity_label} finding group {group.id}: {group.title}. "
        f"Tactics: {' → '.join(group.tactics) or 'none'}. {group.first_seen:%Y-%m-%d %H:%M} .. "
        f"{group.last_seen:%Y-%m-%d %H:%M} UTC; accounts {', '.join(group.accounts) or '-'}"
    )
    findings = group.findings.select(
        "severity_label", "severity", "type", "title", "first_seen", "last_seen", "producer", "finding_id"
    )
    sections = [
        frame_section("Findings", findings, list(findings.columns), limit=200, limits={"title": 60, "type": 50}),
    ]
    for category in ("Identity", "Network", "Storage", "Compute"):
        rows = group.entities.filter(pl.col("category") == category)
        sections.append(
            frame_section(
                f"Involved entities: {category}",
                rows,
                ["entity_type", "entity_id", "roles", "findings"],
                limit=100,
                limits={"entity_id": 70},
            )
        )
    for name, frame in group.evidence.items():
        columns = [c for c in ("value", "first_seen", "count", "new_for_account") if c in frame.columns]
        sections.append(frame_section(f"Evidence: {_EVIDENCE_TITLES.get(name, name)}", frame, columns))
    sections.append(Section("Graph", [], [], kind="diagram", body=graph_text, empty="no entity"))
    data = {
        **summary,
        "finding_list": frame_records(group.findings.drop("raw", strict=False)),
        "involved_entities": frame_records(group.entities),
        "evidence": {name: frame_records(frame) for name, frame in group.evidence.items()},
        "graph": {"format": graph_format, "text": graph_text},
    }
    return Document("group", data, data["finding_list"], sections, headline)
