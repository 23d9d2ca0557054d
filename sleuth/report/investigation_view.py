"""The investigation report: terminal, markdown (for a ticket) and the versioned JSON contract."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import polars as pl

from sleuth.correlate.investigate import Investigation
from sleuth.report.document import Document, Section
from sleuth.report.entity_views import frame_records, frame_section
from sleuth.report.graph_render import as_mermaid, as_text

# Indicator tables: (title, indicator type(s), columns shown)
_INDICATOR_TABLES: list[tuple[str, tuple[str, ...], list[str]]] = [
    (
        "Tactics, techniques and procedures (MITRE ATT&CK)",
        ("TTP_OBSERVED",),
        ["tactic", "technique", "api_name", "ip_address", "api_success_count", "api_failure_count", "first_seen"],
    ),
    ("Impossible travel", ("IMPOSSIBLE_TRAVEL",), ["title", "first_seen", "last_seen"]),
    ("Threat-intel flagged addresses", ("FLAGGED_IP_ADDRESS",), ["ip_address", "reason"]),
    ("New geolocations", ("NEW_GEOLOCATION",), ["location", "ip_address", "is_new_for_entire_account", "first_seen"]),
    ("New autonomous system organizations", ("NEW_ASO",), ["aso", "is_new_for_entire_account", "first_seen"]),
    ("New user agents", ("NEW_USER_AGENT",), ["user_agent", "is_new_for_entire_account", "first_seen"]),
    ("New API calls", ("NEW_API_CALL",), ["api_name", "is_new_for_entire_account", "first_seen", "count"]),
    (
        "API volume spikes",
        ("INCREASED_API_VOLUME", "FAILED_CALL_SPIKE"),
        ["type", "api_name", "scope_count", "baseline_count", "expected", "p_value"],
    ),
    (
        "Credential lineage",
        ("CREDENTIAL_LINEAGE",),
        ["time", "kind", "caller", "role", "issued_key", "issued_to", "events_with_credentials", "ip_address"],
    ),
    ("Logging tampering", ("LOGGING_TAMPERING",), ["time", "api_name", "what", "principal", "succeeded", "error_code"]),
    (
        "Network transfer",
        ("NETWORK_TRANSFER",),
        ["direction", "local_address", "local_port", "peer_address", "remote_port", "bytes", "flows", "first_seen"],
    ),
    ("Related findings", ("RELATED_FINDING",), ["severity_label", "finding_type", "title", "producer", "id"]),
    ("Related finding groups", ("RELATED_FINDING_GROUP",), ["severity_label", "title", "id"]),
]
_LIMITS = {"caller": 60, "issued to": 60, "role": 60, "title": 120, "user_agent": 120, "principal": 60}
# Short headers for the tables (JSON keeps the full keys), so the report reads at 100 columns.
_HEADERS = {
    "api_success_count": "ok",
    "api_failure_count": "failed",
    "is_new_for_entire_account": "new for account",
    "events_with_credentials": "uses",
    "ip_address": "address",
    "severity_label": "severity",
    "issued_key": "key",
    "issued_to": "issued to",
    "local_address": "local",
    "peer_address": "peer",
    "local_port": "port",
    "remote_port": "peer port",
    "first_seen": "first seen",
    "baseline_count": "baseline",
    "scope_count": "scope",
}
_ARN_COLUMNS = {"caller", "role", "issued_to", "principal"}


def short_arn(value: Any) -> Any:
    """`arn:aws:iam::123456789012:user/alice` as `user/alice` in a table (the account is in the report)."""
    if isinstance(value, str) and value.startswith("arn:") and value.count(":") >= 5:
        return value.split(":", 5)[5]
    return value


def _rows(indicators: list[dict], types: tuple[str, ...], columns: list[str]) -> list[list[Any]]:
    return [
        [short_arn(item.get(c)) if c in _ARN_COLUMNS else item.get(c) for c in columns]
        for item in indicators
        if item["type"] in types
    ]


def investigation_document(inv: Investigation, markdown: bool = False) -> Document:
    scope = inv.scope
    target = inv.target
    headline = (
        f"{inv.severity_label} — investigation of {target['type']} {target['id']}; scope "
        f"{scope.start:%Y-%m-%d %H:%M} .. {scope.end:%Y-%m-%d %H:%M} UTC, baseline from "
        f"{scope.baseline_start:%Y-%m-%d %H:%M} UTC"
    )
    first = inv.first_intrusion or {}
    sections = [
        Section("Summary", [], [], kind="text", body=inv.summary),
        Section("Severity", ["reason"], [[r] for r in inv.severity_reasons], limits={"reason": 300}),
        Section(
            "First intrusion",
            ["field", "value"],
            [
                [k, first.get(k)]
                for k in (
                    "time",
                    "action",
                    "outcome",
                    "principal",
                    "source_ip",
                    "event_id",
                    "entry_time",
                    "entry_action",
                    "failed_attempts_before",
                    "vector",
                )
            ],
            empty="no activity in the scope",
            limits={"value": 100},
        ),
    ]
    for title, types, columns in _INDICATOR_TABLES:
        rows = _rows(inv.indicators, types, columns)
        if rows:
            sections.append(Section(title, [_HEADERS.get(c, c) for c in columns], rows, limits=_LIMITS))
    sections += [
        _timeline_section(inv.timeline),
        frame_section("API calls per day", inv.daily, ["day", "success", "failure"], limit=60),
        frame_section(
            "Affected resources", inv.resources, ["resource", "actions", "calls", "failures"], limits={"resource": 70}
        ),
        Section(
            "Entity graph",
            [],
            [],
            kind="diagram",
            body=(as_mermaid(inv.graph) if markdown else as_text(inv.graph)),
            empty="no entity",
        ),
        Section(
            "Remediation",
            [],
            [[s["title"], s["command"], s["why"]] for s in inv.remediation],
            kind="steps",
            empty="no step: no entity to contain was found",
        ),
        Section(
            "Prevention",
            ["control", "detail"],
            [[p["control"], p["detail"]] for p in inv.prevention],
            limits={"detail": 400},
        ),
        _manifest_section(inv, markdown),
    ]
    if markdown:
        sections = [_for_ticket(section) for section in [*sections, _raw_evidence(inv)]]
    data = {
        "target": target,
        **scope.as_json(),
        "severity": inv.severity_label,
        "severity_score": inv.severity,
        "severity_reasons": inv.severity_reasons,
        "summary": inv.summary,
        "first_intrusion": inv.first_intrusion,
        "indicators": inv.indicators,
        "timeline": frame_records(inv.timeline),
        "daily": frame_records(inv.daily),
        "resources": frame_records(inv.resources),
        "entities": inv.entities,
        "findings": frame_records(inv.findings),
        "groups": inv.groups,
        "graph": {
            "nodes": [
                {"key": n, **{k: v for k, v in d.items() if k in ("type", "id", "label")}}
                for n, d in sorted(inv.graph.nodes(data=True))
            ],
            "edges": [
                {"from": a, "to": b, "type": d.get("edge"), "count": d.get("count")}
                for a, b, d in sorted(inv.graph.edges(data=True), key=lambda e: (e[0], e[1], e[2].get("edge", "")))
            ],
        },
        "remediation": inv.remediation,
        "prevention": inv.prevention,
        "inputs": inv.inputs,
        "run": inv.run,
    }
    records = [{"indicator": i["type"], **i} for i in inv.indicators]
    return Document("investigation", data, records, sections, headline)


def _timeline_section(timeline: pl.DataFrame) -> Section:
    """The timeline for reading: account-relative principals, and a failure shown by its error."""
    shown = timeline.head(200)
    title = f"Timeline ({len(shown)} of {len(timeline)})" if len(timeline) > len(shown) else "Timeline"
    rows = [
        [r["time"], short_arn(r["principal"]), r["action"], r["error_code"] or r["outcome"], r["source_ip"],
         r["tactic"], r["event_id"]]
        for r in shown.iter_rows(named=True)
    ]  # fmt: skip
    columns = ["time", "principal", "action", "outcome", "source_ip", "tactic", "event_id"]
    return Section(title, columns, rows, empty="none", limits={"event_id": 40, "outcome": 30})


def _manifest_section(inv: Investigation, markdown: bool) -> Section:
    """Every input with its sha256, so that the report can be reproduced; the folder they share is
    said once (55 inputs under one long path would take a ticket's room)."""
    paths = [i["path"] for i in inv.inputs]
    parts = [path.split("/") for path in paths]
    shared = 0
    if len(parts) > 1:
        while all(len(p) > shared + 1 and p[shared] == parts[0][shared] for p in parts):
            shared += 1
    folder = "/".join(parts[0][:shared]) if shared else ""
    rows = [["/".join(p[shared:]), i["sha256"], i["format"], i["kept"]] for p, i in zip(parts, inv.inputs, strict=True)]
    note = (
        (f"inputs under {folder}/; " if folder else "")
        + f"sleuth {inv.run['sleuth_version']}, run {inv.run['time']:%Y-%m-%dT%H:%M:%SZ}, parameters "
        + ", ".join(f"{k}={v}" for k, v in inv.run["parameters"].items())
    )
    kind = "details" if markdown else "table"
    return Section("Evidence manifest", ["input", "sha256", "format", "kept"], rows, note=note, kind=kind,
                   limits={"input": 300})  # fmt: skip


_RAW_MAX = 160  # characters of request parameters shown per event
# A ticket holds ~32-64k characters (Jira 32,767 a field, GitHub 65,536 a comment): markdown tables keep
# their first rows (the JSON keeps all), and long ones fold under <details>.
# The evidence manifest keeps every input, so that the report can be reproduced.
_TICKET_ROWS = {"Timeline": 50, "Raw evidence": 10, "Evidence manifest": 10_000}
_TICKET_ROWS_DEFAULT = 15
_TICKET_FOLD = 15


def _for_ticket(section: Section) -> Section:
    if section.kind not in ("table", "details") or len(section.rows) <= _TICKET_FOLD:
        return section
    name = section.title.split(" (", 1)[0]
    keep = _TICKET_ROWS.get(name, _TICKET_ROWS_DEFAULT)
    title = section.title
    shown_of = re.search(r"\(\d+ of (\d+)\)", title)  # frame_section kept the first rows of a larger table
    total = int(shown_of.group(1)) if shown_of else len(section.rows)
    if len(section.rows) > keep:
        title = f"{name} ({keep} of {total}; -f json has every row)"
    kind = "table" if name == "Timeline" else "details"
    return dataclasses.replace(section, title=title, rows=section.rows[:keep], kind=kind)


def _raw_evidence(inv: Investigation) -> Section:
    """The timeline's events with their request parameters, folded away in markdown (<details>): first
    those with parameters or a failure, then those with a tactic, then the rest (a ticket keeps only
    the first rows), each part in time order."""
    telling = pl.col("request").is_not_null() | (pl.col("outcome") != "success")
    rank = pl.when(telling).then(0).when(pl.col("tactic").is_not_null()).then(1).otherwise(2)
    timeline = (
        inv.timeline.filter(~pl.col("event_id").str.starts_with("first: "))
        .with_columns(rank.alias("_rank"))
        .sort(["_rank", "time", "event_id"])
    )
    rows = [
        [r["time"], r["event_id"], r["action"], r["error_code"] or r["outcome"], r["error_message"],
         _clip(r["request"])]
        for r in timeline.iter_rows(named=True)
    ]  # fmt: skip
    columns = ["time", "event_id", "action", "outcome", "error_message", "request"]
    return Section("Raw evidence (the timeline's events)", columns, rows, kind="details")


def _clip(text: str | None) -> str | None:
    if text is None or len(text) <= _RAW_MAX:
        return text
    return text[:_RAW_MAX] + f"... ({len(text)} characters)"
