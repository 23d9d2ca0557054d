"""The canonical frames (handbook §3): column names and polars dtypes, in one place.

Every parser produces these columns in this order and every analysis reads only them. Raw nested
JSON that analysis rarely needs is kept as JSON text (`request`, `response`, `additional`).
"""

from __future__ import annotations

import polars as pl

TIME = pl.Datetime("us", "UTC")

EVENTS: dict[str, pl.DataType] = {
    "event_id": pl.String(),
    "time": TIME,
    "account": pl.String(),
    "region": pl.String(),
    "service": pl.String(),  # eventSource, e.g. iam.amazonaws.com
    "action": pl.String(),  # eventName
    "event_type": pl.String(),
    "event_category": pl.String(),
    "read_only": pl.Boolean(),
    "error_code": pl.String(),
    "error_message": pl.String(),
    "actor_type": pl.String(),  # userIdentity.type
    "actor_arn": pl.String(),
    "principal": pl.String(),  # stable identity: user ARN, role ARN for sessions, root ARN, ...
    "session": pl.String(),  # <rolePrincipalId>:<sessionName> for role and federated sessions
    "access_key": pl.String(),
    "user_name": pl.String(),
    "src_ip": pl.String(),  # an IP, or a service host such as ec2.amazonaws.com, or "AWS Internal"
    "user_agent": pl.String(),
    "mfa": pl.Boolean(),
    "resources": pl.List(pl.String()),  # ARNs (or names) the event touched
    "request": pl.String(),  # requestParameters as JSON text
    "response": pl.String(),  # responseElements as JSON text
    "additional": pl.String(),  # additionalEventData as JSON text
    "request_id": pl.String(),
    "origin": pl.String(),  # the input the record came from
    "origin_index": pl.Int64(),  # its position in that input
    "content_hash": pl.UInt64(),  # identity of the record's content, for the duplicate rule
}

FLOWS: dict[str, pl.DataType] = {
    "start": TIME,
    "end": TIME,
    "account": pl.String(),
    "region": pl.String(),
    "interface_id": pl.String(),
    "instance_id": pl.String(),
    "vpc_id": pl.String(),
    "subnet_id": pl.String(),
    "src_addr": pl.String(),
    "dst_addr": pl.String(),
    "src_port": pl.Int32(),
    "dst_port": pl.Int32(),
    "protocol": pl.Int32(),
    "packets": pl.Int64(),
    "bytes": pl.Int64(),
    "action": pl.String(),
    "log_status": pl.String(),
    "tcp_flags": pl.Int32(),
    "flow_direction": pl.String(),
    "pkt_src_addr": pl.String(),
    "pkt_dst_addr": pl.String(),
    "origin": pl.String(),
}

# NODATA / SKIPDATA flow-log records: facts about coverage (an interface had no traffic, or records
# were dropped), not flows.
FLOW_STATUS: dict[str, pl.DataType] = {
    "start": TIME,
    "end": TIME,
    "account": pl.String(),
    "region": pl.String(),
    "interface_id": pl.String(),
    "log_status": pl.String(),  # NODATA | SKIPDATA
    "origin": pl.String(),
}

FINDINGS: dict[str, pl.DataType] = {
    "finding_id": pl.String(),
    "producer": pl.String(),
    "type": pl.String(),
    "title": pl.String(),
    "description": pl.String(),
    "severity": pl.Float64(),
    "severity_label": pl.String(),
    "account": pl.String(),
    "region": pl.String(),
    "first_seen": TIME,
    "last_seen": TIME,
    "tactics": pl.List(pl.String()),
    "techniques": pl.List(pl.String()),
    "event_ids": pl.List(pl.String()),
    "raw": pl.String(),  # the finding as JSON text
    "updated_at": TIME,  # the version of the finding: the latest one is kept
    "origin": pl.String(),
}

FINDING_ENTITIES: dict[str, pl.DataType] = {
    "finding_id": pl.String(),
    "entity_type": pl.String(),  # Detective's names: AwsUser, AwsRole, AwsRoleSession, Ec2Instance, IpAddress, ...
    "entity_id": pl.String(),
    "role": pl.String(),  # actor | target | network peer | ...
    "first_seen": TIME,  # the finding's first_seen, so the frame partitions by day like the others
    "origin": pl.String(),
}

FRAMES: dict[str, dict[str, pl.DataType]] = {
    "events": EVENTS,
    "flows": FLOWS,
    "flow_status": FLOW_STATUS,
    "findings": FINDINGS,
    "finding_entities": FINDING_ENTITIES,
}

# The column each frame is partitioned by (by day) in the case store.
TIME_COLUMN = {
    "events": "time",
    "flows": "start",
    "flow_status": "start",
    "findings": "first_seen",
    "finding_entities": "first_seen",
}


# The duplicate rule compares records by eventID and content. polars promises its hash only within
# one version, so a case records the version its hashes were made with and is re-hashed (from its
# own columns) when another version reads or extends it.
EVENT_CONTENT = [name for name in EVENTS if name not in ("origin", "origin_index", "content_hash")]
HASH_VERSION = f"polars-{pl.__version__}"


def content_hash() -> pl.Expr:
    return pl.struct(EVENT_CONTENT).hash(seed=0).alias("content_hash")


def empty(frame: str) -> pl.DataFrame:
    return pl.DataFrame(schema=FRAMES[frame])


def conform(df: pl.DataFrame, frame: str) -> pl.DataFrame:
    """Select and cast `df` to the canonical columns of `frame`, adding missing ones as nulls."""
    schema = FRAMES[frame]
    return df.select(
        [
            (pl.col(name) if name in df.columns else pl.lit(None)).cast(dtype).alias(name)
            for name, dtype in schema.items()
        ]
    )
