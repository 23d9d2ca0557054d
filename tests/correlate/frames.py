"""Small canonical frames for the correlate tests: events, flows and a Dataset built from them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from itertools import count

import polars as pl

from sleuth import schema
from sleuth.dataset import Dataset

ACCOUNT = "123456789012"
T0 = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)
_ids = count(1)


def at(hours: float = 0, minutes: float = 0) -> datetime:
    return T0 + timedelta(hours=hours, minutes=minutes)


def event(
    action: str = "ListBuckets",
    service: str = "s3.amazonaws.com",
    *,
    time: datetime = T0,
    principal: str | None = f"arn:aws:iam::{ACCOUNT}:user/alice",
    actor_type: str | None = None,
    session: str | None = None,
    access_key: str | None = None,
    src_ip: str | None = "203.0.113.10",
    user_agent: str | None = "aws-cli/2.15.0",
    error_code: str | None = None,
    resources: list[str] | None = None,
    request: dict | None = None,
    response: dict | None = None,
    account: str = ACCOUNT,
) -> dict:
    """One canonical event; userIdentity.type follows the principal's form unless given."""
    if actor_type is None and principal:
        actor_type = "AssumedRole" if ":role/" in principal else "Root" if principal.endswith(":root") else "IAMUser"
    return {
        "event_id": f"e-{next(_ids):06d}",
        "time": time,
        "account": account,
        "region": "us-east-1",
        "service": service,
        "action": action,
        "error_code": error_code,
        "actor_type": actor_type,
        "principal": principal,
        "session": session,
        "access_key": access_key,
        "src_ip": src_ip,
        "user_agent": user_agent,
        "resources": resources or [],
        "request": json.dumps(request) if request is not None else None,
        "response": json.dumps(response) if response is not None else None,
    }


def events_frame(rows: list[dict]) -> pl.DataFrame:
    return schema.conform(pl.DataFrame(rows, infer_schema_length=None), "events")


def flow(src: str, dst: str, src_port: int, dst_port: int, nbytes: int, *, time: datetime = T0, **extra) -> dict:
    return {
        "start": time, "end": time + timedelta(seconds=30), "account": ACCOUNT, "interface_id": "eni-0aaa",
        "src_addr": src, "dst_addr": dst, "src_port": src_port, "dst_port": dst_port, "protocol": 6,
        "packets": 10, "bytes": nbytes, "action": "ACCEPT", "log_status": "OK", **extra,
    }  # fmt: skip


def dataset(events: list[dict], flows: list[dict] | None = None) -> Dataset:
    frames = {name: schema.empty(name).lazy() for name in schema.FRAMES}
    frames["events"] = events_frame(events).lazy()
    if flows:
        frames["flows"] = schema.conform(pl.DataFrame(flows), "flows").lazy()
    return Dataset(frames["events"], frames)
