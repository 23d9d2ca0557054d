"""Views: the result of each library call as a `Document` (what to show, in which order)."""

from __future__ import annotations

from typing import Any

import orjson

from sleuth.correlate.entities import short_principal
from sleuth.coverage import Coverage
from sleuth.findings import FindingsResult
from sleuth.ingest import IngestSummary
from sleuth.report.document import Document, Section
from sleuth.search import SearchResult

SEARCH_TABLE = ["time", "principal", "action", "error_code", "src_ip", "user_agent", "event_id"]
SEARCH_LIMITS = {"principal": 40, "user_agent": 30, "error_code": 24, "event_id": 36}
SEARCH_RECORD = [
    "event_id",
    "time",
    "account",
    "region",
    "service",
    "action",
    "event_type",
    "read_only",
    "error_code",
    "error_message",
    "actor_type",
    "actor_arn",
    "principal",
    "session",
    "access_key",
    "user_name",
    "src_ip",
    "user_agent",
    "mfa",
    "resources",
    "origin",
]
_JSON_TEXT = ("request", "response", "additional")


def _json_or_text(text: str | None) -> Any:
    """Nested parameters kept as JSON text become JSON again in JSON output; text that is not JSON, or
    nested deeper than JSON output can write (orjson stops at 255 levels), stays text."""
    if text is None:
        return None
    try:
        value = orjson.loads(text)
        orjson.dumps(value)
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):
        return text
    return value


def search_document(result: SearchResult) -> Document:
    events = result.events
    records = [
        {**row, **{name: _json_or_text(row_json) for name, row_json in zip(_JSON_TEXT, extra, strict=True)}}
        for row, extra in zip(
            events.select(SEARCH_RECORD).iter_rows(named=True), events.select(_JSON_TEXT).iter_rows(), strict=True
        )
    ]
    shown = f"{len(events)} of {result.total}" if len(events) < result.total else str(result.total)
    section = Section(
        title=f"Events ({shown})",
        columns=SEARCH_TABLE,
        rows=[list(row) for row in events.select(SEARCH_TABLE).with_columns(short_principal()).iter_rows()],
        empty="no event matches",
        limits=SEARCH_LIMITS,
    )
    data = {"count": len(records), "total": result.total, "events": records}
    return Document("search", data, records, [section], columns=[*SEARCH_RECORD, *_JSON_TEXT])


def coverage_document(result: Coverage) -> Document:
    cells = result.cells.rename({"first": "first_event", "last": "last_event"})
    records = cells.to_dicts()
    gaps = [{"account": g.account, "start": g.start, "end": g.end, "hours": g.hours} for g in result.gaps]
    tampering = result.tampering.to_dicts()
    skipped = [{"path": r.path, "reason": r.error} for r in result.skipped_inputs]
    data = {
        "totals": result.totals,
        "coverage": records,
        "gaps": gaps,
        "tampering": tampering,
        "skipped_inputs": skipped,
        "digest_files": result.digests,
        "pruned_by_key_date": result.pruned,
        "ignored_files": result.ignored,
        "warnings": result.warnings,
        "flows": result.flows.to_dicts(),
        "findings": result.findings.to_dicts(),
    }
    t = result.totals
    headline = (
        f"{t['inputs']} inputs, {t['read']} records read: {t['kept']} kept, {t['duplicate']} duplicate, "
        f"{sum(t['skipped'].values())} skipped; {result.digests} digest files; "
        f"{result.pruned} files outside the time window"
    )
    sections = [
        Section(
            "Coverage: account x region x day",
            list(cells.columns),
            [list(r) for r in cells.iter_rows()],
            empty="no events",
        ),
        Section(
            "Gaps: hours without events inside the covered span",
            ["account", "start", "end", "hours"],
            [list(g.values()) for g in gaps],
            empty="no gap",
        ),
        Section(
            "Logging tampering",
            ["time", "principal", "action", "what", "error_code", "src_ip", "event_id"],
            [
                list(row)
                for row in result.tampering.select(
                    "time", "principal", "action", "what", "error_code", "src_ip", "event_id"
                ).iter_rows()
            ],
            empty="no tampering event found",
        ),
        Section(
            "VPC flows: account x interface x day",
            list(result.flows.columns),
            [list(r) for r in result.flows.iter_rows()],
            empty="no flow records",
        ),
        Section(
            "Findings by type and severity",
            list(result.findings.columns),
            [list(r) for r in result.findings.iter_rows()],
            empty="no findings",
        ),
        Section("Skipped inputs", ["path", "reason"], [[s["path"], s["reason"]] for s in skipped], empty="none"),
        Section("Records skipped", ["reason", "records"], [list(i) for i in t["skipped"].items()], empty="none"),
    ]
    return Document("sources", data, records, sections, headline, columns=list(cells.columns))


def ingest_document(summary: IngestSummary) -> Document:
    totals = summary.manifest["totals"]
    run = {
        "read": sum(r.read for r in summary.inputs),
        "kept": sum(r.kept for r in summary.inputs),
        "duplicate": sum(r.duplicate for r in summary.inputs),
        "skipped": sum(sum(r.skipped.values()) for r in summary.inputs),
    }
    records = [r.to_json() for r in summary.inputs]
    data = {
        "case": str(summary.case),
        "run": {
            "inputs": len(summary.inputs),
            "unchanged_inputs": len(summary.unchanged),
            "digest_files": len(summary.digests),
            "pruned_by_key_date": summary.pruned,
            **run,
        },
        "totals": totals,
        "time_range": summary.manifest["time_range"],
        "inputs": records,
    }
    headline = (
        f"{summary.case}: read {run['read']} records from {len(summary.inputs)} inputs: {run['kept']} kept, "
        f"{run['duplicate']} duplicate, {run['skipped']} skipped ({len(summary.unchanged)} inputs unchanged, "
        f"{len(summary.digests)} digest files). The case holds {totals['kept']} records."
    )
    rows = [
        [r.path, r.format, r.read, r.kept, r.duplicate, sum(r.skipped.values()), r.error or ""]
        for r in summary.inputs
        if r.error or r.skipped or r.duplicate
    ]
    section = Section(
        "Inputs with duplicates, skipped records or errors",
        ["path", "format", "read", "kept", "duplicate", "skipped", "error"],
        rows,
        empty="none",
    )
    return Document("ingest", data, records, [section], headline)


FINDINGS_TABLE = ["severity_label", "severity", "type", "title", "account", "last_seen", "entities", "finding_id"]
FINDINGS_RECORD = [
    "finding_id", "producer", "type", "title", "description", "severity", "severity_label", "account", "region",
    "first_seen", "last_seen", "tactics", "techniques", "event_ids",
]  # fmt: skip


def findings_document(result: FindingsResult) -> Document:
    entities: dict[str, list[dict]] = {}
    for row in result.entities.sort("finding_id", "entity_type", "entity_id").iter_rows(named=True):
        entities.setdefault(row["finding_id"], []).append(
            {"type": row["entity_type"], "id": row["entity_id"], "role": row["role"]}
        )
    records = [
        {**row, "entities": entities.get(row["finding_id"], [])}
        for row in result.findings.select(FINDINGS_RECORD).iter_rows(named=True)
    ]
    rows = [
        [r["severity_label"], r["severity"], r["type"], r["title"], r["account"], r["last_seen"],
         len(r["entities"]), r["finding_id"]]
        for r in records
    ]  # fmt: skip
    shown = f"{len(records)} of {result.total}" if len(records) < result.total else str(result.total)
    section = Section(f"Findings ({shown})", FINDINGS_TABLE, rows, empty="no finding matches",
                      limits={"type": 50, "title": 50, "finding_id": 36})  # fmt: skip
    flat = [{**r, "entities": "; ".join(f"{e['type']}:{e['id']}" for e in r["entities"])} for r in records]
    document = Document(
        "findings", {"count": len(records), "total": result.total, "findings": records}, flat, [section]
    )
    return document


# --- sleuth rules ------------------------------------------------------------------------------

RULES_RECORD = ["kind", "id", "severity", "severity_label", "tactics", "techniques", "techniques_v19", "title",
                "service", "action", "condition", "makes_findings"]  # fmt: skip
DETECTIONS_TABLE = ["id", "severity_label", "severity", "tactics", "techniques", "title"]
MAPPED_TABLE = ["id", "severity_label", "tactics", "techniques", "event", "condition", "title"]


def rules_document(listing: Any) -> Document:  # listing: sleuth.correlate.detect.RulesListing
    """The built-in detections and the mapped CloudTrail events (`sleuth rules`)."""
    detections = [{"kind": "detection", **d} for d in listing.detections]
    mapped = [{"kind": "mapped", **m, "service": m["service"].removesuffix(".amazonaws.com")} for m in listing.mapped]
    for m in mapped:
        m["event"] = f"{m['service']}:{m['action']}"
    records = [{name: r.get(name) for name in RULES_RECORD} for r in detections + mapped]
    for record in records[: len(detections)]:
        record["makes_findings"] = True
    scope = f" of tactic {listing.tactic}" if listing.tactic else ""
    sections = [
        Section(f"Detections{scope} ({len(detections)})", DETECTIONS_TABLE,
                [[d[c] for c in DETECTIONS_TABLE] for d in detections], empty="none", limits={"title": 60}),
        Section(f"Mapped CloudTrail events{scope} ({len(mapped)})", MAPPED_TABLE,
                [[m[c] for c in MAPPED_TABLE] for m in mapped], empty="none",
                note="Context rows label events for investigations and make no finding of their own.",
                limits={"title": 50, "event": 48}),
    ]  # fmt: skip
    data = {
        "count": len(records),
        "tactic": listing.tactic,
        "detections": listing.detections,
        "mapped": listing.mapped,
    }
    headline = (
        f"{len(detections)} detections and {len(mapped)} mapped CloudTrail events{scope}; "
        f"{sum(1 for m in mapped if m['makes_findings'])} of the mapped events make findings."
    )
    return Document("rules", data, records, sections, headline, columns=RULES_RECORD)
