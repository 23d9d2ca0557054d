"""Synthetic canonical events for the detection tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import polars as pl

from sleuth import schema

ACCOUNT = "123456789012"
OTHER_ACCOUNT = "999988887777"
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def event(action: str, service: str = "iam", request: Any = None, **fields: Any) -> dict:
    """One canonical event; `actor` is "user/alice", "root", "role/name" or a service host name."""
    actor = fields.pop("actor", "user/alice")
    account = fields.pop("account", ACCOUNT)
    row: dict[str, Any] = dict.fromkeys(schema.EVENTS)
    row.update(
        event_id=f"ev-{action}-{len(str(request))}",
        time=T0,
        account=account,
        region="us-east-1",
        service=f"{service}.amazonaws.com",
        action=action,
        event_type="AwsApiCall",
        read_only=False,
        src_ip="203.0.113.5",
        user_agent="aws-cli/2.15.0",
        access_key="AKIAEXAMPLE000000001",
        resources=[],
        origin="test",
        origin_index=0,
    )
    if actor == "root":
        root = f"arn:aws:iam::{account}:root"
        row.update(actor_type="Root", actor_arn=root, principal=root)
    elif actor.startswith("user/"):
        arn = f"arn:aws:iam::{account}:{actor}"
        row.update(actor_type="IAMUser", actor_arn=arn, principal=arn, user_name=actor.split("/", 1)[1])
    elif actor.startswith("role/"):
        name = actor.split("/", 1)[1]
        row.update(
            actor_type="AssumedRole",
            actor_arn=f"arn:aws:sts::{account}:assumed-role/{name}/session-1",
            principal=f"arn:aws:iam::{account}:{actor}",
            session="AROAEXAMPLEROLE00001:session-1",
            user_name=name,
            access_key="ASIAEXAMPLE000000001",
        )
    else:  # an AWS service
        row.update(actor_type="AWSService", principal=actor, src_ip=actor, user_agent=actor, access_key=None)
    if request is not None:
        row["request"] = request if isinstance(request, str) else orjson.dumps(request).decode()
    for name in ("response", "additional"):
        if name in fields and fields[name] is not None and not isinstance(fields[name], str):
            fields[name] = orjson.dumps(fields[name]).decode()
    row.update(fields)
    return row


def frame(*rows: dict) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=schema.EVENTS)
