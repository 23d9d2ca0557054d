"""What both CloudTrail readers (the fast path in `cloudtrail`, the exact path in `cloudtrail_exact`)
share: the raw frame's schema, the record separator of compact files, and the repair of nested text
that polars writes loosely."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import polars as pl

_S = pl.String()
_IDENTITY = pl.Struct(
    {
        "type": _S,
        "principalId": _S,
        "arn": _S,
        "accountId": _S,
        "accessKeyId": _S,
        "accesskeyid": _S,  # hand-written samples (and some converters) spell it in lower case
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

# Between two records of a compact file; replacing one with the other makes the file JSON lines.
SPLIT_FROM = b'},{"eventVersion"'
SPLIT_TO = b'}\n{"eventVersion"'

_NESTED_FIELDS = ("requestParameters", "responseElements", "additionalEventData")


def repair_nested_text(raw: pl.DataFrame, line_of: Callable[[int], bytes]) -> pl.DataFrame:
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
        if not isinstance(record, dict):
            continue
        for field in _NESTED_FIELDS:
            value = record.get(field)
            if value is None or isinstance(value, str):
                continue
            try:
                text = orjson.dumps(value).decode()
            except orjson.JSONEncodeError:  # deeper than orjson writes: left as polars wrote it
                continue
            raw = raw.with_columns(raw[field].scatter(row, text))
    return raw
