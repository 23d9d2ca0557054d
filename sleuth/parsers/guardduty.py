"""GuardDuty findings in every shape AWS hands them out, into the `findings` and `finding_entities` frames.

Shapes (handbook §2): `aws guardduty get-findings` output (PascalCase `{"Findings": [...]}`), S3 export
files (JSON lines, camelCase, one finding per line), EventBridge events (the finding under `detail`,
one event per document or per line), a JSON array of findings and a single finding. Keys are matched
case-insensitively at every level: each finding's keys are lower-cased once, then read.

Findings are few (thousands, not millions), so this parser is orjson plus plain Python; only the
frames are polars. A record is one finding (or one event or line that should have been one): every
record read is kept or skipped with its reason (a severity off GuardDuty's 0-10 scale is one: it would
sort first or last in every list). An input that is not JSON at all is an `error`.

Tactics and techniques come from the tactic table (`sleuth.attack.tactic_table`) and entities from
`guardduty_entities`. Attack sequences (`AttackSequence:*`, GuardDuty Extended Threat Detection) take
their tactics from their signals and ATTACK_TACTIC / ATTACK_TECHNIQUE indicators, or from the MITRE
lines of their description when the export dropped `service.detection.sequence`.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import polars as pl

from sleuth import schema
from sleuth.attack import TacticTable, canonical_tactic, tactic_table, technique_ids
from sleuth.config import Config
from sleuth.parsers.base import ParseResult
from sleuth.parsers.guardduty_entities import as_dict, as_dicts, as_list, as_text, finding_entities
from sleuth.severity import severity_label

NAME = "guardduty"
FRAMES = ("findings", "finding_entities")
PRODUCER = "guardduty"

# ---------------------------------------------------------------------------------------------
# Sniffing: decide by content on the first 64 KB of decompressed text.

_BOM = b"\xef\xbb\xbf"
# CloudTrail keys (a CloudTrail record or lookup-events output) and Security Hub ASFF findings, which
# carry GuardDuty ARNs but are another format.
_NOT_OURS = re.compile(rb'"(?:eventversion|eventtime|records|cloudtrailevent|productarn)"\s*:')
_FINDING_ARN = re.compile(rb'"arn:aws[a-z-]*:guardduty:[^"]*/finding/')
_GUARDDUTY_EVENT = re.compile(rb'"source"\s*:\s*"aws\.guardduty"|"detail-type"\s*:\s*"guardduty finding"')
_SERVICE_NAME = re.compile(rb'"servicename"\s*:\s*"guardduty"')
_TYPE_GRAMMAR = re.compile(rb'"type"\s*:\s*"[a-z]+:[a-z0-9]+/[^"]+"')
_SCHEMA_VERSION = re.compile(rb'"schemaversion"\s*:\s*"2\.')
_NO_FINDINGS = re.compile(rb'\{\s*"findings"\s*:\s*\[\s*\]\s*\}\s*\Z')  # get-findings that found nothing


def sniff(head: bytes) -> bool:
    """GuardDuty findings in any accepted shape; never CloudTrail, Security Hub ASFF or flow-log text."""
    text = head.removeprefix(_BOM).lstrip()
    if text[:1] not in (b"{", b"["):
        return False
    text = text.lower()
    if _NOT_OURS.search(text):
        return False
    if _FINDING_ARN.search(text) or _GUARDDUTY_EVENT.search(text) or _NO_FINDINGS.match(text):
        return True
    has_type = _TYPE_GRAMMAR.search(text) is not None
    return has_type and (_SERVICE_NAME.search(text) is not None or _SCHEMA_VERSION.search(text) is not None)


# ---------------------------------------------------------------------------------------------
# Severity (labels by sleuth.severity's bands) and times.


SEVERITY_MIN, SEVERITY_MAX = 0.0, 10.0  # GuardDuty's scale


def _severity(value: Any) -> float | str | None:
    """The severity of a finding: a number on GuardDuty's 0-10 scale, None when the finding gives none
    (absent, or not a number: kept without a severity), or the reason to skip a number off the scale."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, int | float):
        return None
    if isinstance(value, float) and math.isnan(value):
        return "severity not a number"
    if not SEVERITY_MIN <= value <= SEVERITY_MAX:  # infinities included
        return "severity outside 0-10"
    return float(value)


_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?\s*(Z|[+-]\d{2}:?\d{2})?$",
    re.IGNORECASE,
)


def parse_time(value: Any) -> datetime | None:
    """GuardDuty's time forms: ISO 8601 (`...Z`, offsets, a space for the `T`, up to nanoseconds, as the
    S3 export writes them) and epoch seconds or milliseconds. Naive times are UTC."""
    try:
        if isinstance(value, str):
            match = _ISO.match(value.strip())
            if not match:
                return None
            year, month, day, hour, minute, second, fraction, zone = match.groups()
            micro = int((fraction or "0")[:6].ljust(6, "0"))
            tz = UTC
            if zone and zone.upper() != "Z":
                sign = -1 if zone[0] == "-" else 1
                digits = zone[1:].replace(":", "")
                tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
            moment = datetime(
                int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micro, tzinfo=tz
            )
            return moment.astimezone(UTC)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            seconds = value / 1000 if abs(value) >= 1e11 else value
            return datetime.fromtimestamp(seconds, UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None


# ---------------------------------------------------------------------------------------------
# Reading documents into records.


@dataclass
class _Record:
    value: Any  # the finding as read (original keys), or whatever stood in its place
    envelope: dict | None = None  # lower-cased EventBridge envelope fields (account, region)
    skip: str | None = None  # a reason to skip it, decided while unwrapping


def _records(data: bytes, result: ParseResult) -> Iterator[_Record]:
    """Every record of one input; lines that are not JSON are counted and skipped here."""
    data = data.removeprefix(_BOM)
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        yield from _json_lines(data, result, exc)
        return
    yield from _unwrap(document)


def _json_lines(data: bytes, result: ParseResult, exc: Exception) -> Iterator[_Record]:
    lines = [line for line in data.split(b"\n") if line.strip()]
    parsed: list[Any] = []
    for line in lines:
        try:
            parsed.append(orjson.loads(line))
        except orjson.JSONDecodeError as line_exc:
            parsed.append(line_exc)
    if len(lines) < 2 or not any(isinstance(item, dict | list) for item in parsed):
        result.error = ("nesting too deep: " if "depth" in str(exc) else "invalid JSON: ") + str(exc)
        return
    for item in parsed:
        if isinstance(item, Exception):
            result.read += 1
            result.skip("nesting too deep" if "depth" in str(item) else "invalid JSON")
        else:
            yield from _unwrap(item)


def _get(mapping: dict, key: str) -> Any:
    """A key of a record whose keys are not yet lower-cased (wrappers only: a handful of keys)."""
    if key in mapping:
        return mapping[key]
    for name, value in mapping.items():
        if isinstance(name, str) and name.lower() == key:
            return value
    return None


def _unwrap(document: Any) -> Iterator[_Record]:
    if isinstance(document, list):
        for item in document:
            yield _unwrap_one(item)
        return
    if isinstance(document, dict):
        findings = _get(document, "findings")
        if isinstance(findings, list) and _get(document, "id") is None:
            for item in findings:
                yield _unwrap_one(item)
            return
    yield _unwrap_one(document)


def _unwrap_one(item: Any) -> _Record:
    """An EventBridge event gives its `detail`; any other object is taken as a finding."""
    if not isinstance(item, dict):
        return _Record(item)
    detail = _get(item, "detail")
    detail_type = _get(item, "detail-type")
    if isinstance(detail, dict) and (detail_type is not None or _get(item, "source") is not None):
        if isinstance(detail_type, str) and detail_type.strip().lower() != "guardduty finding":
            return _Record(item, skip=f"not a GuardDuty finding event ({detail_type.strip()[:60]})")
        envelope = {"account": _get(item, "account"), "region": _get(item, "region")}
        return _Record(detail, envelope)
    return _Record(item)


def _too_deep(value: Any, limit: int) -> bool:
    """Whether `value` nests deeper than `limit` (iterative: input may nest ~1000 deep)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values() if isinstance(child, dict | list))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item if isinstance(child, dict | list))
    return False


def _lower(value: Any) -> Any:
    """The same JSON with every object key lower-cased (call only on values of bounded depth)."""
    if isinstance(value, dict):
        return {str(key).lower(): _lower(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_lower(item) for item in value]
    return value


# ---------------------------------------------------------------------------------------------
# One finding -> one findings row and its entity rows.


@dataclass
class _Finding:
    row: dict[str, Any]
    entities: list[tuple[str, str, str]]
    sample: bool
    unknown_purpose: str | None


def _finding(record: _Record, origin: str, config: Config, table: TacticTable) -> _Finding | str:
    """The rows of one finding, or the reason it is skipped."""
    read = _read(record, config)
    if isinstance(read, str):
        return read
    finding, raw = read
    service = as_dict(finding.get("service"))
    created, updated = parse_time(finding.get("createdat")), parse_time(finding.get("updatedat"))
    first_seen = parse_time(service.get("eventfirstseen")) or created or updated
    last_seen = parse_time(service.get("eventlastseen")) or updated or first_seen
    if first_seen is None:
        return "no usable time"
    severity = _severity(finding.get("severity"))
    if isinstance(severity, str):
        return severity

    envelope = record.envelope or {}
    account = as_text(finding.get("accountid")) or as_text(envelope.get("account"))
    finding_type = as_text(finding.get("type"))
    description = as_text(finding.get("description"))
    tactics, techniques, known = _ttps(finding_type, service, description, table)
    entities = finding_entities(finding, account, _partition(finding))
    row = {
        "finding_id": as_text(finding.get("id")),
        "producer": PRODUCER,
        "type": finding_type,
        "title": as_text(finding.get("title")),
        "description": description,
        "severity": severity,
        "severity_label": severity_label(severity),
        "account": account,
        "region": as_text(finding.get("region")) or as_text(envelope.get("region")),
        "first_seen": first_seen,
        "last_seen": last_seen,
        "tactics": tactics,
        "techniques": techniques,
        "event_ids": [],
        "raw": raw.decode(),
        "updated_at": updated or created or last_seen,
        "origin": origin,
    }
    unknown = None if known else (_purpose(finding_type) or finding_type or "(no type)")
    return _Finding(row, entities, _is_sample(finding), unknown)


_MAX_DEPTH = 256  # whatever the config says: key lower-casing recurses, and Python's stack is ~1000 deep


def _read(record: _Record, config: Config) -> tuple[dict, bytes] | str:
    """A record that holds a GuardDuty finding: its lower-cased keys and its raw JSON, or why it is skipped."""
    if record.skip:
        return record.skip
    if not isinstance(record.value, dict):
        return "not a JSON object"
    if _too_deep(record.value, min(config.max_json_depth, _MAX_DEPTH)):
        return "nesting too deep"
    try:
        raw = orjson.dumps(record.value)
    except (orjson.JSONEncodeError, TypeError):
        return "unserialisable record"
    if len(raw) > config.max_record_bytes:
        return "record too large"
    finding = _lower(record.value)
    if "productarn" in finding:
        return "Security Hub (ASFF) finding, not GuardDuty's format"
    if not as_text(finding.get("id")) or not isinstance(finding.get("id"), str):
        return "not a finding (no id)"
    return finding, raw


def _purpose(finding_type: str | None) -> str | None:
    """The ThreatPurpose of a type: the part before `:`."""
    return finding_type.split(":", 1)[0] if finding_type and ":" in finding_type else None


def _partition(finding: dict) -> str:
    """The AWS partition, for the IAM ARNs of entities: stated, else from the finding's ARN."""
    partition = as_text(finding.get("partition"))
    if partition:
        return partition
    arn = as_text(finding.get("arn")) or ""
    return arn.split(":")[1] if arn.startswith("arn:") and arn.count(":") > 2 else "aws"


def _is_sample(finding: dict) -> bool:
    info = as_dict(as_dict(finding.get("service")).get("additionalinfo"))
    title = as_text(finding.get("title")) or ""
    return info.get("sample") is True or title.startswith("[SAMPLE]")


def _ttps(
    finding_type: str | None, service: dict, description: str | None, table: TacticTable
) -> tuple[list[str], list[str], bool]:
    """(tactics, techniques, purpose known): the type's from the table, and an attack sequence's own first."""
    tactics, techniques, known = table.lookup(finding_type)
    sequence = as_dict(as_dict(service.get("detection")).get("sequence"))
    if not sequence and (_purpose(finding_type) or "").lower() != "attacksequence":
        return list(tactics), list(techniques), known
    sequence_tactics, sequence_techniques = _sequence_ttps(sequence, description, table)
    return _union(sequence_tactics, tactics), _union(sequence_techniques, techniques), known


def _sequence_ttps(sequence: dict, description: str | None, table: TacticTable) -> tuple[list[str], list[str]]:
    """The union of an attack sequence's tactics and techniques over its indicators and signals."""
    tactics: list[str] = []
    techniques: list[str] = []
    groups = [sequence.get("sequenceindicators")]
    groups += [signal.get("signalindicators") for signal in as_dicts(sequence.get("signals"))]
    for indicators in groups:
        tactics.extend(canonical_tactic(v) for v in _indicator_values(indicators, "ATTACK_TACTIC"))
        techniques.extend(_technique_ids(_indicator_values(indicators, "ATTACK_TECHNIQUE")))
    for signal in as_dicts(sequence.get("signals")):
        if (as_text(signal.get("type")) or "").upper() == "FINDING":
            signal_tactics, signal_techniques, _ = table.lookup(as_text(signal.get("name")))
            tactics.extend(signal_tactics)
            techniques.extend(signal_techniques)
    if not tactics and not techniques:
        tactics, techniques = _description_ttps(as_text(sequence.get("description")), description)
    return _union(tactics), _union(techniques)


def _indicator_values(indicators: Any, key: str) -> list[str]:
    values: list[str] = []
    for indicator in as_dicts(indicators):
        if (as_text(indicator.get("key")) or "").upper() == key:
            values.extend(text for text in map(as_text, as_list(indicator.get("values"))) if text)
    return values


def _technique_ids(values: list[str]) -> list[str]:
    """Technique ids from indicator values ("T1078.004 - Valid Accounts: ..."); a value naming no id is kept."""
    out: list[str] = []
    for value in values:
        ids = technique_ids(value)
        out.extend(ids or [value])
    return out


_DESCRIPTION_TACTICS = re.compile(r"tactics observed:\s*([^\n]*)", re.IGNORECASE)
_DESCRIPTION_TECHNIQUES = re.compile(r"techniques observed:\s*([^\n]*)", re.IGNORECASE)


def _description_ttps(*texts: str | None) -> tuple[list[str], list[str]]:
    """Tactics and techniques from the MITRE lines ("Tactics observed: ...") of the first text that has them."""
    for text in filter(None, texts):
        found = _DESCRIPTION_TACTICS.search(text)
        tactics = [canonical_tactic(part) for part in found.group(1).split(",") if part.strip()] if found else []
        found = _DESCRIPTION_TECHNIQUES.search(text)
        techniques = technique_ids(found.group(1)) if found else []
        if tactics or techniques:
            return tactics, techniques
    return [], []


def _union(*groups: Any) -> list[str]:
    out: dict[str, None] = {}
    for group in groups:
        for item in group:
            if item:
                out.setdefault(item, None)
    return list(out)


# ---------------------------------------------------------------------------------------------
# Inputs -> frames.

# a finding_entities row: finding_id, type, id, role, first_seen, origin
_EntityRow = tuple[str, str, str, str, datetime, str]


def parse(data: bytes, origin: str, config: Config) -> ParseResult:
    """One input on its own (tests, small jobs): its accounting with its frames attached."""
    frames, (result,) = parse_many([(data, origin)], config)
    result.frames = frames
    return result


def parse_many(inputs: list[tuple[bytes, str]], config: Config) -> tuple[dict[str, pl.DataFrame], list[ParseResult]]:
    """A batch of inputs: the batch's frames and each input's accounting (read = kept + skipped)."""
    table = tactic_table()
    results: list[ParseResult] = []
    rows: list[dict[str, Any]] = []
    entity_rows: list[_EntityRow] = []
    for data, origin in inputs:
        result = ParseResult(format=NAME)
        results.append(result)
        try:
            input_rows, input_entities = _parse_input(data, origin, config, table, result)
        except Exception as exc:  # a bug must not sink the batch: the input is reported, not parsed
            result.read, result.kept, result.skipped = 0, 0, Counter()
            result.error = f"cannot parse: {type(exc).__name__}: {exc}"
            continue
        rows.extend(input_rows)
        entity_rows.extend(input_entities)
    return _frames(rows, entity_rows), results


def _parse_input(
    data: bytes, origin: str, config: Config, table: TacticTable, result: ParseResult
) -> tuple[list[dict[str, Any]], list[_EntityRow]]:
    """One input's findings and entity rows, none when the input is an error; its accounting goes to `result`."""
    if not data.strip():
        result.warnings.append("empty input: no findings")
        return [], []
    input_rows: list[dict[str, Any]] = []
    input_entities: list[_EntityRow] = []
    samples = 0
    unknown: Counter = Counter()
    for record in _records(data, result):
        result.read += 1
        outcome = _finding(record, origin, config, table)
        if isinstance(outcome, str):
            result.skip(outcome)
            continue
        input_rows.append(outcome.row)
        first_seen = outcome.row["first_seen"]
        finding_id = outcome.row["finding_id"]
        input_entities.extend(
            (finding_id, kind, entity, role, first_seen, origin) for kind, entity, role in outcome.entities
        )
        samples += outcome.sample
        if outcome.unknown_purpose:
            unknown[outcome.unknown_purpose] += 1
    if result.error:
        return [], []
    result.kept = len(input_rows)
    _warn(result, samples, unknown)
    return input_rows, input_entities


def _warn(result: ParseResult, samples: int, unknown: Counter) -> None:
    if not result.read:
        result.warnings.append("no findings in input")
    if samples:
        result.warnings.append(f"{samples} sample finding(s) generated by GuardDuty: not real activity")
    for purpose, count in sorted(unknown.items()):
        result.warnings.append(
            f"{count} finding(s) of unknown purpose {purpose[:80]!r}: kept without a tactic "
            "(add it to sleuth/data/guardduty_tactics.csv)"
        )


def _frames(rows: list[dict[str, Any]], entity_rows: list[_EntityRow]) -> dict[str, pl.DataFrame]:
    findings = pl.DataFrame({name: [row[name] for row in rows] for name in schema.FINDINGS}, schema=schema.FINDINGS)
    entity_columns = list(schema.FINDING_ENTITIES)
    entities = pl.DataFrame(
        {name: [row[i] for row in entity_rows] for i, name in enumerate(entity_columns)},
        schema=schema.FINDING_ENTITIES,
    )
    return {
        "findings": schema.conform(findings, "findings"),
        "finding_entities": schema.conform(entities, "finding_entities"),
    }
