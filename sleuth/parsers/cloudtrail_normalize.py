"""Raw CloudTrail columns (`cloudtrail_raw.RAW_SCHEMA`, with `_origin` and `_index`) to the canonical
`events` frame: who acted (handbook §3), when, and the records skipped for an unusable time or for
nesting too deep (handbook §6)."""

from __future__ import annotations

import orjson
import polars as pl

from sleuth import schema
from sleuth.parsers.base import ParseResult


def normalize(raw: pl.DataFrame, results: dict[str, ParseResult], max_depth: int) -> pl.DataFrame:
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
        pl.coalesce(
            _blank_to_null(identity.struct.field("accessKeyId")), _blank_to_null(identity.struct.field("accesskeyid"))
        ).alias("access_key"),
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


_SESSION_KINDS = ["AssumedRole", "FederatedUser"]


def _session(identity: pl.Expr) -> pl.Expr:
    """`<rolePrincipalId>:<sessionName>` for role and federated sessions (see also `_fill_rare`)."""
    kind = identity.struct.field("type")
    principal_id = identity.struct.field("principalId")
    return pl.when(kind.is_in(_SESSION_KINDS) & principal_id.str.contains(":", literal=True)).then(principal_id)


def _user_name(identity: pl.Expr) -> pl.Expr:
    """The user's name; for a role session the role's name (a federated user's comes in `_fill_rare`)."""
    issuer = identity.struct.field("sessionContext").struct.field("sessionIssuer")
    return pl.coalesce(
        _blank_to_null(identity.struct.field("userName")),
        pl.when(identity.struct.field("type") != "FederatedUser").then(_blank_to_null(issuer.struct.field("userName"))),
    )


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
