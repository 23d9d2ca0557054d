"""CloudTrail records in every shape AWS hands them out, into the `events` frame.

Shapes (handbook §2): S3 delivery files `{"Records": [...]}`, bare arrays, JSON lines (CloudWatch Logs
exports, EventBridge events carrying a record under `detail`), `aws cloudtrail lookup-events` output
(each record a JSON *string* under `CloudTrailEvent`), console Event history downloads, and single
records. Digest files are recognised and ignored.

Speed: CloudTrail writes S3 files as one compact line whose records each begin with
`{"eventVersion"`. In valid JSON that byte sequence after `},` can only start a new object, so
replacing `},{"eventVersion"` with a newline turns the file into JSON lines in one C-speed pass, and
polars parses those with an explicit schema, keeping the nested parameters as JSON text. Any file
that does not fit (pretty-printed, other key order, broken records) takes the exact path: orjson per
record, each bad record skipped with its reason.

The exact path is in `cloudtrail_exact`, the raw schema both paths read into in `cloudtrail_raw`, and
the raw columns become the `events` frame in `cloudtrail_normalize`.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Callable
from typing import NamedTuple

import polars as pl

from sleuth.config import Config
from sleuth.parsers.base import ParseResult
from sleuth.parsers.cloudtrail_exact import exact_path
from sleuth.parsers.cloudtrail_normalize import normalize
from sleuth.parsers.cloudtrail_raw import RAW_SCHEMA, SPLIT_FROM, SPLIT_TO, repair_nested_text

NAME = "cloudtrail"
FRAMES = ("events",)

_RECORD_START = b'{"eventVersion"'
_LINE_START = b'\n{"eventVersion"'
_WRAPPER = re.compile(rb'\A\s*\{\s*"Records"\s*:\s*\[')
_DIGEST_KEYS = (b'"digestStartTime"', b'"digestPublicKeyFingerprint"')
_SNIFF_KEYS = (b'"eventVersion"', b'"CloudTrailEvent"', b'"Records"')


def sniff(head: bytes) -> bool:
    start = head.lstrip()[:1]
    if start not in (b"{", b"["):
        return False
    if any(key in head for key in _SNIFF_KEYS + _DIGEST_KEYS):
        return True
    return b'"eventTime"' in head and b'"eventSource"' in head


def parse(data: bytes, origin: str, config: Config) -> ParseResult:
    """One input on its own (tests, small jobs): its accounting with its events attached."""
    frames, (result,) = parse_many([(data, origin)], config)
    result.frames = frames
    return result


class _Compact(NamedTuple):
    """An input in the compact form as JSON lines (`blob`, `count` records), with what its exact path needs."""

    blob: bytes
    count: int
    data: bytes
    origin: str
    result: ParseResult


def parse_many(inputs: list[tuple[bytes, str]], config: Config) -> tuple[dict[str, pl.DataFrame], list[ParseResult]]:
    """Several inputs at once: one polars read and one normalisation for all compact files of a batch,
    which costs a third of doing it file by file. Returns the batch's frames and each input's accounting."""
    results: list[ParseResult] = []
    parts: list[pl.DataFrame] = []
    compact: list[_Compact] = []
    for data, origin in inputs:
        result = ParseResult(format=NAME)
        results.append(result)
        stripped = data.strip()
        if not stripped:
            result.warnings.append("empty input: no records")
        elif stripped.startswith(b"{") and any(key in stripped[:4096] for key in _DIGEST_KEYS):
            result.ignored = "CloudTrail digest file"
        else:
            fast_form = _fast_blob(stripped)
            # A record over the size limit can only be in an input over the limit: look only there.
            if fast_form is not None and (
                len(stripped) <= config.max_record_bytes or _lines_within(fast_form[0], config.max_record_bytes)
            ):
                result.read = fast_form[1]
                compact.append(_Compact(*fast_form, stripped, origin, result))
                continue
            parts.append(_with_origin(exact_path(stripped, config, result), origin))
    parts.extend(_read_fast(compact, config))
    raw = pl.concat(parts, how="vertical") if parts else _with_origin(pl.DataFrame(schema=RAW_SCHEMA), "")
    by_origin = {origin: result for (_, origin), result in zip(inputs, results, strict=True)}
    events = normalize(raw, by_origin, config.max_json_depth)
    return {"events": events}, results


def _with_origin(raw: pl.DataFrame, origin: str) -> pl.DataFrame:
    """`raw` with its input and each record's position in it: `raw`'s own `_index` (the exact path, which
    skips records), else 0..n-1 (a fast read, which keeps every record)."""
    index = pl.col("_index") if "_index" in raw.columns else pl.int_range(pl.len(), dtype=pl.Int64)
    return raw.select(pl.exclude("_index"), pl.lit(origin).alias("_origin"), index.cast(pl.Int64).alias("_index"))


def _fast_blob(data: bytes) -> tuple[bytes, int] | None:
    """A compact CloudTrail file as JSON lines plus its record count, or None if it is not one."""
    match = _WRAPPER.match(data)
    if match:
        body = data[match.end() :]
        end = body.rfind(b"]")
        body = body[:end].strip() if end >= 0 else body
    elif data.startswith(b"["):
        body = data[1 : data.rfind(b"]")].strip()
    elif data.startswith(_RECORD_START):
        body = data  # JSON lines, or one record
    else:
        return None
    if not body:
        return b"", 0
    if not body.startswith(_RECORD_START):
        return None
    blob = body.replace(SPLIT_FROM, SPLIT_TO)
    # Every record starts a line with {"eventVersion"; polars' row count is checked against this.
    return blob, blob.count(_LINE_START) + 1


def _lines_within(blob: bytes, limit: int) -> bool:
    return all(len(line) <= limit for line in blob.split(b"\n"))


_TEXT_SCHEMA = {name: pl.String() for name in RAW_SCHEMA}


def _read_fast(compact: list[_Compact], config: Config) -> list[pl.DataFrame]:
    """All compact inputs in one read (nested fields as text, then decoded in one pass); if anything in
    the batch does not fit, input by input, and an input that still fails takes the exact path."""
    compact = [item for item in compact if item.count]
    if not compact:
        return []
    try:
        raw = pl.read_ndjson(b"\n".join(item.blob for item in compact), schema=_TEXT_SCHEMA)
        if len(raw) != sum(item.count for item in compact):
            raise ValueError("record count mismatch")
        raw = raw.with_columns(
            pl.col("userIdentity").str.json_decode(RAW_SCHEMA["userIdentity"]),
            pl.col("resources").str.json_decode(RAW_SCHEMA["resources"]),
        )
    except Exception:  # one odd record anywhere: sort it out input by input
        return [_one_input(item, config) for item in compact]
    raw = repair_nested_text(raw, _batch_lines(compact))
    counts = pl.lit(pl.Series([item.count for item in compact], dtype=pl.Int64))
    origins = pl.lit(pl.Series([item.origin for item in compact], dtype=pl.String))
    rows = pl.select(
        origins.repeat_by(counts).explode().alias("_origin"), pl.int_ranges(0, counts).explode().alias("_index")
    )
    return [pl.concat([raw, rows], how="horizontal")]


def _batch_lines(compact: list[_Compact]) -> Callable[[int], bytes]:
    """The JSON line of row `i` of a batch read from these inputs."""
    starts = list(itertools.accumulate((item.count for item in compact), initial=0))
    split: dict[int, list[bytes]] = {}

    def line_of(row: int) -> bytes:
        which = bisect.bisect_right(starts, row) - 1
        if which not in split:
            split[which] = [line for line in compact[which].blob.split(b"\n") if line.strip()]
        return split[which][row - starts[which]]

    return line_of


def _one_input(item: _Compact, config: Config) -> pl.DataFrame:
    """One input of a batch that failed to read as a whole: on its own, else by the exact path."""
    raw = _read_blob(item.blob, item.count)
    if raw is None:
        item.result.read = 0  # the exact path counts the records it reads
        return _with_origin(exact_path(item.data, config, item.result), item.origin)
    return _with_origin(repair_nested_text(raw, _batch_lines([item])), item.origin)


def _read_blob(blob: bytes, count: int) -> pl.DataFrame | None:
    """Parse JSON lines with the explicit schema, or None when they are not `count` clean records."""
    try:
        raw = pl.read_ndjson(blob, schema=RAW_SCHEMA)
    except Exception:  # polars raises several types for bad JSON; the exact path sorts it out
        return None
    return raw if len(raw) == count else None
