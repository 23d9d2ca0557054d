"""The exact path for CloudTrail inputs the fast read cannot take (pretty-printed, other key order,
broken records): orjson record by record, whatever the wrapper, each bad record skipped with its reason."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson
import polars as pl

from sleuth.config import Config
from sleuth.parsers.base import ParseResult
from sleuth.parsers.cloudtrail_raw import RAW_SCHEMA, SPLIT_FROM, SPLIT_TO, repair_nested_text

_OPENING = re.compile(rb'\A\s*(\{\s*"Records"\s*:\s*)?\[\s*')
_CLOSING = re.compile(rb"\s*\]\s*\}?\s*\Z")


@dataclass
class _Unreadable:
    """A record that is not JSON, standing in its place so that the records after it keep their positions."""

    reason: str


def exact_path(data: bytes, config: Config, result: ParseResult) -> pl.DataFrame:
    """Record by record with orjson; every record read is kept or skipped with its reason. The frame's
    `_index` is each kept record's position among all records read from `data`."""
    lines: list[bytes] = []
    positions: list[int] = []
    for position, record in enumerate(_records(data, result)):
        result.read += 1
        if isinstance(record, _Unreadable):
            result.skip(record.reason)
            continue
        line, reason = _clean_record(record, config)
        if reason:
            result.skip(reason)
        else:
            lines.append(line)
            positions.append(position)
    try:
        raw = pl.read_ndjson(b"\n".join(lines), schema=RAW_SCHEMA) if lines else pl.DataFrame(schema=RAW_SCHEMA)
        if len(raw) != len(lines):
            raise ValueError("record count mismatch")
    except Exception:  # polars raises several types for bad JSON
        return _read_one_by_one(lines, positions, result)
    raw = repair_nested_text(raw, lines.__getitem__)
    return raw.with_columns(pl.Series("_index", positions, dtype=pl.Int64))


def _records(data: bytes, result: ParseResult) -> list[Any]:
    """The records of a document or of JSON lines, whatever the wrapper."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return _json_lines(data, result, exc)
    return _unwrap(document)


def _json_lines(data: bytes, result: ParseResult, exc: Exception) -> list[Any]:
    """A document that does not parse whole: JSON lines, or a compact file with broken records."""
    lines = [line for line in data.split(b"\n") if line.strip()]
    if len(lines) < 2 and SPLIT_FROM in data:
        lines = data.replace(SPLIT_FROM, SPLIT_TO).split(b"\n")
        lines[0] = _OPENING.sub(b"", lines[0])
        lines[-1] = _CLOSING.sub(b"", lines[-1])
    elif len(lines) < 2:
        result.error = f"invalid JSON: {exc}"
        return []
    records: list[Any] = []
    for line in lines:
        try:
            records.extend(_unwrap(orjson.loads(line)))
        except orjson.JSONDecodeError as line_exc:
            records.append(_Unreadable("nesting too deep" if "depth" in str(line_exc) else "invalid JSON"))
    return records


def _unwrap(document: Any) -> list[Any]:
    if isinstance(document, list):
        return [record for item in document for record in _unwrap_one(item)]
    if isinstance(document, dict):
        for key in ("Records", "Events", "events"):
            if isinstance(document.get(key), list):
                return [record for item in document[key] for record in _unwrap_one(item)]
    return _unwrap_one(document)


def _unwrap_one(item: Any) -> list[Any]:
    """lookup-events entries carry the record as a JSON string; EventBridge carries it under detail."""
    if isinstance(item, dict):
        embedded = item.get("CloudTrailEvent")
        if isinstance(embedded, str):
            try:
                return [orjson.loads(embedded)]
            except orjson.JSONDecodeError:
                return [embedded]  # counted as skipped by _clean_record
        detail = item.get("detail")
        if isinstance(detail, dict) and "eventTime" not in item and "eventTime" in detail:
            return [detail]
    return [item]


def _clean_record(record: Any, config: Config) -> tuple[bytes, str | None]:
    """The record as one JSON line for polars, or the reason it is skipped."""
    if not isinstance(record, dict):
        return b"", "not a JSON object"
    if not record.get("eventTime"):
        return b"", "no eventTime"
    line = orjson.dumps(_coerce(record, RAW_SCHEMA))
    if len(line) > config.max_record_bytes:
        return b"", "record too large"
    return line, None


def _coerce(value: dict, fields: dict[str, pl.DataType]) -> dict:
    """Drop struct and list fields whose JSON type is wrong, so one odd record cannot sink a file."""
    out = dict(value)
    for name, dtype in fields.items():
        item = out.get(name)
        if item is None:
            continue
        if isinstance(dtype, pl.Struct):
            out[name] = _coerce(item, {f.name: f.dtype for f in dtype.fields}) if isinstance(item, dict) else None
        elif isinstance(dtype, pl.List):
            inner = {f.name: f.dtype for f in dtype.inner.fields}  # type: ignore[union-attr]
            out[name] = [_coerce(x, inner) for x in item if isinstance(x, dict)] if isinstance(item, list) else None
    return out


def _read_one_by_one(lines: list[bytes], positions: list[int], result: ParseResult) -> pl.DataFrame:
    """The records polars reads one at a time, each with its position (`_index`); the others skipped."""
    frames = []
    for line, position in zip(lines, positions, strict=True):
        try:
            frame = pl.read_ndjson(line, schema=RAW_SCHEMA)
        except Exception:
            result.skip("unreadable record")
            continue
        if len(frame) != 1:
            result.skip("unreadable record")
            continue
        frames.append(frame.with_columns(pl.lit(position, dtype=pl.Int64).alias("_index")))
    if frames:
        return pl.concat(frames)
    return pl.DataFrame(schema=RAW_SCHEMA).with_columns(pl.lit(None, dtype=pl.Int64).alias("_index"))
