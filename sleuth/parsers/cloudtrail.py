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
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import polars as pl

from sleuth import schema
from sleuth.config import Config
from sleuth.parsers.base import ParseResult

NAME = "cloudtrail"
FRAMES = ("events",)

_S = pl.String()
_IDENTITY = pl.Struct(
    {
        "type": _S,
        "principalId": _S,
        "arn": _S,
        "accountId": _S,
        "accessKeyId": _S,
        "userName": _S,
        "invokedBy": _S,
        "identityProvider": _S,
        "sessionContext": pl.Struct(
            {
                "sessionIssuer": pl.Struct({"type": _S, "principalId": _S, "arn": _S, "accountId": _S, "userName": _S}),
                "attributes": pl.Struct({"creationDate": _S, "mfaAuthenticated": _S}),
                "sourceIdentity": _S,
                "ec2RoleDelivery": _S,
            }
        ),
        "onBehalfOf": pl.Struct({"userId": _S, "identityStoreArn": _S}),
    }
)
# Only the fields sleuth uses: schema inference over nested CloudTrail is the slow part (handbook §7).
RAW_SCHEMA: dict[str, pl.DataType] = {
    "eventID": _S,
    "eventTime": _S,
    "eventSource": _S,
    "eventName": _S,
    "awsRegion": _S,
    "sourceIPAddress": _S,
    "userAgent": _S,
    "errorCode": _S,
    "errorMessage": _S,
    "eventType": _S,
    "eventCategory": _S,
    "readOnly": _S,
    "recipientAccountId": _S,
    "requestID": _S,
    "userIdentity": _IDENTITY,
    "resources": pl.List(pl.Struct({"ARN": _S, "accountId": _S, "type": _S})),
    "requestParameters": _S,
    "responseElements": _S,
    "additionalEventData": _S,
}

_RECORD_START = b'{"eventVersion"'
_SPLIT_FROM = b'},{"eventVersion"'
_SPLIT_TO = b'}\n{"eventVersion"'
_LINE_START = b'\n{"eventVersion"'
_WRAPPER = re.compile(rb'\A\s*\{\s*"Records"\s*:\s*\[')
_OPENING = re.compile(rb'\A\s*(\{\s*"Records"\s*:\s*)?\[\s*')
_CLOSING = re.compile(rb"\s*\]\s*\}?\s*\Z")
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


def parse_many(inputs: list[tuple[bytes, str]], config: Config) -> tuple[dict[str, pl.DataFrame], list[ParseResult]]:
    """Several inputs at once: one polars read and one normalisation for all compact files of a batch,
    which costs a third of doing it file by file. Returns the batch's frames and each input's accounting."""
    results: list[ParseResult] = []
    parts: list[pl.DataFrame] = []
    fast: list[tuple[bytes, int, bytes, str, ParseResult]] = []
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
                fast.append((*fast_form, stripped, origin, result))
                continue
            parts.append(_with_origin(_exact_path(stripped, config, result), origin))
    parts.extend(_read_fast(fast, config))
    raw = pl.concat(parts, how="vertical") if parts else _with_origin(pl.DataFrame(schema=RAW_SCHEMA), "")
    by_origin = {origin: result for (_, origin), result in zip(inputs, results, strict=True)}
    events = normalize(raw, by_origin, config.max_json_depth)
    return {"events": events}, results


def _with_origin(raw: pl.DataFrame, origin: str) -> pl.DataFrame:
    """`raw` with its input and each record's position in it: `raw`'s own `_index` (the exact path, which
    skips records), else 0..n-1 (a fast read, which keeps every record)."""
    index = pl.col("_index") if "_index" in raw.columns else pl.int_range(pl.len(), dtype=pl.Int64)
    return raw.select(pl.exclude("_index"), pl.lit(origin).alias("_origin"), index.cast(pl.Int64).alias("_index"))


_TEXT_SCHEMA = {name: pl.String() for name in RAW_SCHEMA}


def _lines_within(blob: bytes, limit: int) -> bool:
    return all(len(line) <= limit for line in blob.split(b"\n"))


def _read_fast(fast: list, config: Config) -> list[pl.DataFrame]:
    """All compact inputs in one read (nested fields as text, then decoded in one pass); if anything in
    the batch does not fit, input by input, and an input that still fails takes the exact path."""
    fast = [item for item in fast if item[1]]
    if not fast:
        return []
    try:
        raw = pl.read_ndjson(b"\n".join(blob for blob, *_ in fast), schema=_TEXT_SCHEMA)
        if len(raw) != sum(count for _, count, *_ in fast):
            raise ValueError("record count mismatch")
        raw = raw.with_columns(
            pl.col("userIdentity").str.json_decode(RAW_SCHEMA["userIdentity"]),
            pl.col("resources").str.json_decode(RAW_SCHEMA["resources"]),
        )
    except Exception:  # one odd record anywhere: sort it out input by input
        return [_one_input(blob, count, data, origin, config, result) for blob, count, data, origin, result in fast]
    raw = _repair_nested_text(raw, _batch_lines([(blob, count) for blob, count, *_ in fast]))
    counts = pl.lit(pl.Series([count for _, count, *_ in fast], dtype=pl.Int64))
    origins = pl.lit(pl.Series([origin for *_, origin, _ in fast], dtype=pl.String))
    rows = pl.select(
        origins.repeat_by(counts).explode().alias("_origin"), pl.int_ranges(0, counts).explode().alias("_index")
    )
    return [pl.concat([raw, rows], how="horizontal")]


_NESTED_FIELDS = ("requestParameters", "responseElements", "additionalEventData")


def _repair_nested_text(raw: pl.DataFrame, line_of: Callable[[int], bytes]) -> pl.DataFrame:
    """Re-serialise nested fields that polars wrote as invalid JSON (it does not escape quotes inside
    object keys: {"k\\"q": 1} becomes {"k"q": 1}), from the record's own line, with orjson.

    Checking costs one vectorised JSON parse per text; the repair touches only the rows that need it."""
    broken = [(pl.col(f).is_not_null() & pl.col(f).str.json_path_match("$").is_null()) for f in _NESTED_FIELDS]
    rows = raw.select(pl.any_horizontal(broken).arg_true()).to_series().to_list()
    for row in rows:
        try:
            record = orjson.loads(line_of(row))
        except (orjson.JSONDecodeError, IndexError, TypeError):
            continue
        for field in _NESTED_FIELDS:
            value = record.get(field) if isinstance(record, dict) else None
            if value is None or isinstance(value, str):
                continue
            try:
                text = orjson.dumps(value).decode()
            except orjson.JSONEncodeError:  # deeper than orjson writes: left as polars wrote it
                continue
            raw = raw.with_columns(raw[field].scatter(row, text))
    return raw


def _batch_lines(inputs: list[tuple[bytes, int]]) -> Callable[[int], bytes]:
    """The JSON line of row `i` of a batch read from these (blob, record count) inputs."""
    starts = list(itertools.accumulate((count for _, count in inputs), initial=0))
    split: dict[int, list[bytes]] = {}

    def line_of(row: int) -> bytes:
        which = bisect.bisect_right(starts, row) - 1
        if which not in split:
            split[which] = [line for line in inputs[which][0].split(b"\n") if line.strip()]
        return split[which][row - starts[which]]

    return line_of


def _one_input(blob: bytes, count: int, data: bytes, origin: str, config: Config, result: ParseResult) -> pl.DataFrame:
    raw = _read_blob(blob, count)
    if raw is not None:
        raw = _repair_nested_text(raw, _batch_lines([(blob, count)]))
    if raw is None:
        result.read = 0
        raw = _exact_path(data, config, result)
    return _with_origin(raw, origin)


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
    blob = body.replace(_SPLIT_FROM, _SPLIT_TO)
    # Every record starts a line with {"eventVersion"; polars' row count is checked against this.
    return blob, blob.count(_LINE_START) + 1


def _read_blob(blob: bytes, count: int) -> pl.DataFrame | None:
    """Parse JSON lines with the explicit schema, or None when they are not `count` clean records."""
    if not count:
        return pl.DataFrame(schema=RAW_SCHEMA)
    try:
        raw = pl.read_ndjson(blob, schema=RAW_SCHEMA)
    except Exception:  # polars raises several types for bad JSON; the exact path sorts it out
        return None
    return raw if len(raw) == count else None


@dataclass
class _Unreadable:
    """A record that is not JSON, standing in its place so that the records after it keep their positions."""

    reason: str


def _exact_path(data: bytes, config: Config, result: ParseResult) -> pl.DataFrame:
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
    except Exception:
        return _read_one_by_one(lines, positions, result)
    raw = _repair_nested_text(raw, lines.__getitem__)
    return raw.with_columns(pl.Series("_index", positions, dtype=pl.Int64))


def _records(data: bytes, result: ParseResult) -> list[Any]:
    """The records of a document or of JSON lines, whatever the wrapper."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return _json_lines(data, result, exc)
    return _unwrap(document, result)


def _json_lines(data: bytes, result: ParseResult, exc: Exception) -> list[Any]:
    """A document that does not parse whole: JSON lines, or a compact file with broken records."""
    lines = [line for line in data.split(b"\n") if line.strip()]
    if len(lines) < 2 and _SPLIT_FROM in data:
        lines = data.replace(_SPLIT_FROM, _SPLIT_TO).split(b"\n")
        lines[0] = _OPENING.sub(b"", lines[0])
        lines[-1] = _CLOSING.sub(b"", lines[-1])
    elif len(lines) < 2:
        result.error = f"invalid JSON: {exc}"
        return []
    records: list[Any] = []
    for line in lines:
        try:
            records.extend(_unwrap(orjson.loads(line), result))
        except orjson.JSONDecodeError as line_exc:
            records.append(_Unreadable("nesting too deep" if "depth" in str(line_exc) else "invalid JSON"))
    return records


def _unwrap(document: Any, result: ParseResult) -> list[Any]:
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
    if not isinstance(record, dict):
        return b"", "not a JSON object"
    if not record.get("eventTime"):
        return b"", "no eventTime"
    record = _coerce(record, RAW_SCHEMA)
    line = orjson.dumps(record)
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


# ---------------------------------------------------------------------------------------------
# Normalisation: raw CloudTrail columns -> the canonical events frame.

_TIME_FORMATS = ("%Y-%m-%dT%H:%M:%S%.fZ", "%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S")


def _time(text: pl.Expr, formats: tuple[str, ...] = _TIME_FORMATS) -> pl.Expr:
    return pl.coalesce([text.str.to_datetime(fmt, strict=False, time_unit="us", time_zone="UTC") for fmt in formats])


def _parse_times(events: pl.DataFrame) -> pl.DataFrame:
    """CloudTrail's own format in one pass; the other accepted forms only for the rows it missed."""
    text = pl.col("_time_text")
    events = events.with_columns(_time(text, _TIME_FORMATS[:1]).alias("time"))
    if events.select((pl.col("time").is_null() & text.is_not_null()).any()).item():
        events = events.with_columns(pl.coalesce(pl.col("time"), _time(text.str.strip_chars())).alias("time"))
    return events.drop("_time_text")


def _blank_to_null(expr: pl.Expr) -> pl.Expr:
    return pl.when(expr.str.len_bytes() > 0).then(expr)


def _principal(identity: pl.Expr) -> pl.Expr:
    """The stable identity behind a record (handbook §3), by userIdentity.type.

    A role session without its sessionIssuer gets the role from its ARN later, in `_fill_rare`."""
    kind = identity.struct.field("type")
    arn = _blank_to_null(identity.struct.field("arn"))
    issuer_arn = identity.struct.field("sessionContext").struct.field("sessionIssuer").struct.field("arn")
    principal_id = _blank_to_null(identity.struct.field("principalId"))
    account = _blank_to_null(identity.struct.field("accountId"))
    behalf = identity.struct.field("onBehalfOf")
    identity_center = behalf.struct.field("identityStoreArn") + "/user/" + behalf.struct.field("userId")
    return (
        pl.when(kind == "AssumedRole")
        .then(_blank_to_null(issuer_arn))
        .when(kind == "AWSService")
        .then(identity.struct.field("invokedBy"))
        .when(kind == "AWSAccount")
        .then(pl.coalesce(account, principal_id))
        .when(kind == "IdentityCenterUser")
        .then(pl.coalesce(identity_center, principal_id))
        .when(kind.is_in(["SAMLUser", "WebIdentityUser"]))
        .then(pl.coalesce(_blank_to_null(identity.struct.field("userName")), principal_id))
        .otherwise(pl.coalesce(arn, principal_id, _blank_to_null(identity.struct.field("invokedBy"))))
    )


def _session(identity: pl.Expr) -> pl.Expr:
    """`<rolePrincipalId>:<sessionName>` for role and federated sessions (see also `_fill_rare`)."""
    kind = identity.struct.field("type")
    principal_id = identity.struct.field("principalId")
    return pl.when(kind.is_in(["AssumedRole", "FederatedUser"]) & principal_id.str.contains(":", literal=True)).then(
        principal_id
    )


def _user_name(identity: pl.Expr) -> pl.Expr:
    """The user's name; for a role session the role's name (a federated user's comes in `_fill_rare`)."""
    issuer = identity.struct.field("sessionContext").struct.field("sessionIssuer")
    return pl.coalesce(
        _blank_to_null(identity.struct.field("userName")),
        pl.when(identity.struct.field("type") != "FederatedUser").then(_blank_to_null(issuer.struct.field("userName"))),
    )


_SESSION_KINDS = ["AssumedRole", "FederatedUser"]
_LAST_SEGMENT = r"/([^/]+)$"


def _fill_rare(events: pl.DataFrame) -> pl.DataFrame:
    """Values that need a regular expression, computed only on the few rows that need them."""
    kind, arn = pl.col("actor_type"), pl.col("actor_arn")
    rules = [
        (
            "principal",
            (kind == "AssumedRole") & pl.col("principal").is_null() & arn.is_not_null(),
            arn.str.replace(r"^arn:([^:]+):sts::(\d+):assumed-role/([^/]+)/.*$", "arn:$1:iam::$2:role/$3"),
        ),
        (
            "session",
            kind.is_in(_SESSION_KINDS) & pl.col("session").is_null(),
            pl.col("_issuer_id") + ":" + arn.str.extract(_LAST_SEGMENT, 1),
        ),
        ("user_name", (kind == "FederatedUser") & pl.col("user_name").is_null(), arn.str.extract(_LAST_SEGMENT, 1)),
    ]
    for target, condition, value in rules:
        rows = events.select(condition.fill_null(False).arg_true()).to_series()
        if len(rows):
            values = events[rows].select(value).to_series()
            events = events.with_columns(events[target].scatter(rows, values))
    return events.drop("_issuer_id")


def _mfa() -> pl.Expr:
    """MFA on the session, or on a console sign-in (additionalEventData is polars-serialised JSON text)."""
    attributes = pl.col("userIdentity").struct.field("sessionContext").struct.field("attributes")
    session_mfa = attributes.struct.field("mfaAuthenticated") == "true"
    additional = pl.col("additionalEventData")
    console_mfa = pl.when(additional.str.contains('"MFAUsed"', literal=True)).then(
        additional.str.contains('"MFAUsed": "Yes"', literal=True)
    )
    return (
        pl.when(session_mfa | console_mfa).then(True).when(session_mfa.is_not_null()).then(False).otherwise(console_mfa)
    )


def normalize(raw: pl.DataFrame, results: dict[str, ParseResult], max_depth: int = 64) -> pl.DataFrame:
    """Raw CloudTrail columns (with `_origin`, `_index`) to the canonical `events` frame.

    Records without a usable time, or nested deeper than `max_depth`, are skipped and counted against
    their input in `results`; every input's `kept` is set."""
    identity = pl.col("userIdentity")
    events = raw.select(
        _blank_to_null(pl.col("eventID")).alias("event_id"),
        pl.col("eventTime").alias("_time_text"),
        pl.coalesce(_blank_to_null(pl.col("recipientAccountId")), identity.struct.field("accountId")).alias("account"),
        pl.col("awsRegion").alias("region"),
        pl.col("eventSource").alias("service"),
        pl.col("eventName").alias("action"),
        pl.col("eventType").alias("event_type"),
        pl.col("eventCategory").alias("event_category"),
        (pl.col("readOnly") == "true").alias("read_only"),
        _blank_to_null(pl.col("errorCode")).alias("error_code"),
        _blank_to_null(pl.col("errorMessage")).alias("error_message"),
        identity.struct.field("type").alias("actor_type"),
        _blank_to_null(identity.struct.field("arn")).alias("actor_arn"),
        _principal(identity).alias("principal"),
        _session(identity).alias("session"),
        _blank_to_null(identity.struct.field("accessKeyId")).alias("access_key"),
        _user_name(identity).alias("user_name"),
        pl.col("sourceIPAddress").alias("src_ip"),
        pl.col("userAgent").alias("user_agent"),
        _mfa().alias("mfa"),
        pl.col("resources").list.eval(pl.element().struct.field("ARN")).list.drop_nulls().alias("resources"),
        pl.col("requestParameters").alias("request"),
        pl.col("responseElements").alias("response"),
        pl.col("additionalEventData").alias("additional"),
        pl.col("requestID").alias("request_id"),
        pl.col("_origin").alias("origin"),
        pl.col("_index").alias("origin_index"),
        pl.col("eventTime").is_null().alias("_no_time"),
        identity.struct.field("sessionContext")
        .struct.field("sessionIssuer")
        .struct.field("principalId")
        .alias("_issuer_id"),
    )
    events = _fill_rare(_parse_times(events))
    unusable = events.filter(pl.col("time").is_null())
    if len(unusable):
        counts = unusable.group_by("origin").agg(pl.len(), pl.col("_no_time").sum())
        for origin, total, missing in counts.iter_rows():
            results[origin].skip("no eventTime", int(missing))
            results[origin].skip("unparseable eventTime", int(total - missing))
        events = events.filter(pl.col("time").is_not_null())
    events = _drop_too_deep(events.drop("_no_time"), results, max_depth)
    for origin, kept in events.group_by("origin").len().iter_rows():
        results[origin].kept = kept
    return schema.conform(events, "events").with_columns(schema.content_hash())


_NESTED_TEXT = ("request", "response", "additional")


def _drop_too_deep(events: pl.DataFrame, results: dict[str, ParseResult], max_depth: int) -> pl.DataFrame:
    """Skip records whose nested parameters are deeper than `max_depth` (handbook §6).

    Depth d needs at least d opening brackets, so only texts with that many are measured: a cheap
    vectorised count spares the Python measurement for nearly every record."""
    brackets = [pl.col(c).str.count_matches("{", literal=True) + pl.col(c).str.count_matches("[", literal=True)
                for c in _NESTED_TEXT]  # fmt: skip
    candidates = events.select(pl.any_horizontal([(b >= max_depth).fill_null(False) for b in brackets]).arg_true())
    rows = candidates.to_series().to_list()
    too_deep = [row for row in rows if any(_depth(events[c][row]) > max_depth for c in _NESTED_TEXT)]
    if not too_deep:
        return events
    skipped = events[too_deep]
    for origin, count in skipped.group_by("origin").len().iter_rows():
        results[origin].skip("nesting too deep", count)
    return events.with_row_index("_row").filter(~pl.col("_row").is_in(too_deep)).drop("_row")


def _depth(text: str | None) -> int:
    """Nesting depth of a JSON text (0 for a scalar)."""
    if not text:
        return 0
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:  # past orjson's own limit, or text polars wrote loosely: count brackets
        return _bracket_depth(text)
    depth, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            depth = max(depth, level)
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return depth


def _bracket_depth(text: str) -> int:
    """Depth by brackets outside strings (a string is "..." with backslash escapes)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "}]":
            depth -= 1
    return deepest
