"""Entities of the behavior graph: what each event, flow and finding involves (how a user names them:
sleuth.correlate.lookup).

Types are Amazon Detective's (handbook §3) plus sleuth's `AccessKey`. Ids follow Detective's formats
where the logs carry them (role session `<rolePrincipalId>:<sessionName>`, instance id, bucket name,
address, user agent, account id). IAM users and roles are keyed by ARN, not by Detective's principal
id: a role seen only as the target of AssumeRole, or named by a GuardDuty finding, has no principal
id in the logs, and the ARN is what remediation commands need. Principal ids, user and role names
and ARN variants still resolve to the entity (`lookup.resolve`). The root user is an `AwsUser` keyed by
`arn:aws:iam::<account>:root`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import orjson
import polars as pl

from sleuth.netaddr import parse_ip

# Detective's categories for the entities of a finding group.
CATEGORIES = {
    "AwsAccount": "Identity",
    "AwsUser": "Identity",
    "AwsRole": "Identity",
    "AwsRoleSession": "Identity",
    "FederatedUser": "Identity",
    "AccessKey": "Identity",
    "KubernetesSubject": "Identity",
    "IpAddress": "Network",
    "UserAgent": "Network",
    "S3Bucket": "Storage",
    "Ec2Instance": "Compute",
    "ContainerCluster": "Compute",
    "ContainerPod": "Compute",
    "ContainerImage": "Compute",
    "AwsService": "Other",  # sleuth's: an AWS service acting for a principal (never a linking entity)
    "Finding": "Finding",
    "FindingGroup": "Finding",
}
PRINCIPAL_TYPES = ("AwsUser", "AwsRole", "FederatedUser")

INSTANCE_ID = r"i-(?:[0-9a-f]{17}|[0-9a-f]{8})"  # the long form first: unanchored matches take it whole
INSTANCE = re.compile(rf"^{INSTANCE_ID}$")
PRINCIPAL_ID = re.compile(r"^(?:AIDA|AROA|AIPA|ANPA|ANVA|APKA)[A-Z0-9]{12,}$")
_IPV4_PADDED = r"^\d{1,3}(?:\.\d{1,3}){3}$"


@dataclass(frozen=True)
class EntityRef:
    type: str
    id: str

    @property
    def key(self) -> str:
        """The graph node key: `<type>:<id>` (types hold no colon, so the first one splits)."""
        return f"{self.type}:{self.id}"

    @property
    def category(self) -> str:
        return CATEGORIES.get(self.type, "Other")


def normalized_ip() -> pl.Expr:
    """src_ip as an address without leading zeros in IPv4 octets; null for host names and junk."""
    src = pl.col("src_ip").str.strip_chars()
    ipv4 = src.str.contains(_IPV4_PADDED)
    unpadded = src.str.replace_all(r"(^|\.)0+(\d)", "${1}${2}")
    ipv6 = src.str.contains(r"^[0-9A-Fa-f:.]+$") & src.str.contains(":")
    return pl.when(ipv4).then(unpadded).when(ipv6).then(src.str.to_lowercase()).otherwise(None)


def address_is(column: pl.Expr, address: str) -> pl.Expr:
    """`column` (a sourceIPAddress) is `address` once normalized (see normalized_ip), without
    normalizing the whole column."""
    if ":" in address:
        return (column.str.strip_chars().str.to_lowercase() == address).fill_null(False)
    padded = r"\.".join(rf"0*{octet}" for octet in address.split("."))
    return column.str.contains(rf"^\s*{padded}\s*$").fill_null(False)


def failed() -> pl.Expr:
    """The call failed: an error code, or a console sign-in that failed (CloudTrail gives those no
    errorCode, only responseElements {"ConsoleLogin": "Failure"} and often an errorMessage)."""
    console_failure = (pl.col("action") == "ConsoleLogin") & pl.col("response").str.contains(
        r'"ConsoleLogin"\s*:\s*"Failure"'
    )
    return pl.col("error_code").is_not_null() | console_failure.fill_null(False)


def principal_type() -> pl.Expr:
    """The entity type of events.principal, from userIdentity.type and the ARN's form."""
    principal = pl.col("principal")
    return (
        pl.when(principal.str.contains(r":role/"))
        .then(pl.lit("AwsRole"))
        .when(principal.str.contains(r":(user/[^/]|root$)") | pl.col("actor_type").is_in(["IAMUser", "Root"]))
        .then(pl.lit("AwsUser"))
        .when(pl.col("actor_type").is_in(["FederatedUser", "SAMLUser", "WebIdentityUser"]))
        .then(pl.lit("FederatedUser"))
        .when(principal.str.contains(r"^arn:"))
        .then(pl.lit("AwsUser"))
        .otherwise(None)
    )


def short_principal() -> pl.Expr:
    """events.principal without its `arn:aws:iam::<account>:` prefix (user/alice, assumed-role/r/s), for
    tables whose account is shown elsewhere."""
    return pl.col("principal").str.replace(r"^arn:[^:]+:(iam|sts)::\d+:", "")


def short_id(entity_id: str) -> str:
    """An entity id for a label: an ARN without its `arn:partition:service:region:account:` prefix."""
    return entity_id.split(":", 5)[-1] if entity_id.startswith("arn:") else entity_id


def instance_of_session() -> pl.Expr:
    """The instance whose role credentials made the call: a session named after an instance id."""
    return pl.col("session").str.extract(rf":({INSTANCE_ID})$", 1)


def bucket_names() -> pl.Expr:
    """Bucket names among the resources an event touched."""
    return pl.col("resources").list.eval(pl.element().str.extract(r"^arn:aws[\w-]*:s3:::([^/]+)$", 1).drop_nulls())


def _resources_matching(pattern: str) -> pl.Expr:
    return pl.col("resources").list.eval(pl.element().str.extract(pattern, 1).drop_nulls())


def resource_entity_columns() -> dict[str, pl.Expr]:
    """Entities an event acted on, from its resources: lists of ids per event."""
    return {
        "S3Bucket": bucket_names(),
        "AwsRole": _resources_matching(r"^(arn:aws[\w-]*:iam::\d+:role/.+)$"),
        "AwsUser": _resources_matching(r"^(arn:aws[\w-]*:iam::\d+:user/.+)$"),
        "Ec2Instance": _resources_matching(rf"^(?:arn:aws[\w-]*:ec2:[^:]*:\d*:instance/)?({INSTANCE_ID})$"),
    }


def launched_instances() -> pl.Expr:
    """The instances a RunInstances response names (a list per event; empty for other events)."""
    found = pl.col("response").str.extract_all(rf'"instanceId"\s*:\s*"{INSTANCE_ID}"')
    return found.list.eval(pl.element().str.extract(rf"({INSTANCE_ID})", 1))


def _launch_entities(events: pl.LazyFrame) -> pl.LazyFrame:
    """Instances known from their launch (flows and later calls may name only their interface)."""
    return (
        events.filter((pl.col("action") == "RunInstances") & pl.col("error_code").is_null())
        .select(
            pl.lit("Ec2Instance").alias("entity_type"),
            # not those its resources already name (counted there)
            pl.when(pl.col("resources").list.len() > 0)
            .then(launched_instances().list.set_difference(resource_entity_columns()["Ec2Instance"]))
            .otherwise(launched_instances())
            .alias("entity_id"),
            "time",
            pl.lit(False).alias("failed"),
            "account",
            pl.lit(None, pl.String).alias("owner"),
        )
        .explode("entity_id")
    )


def event_entity_columns() -> dict[str, pl.Expr]:
    """One expression per entity type an event involves as caller, in the events frame."""
    return {
        "principal": pl.col("principal"),
        "AwsRoleSession": pl.col("session"),
        "AccessKey": pl.col("access_key"),
        "IpAddress": normalized_ip(),
        "UserAgent": pl.col("user_agent"),
        "AwsAccount": pl.col("account"),
        "Ec2Instance": instance_of_session(),
    }


def entity_index(
    events: pl.LazyFrame,
    flows: pl.LazyFrame | None = None,
    finding_entities: pl.LazyFrame | None = None,
    where: Callable[[pl.Expr], pl.Expr] | None = None,
) -> pl.DataFrame:
    """Every entity in the events (and flows), with its events, failures, first and last seen.

    Columns: entity_type, entity_id, events, failures, first_seen, last_seen, account, owner (the
    principal behind a role session or an access key). `where` (entity_id -> condition) keeps only
    the entities it accepts, before anything is counted (a search pattern, say).
    """
    columns = {**event_entity_columns(), **{f"resource_{k}": v for k, v in resource_entity_columns().items()}}
    # An event counts once per entity: not again for a resource that is its own caller (a user reading
    # itself, an instance's role stopping the instance) nor for a resource listed twice.
    columns["resource_AwsUser"] = columns["resource_AwsUser"].list.set_difference(pl.concat_list("principal"))
    columns["resource_AwsRole"] = columns["resource_AwsRole"].list.set_difference(pl.concat_list("principal"))
    columns["resource_Ec2Instance"] = columns["resource_Ec2Instance"].list.set_difference(
        pl.concat_list(instance_of_session())
    )
    columns["resource_S3Bucket"] = columns["resource_S3Bucket"].list.unique()
    # One pass over the events computes every entity column; each entity type then reads its own.
    base = events.select(
        pl.col("time"),
        failed().alias("failed"),
        pl.col("account"),
        pl.col("principal").alias("owner"),
        principal_type().alias("principal_type"),
        *(expr.alias(name) for name, expr in columns.items()),
    )
    parts = []
    for name in columns:
        typed = pl.col("principal_type") if name == "principal" else pl.lit(name.removeprefix("resource_"))
        owned = name in ("AwsRoleSession", "AccessKey")  # a session's role, a key's user or role
        part = base.select(
            typed.alias("entity_type"),
            pl.col(name).alias("entity_id"),
            "time",
            "failed",
            "account",
            (pl.col("owner") if owned else pl.lit(None, pl.String)).alias("owner"),
        )
        if name.startswith("resource_"):
            part = part.explode("entity_id")
        parts.append(part)
    parts.append(_launch_entities(events))
    if where is not None:
        parts = [part.filter(where(pl.col("entity_id"))) for part in parts]
    index = (
        pl.concat(parts)
        .filter(pl.col("entity_id").is_not_null() & pl.col("entity_type").is_not_null())
        .group_by("entity_type", "entity_id")
        .agg(
            pl.len().alias("events"),
            pl.col("failed").sum().alias("failures"),
            pl.col("time").min().alias("first_seen"),
            pl.col("time").max().alias("last_seen"),
            pl.col("account").drop_nulls().mode().first().alias("account"),
            pl.col("owner").drop_nulls().first().alias("owner"),
        )
    )
    frames = [index.collect()]
    if flows is not None:
        frames.append(_flow_entities(flows, where))
    if finding_entities is not None:
        frames.append(_finding_entities(finding_entities, where))
    if len(frames) == 1:
        return frames[0].sort("entity_type", "entity_id")
    # One row per entity, whichever of events, flows and findings saw it.
    return merge_index(pl.concat(frames, how="vertical_relaxed")).sort("entity_type", "entity_id")


def _flow_entities(flows: pl.LazyFrame, where: Callable[[pl.Expr], pl.Expr] | None = None) -> pl.DataFrame:
    """Instances and addresses seen only in VPC flows (counted as flow records, not events)."""
    ends = [
        flows.select(pl.col("instance_id").alias("entity_id"), "start", "account").with_columns(
            pl.lit("Ec2Instance").alias("entity_type")
        ),
        flows.select(pl.col("src_addr").alias("entity_id"), "start", "account").with_columns(
            pl.lit("IpAddress").alias("entity_type")
        ),
        flows.select(pl.col("dst_addr").alias("entity_id"), "start", "account").with_columns(
            pl.lit("IpAddress").alias("entity_type")
        ),
    ]
    found = pl.concat(ends).filter(pl.col("entity_id").is_not_null())
    if where is not None:
        found = found.filter(where(pl.col("entity_id")))
    return (
        found.group_by("entity_type", "entity_id")
        .agg(
            pl.lit(0, pl.UInt32).alias("events"),
            pl.lit(0, pl.UInt32).alias("failures"),
            pl.col("start").min().alias("first_seen"),
            pl.col("start").max().alias("last_seen"),
            pl.col("account").drop_nulls().mode().first().alias("account"),
            pl.lit(None, pl.String).alias("owner"),
        )
        .collect()
    )


def _finding_entities(
    finding_entities: pl.LazyFrame, where: Callable[[pl.Expr], pl.Expr] | None = None
) -> pl.DataFrame:
    """Entities named only by findings (a GuardDuty resource never seen in the logs, say)."""
    named = finding_entities.filter(pl.col("entity_type") != "Finding")
    if where is not None:
        named = named.filter(where(pl.col("entity_id")))
    return (
        named.group_by("entity_type", "entity_id")
        .agg(
            pl.lit(0, pl.UInt32).alias("events"),
            pl.lit(0, pl.UInt32).alias("failures"),
            pl.col("first_seen").min(),
            pl.col("first_seen").max().alias("last_seen"),
            pl.lit(None, pl.String).alias("account"),
            pl.lit(None, pl.String).alias("owner"),
        )
        .collect()
    )


def merge_index(index: pl.DataFrame) -> pl.DataFrame:
    """One row per entity when events and flows both saw it."""
    return index.group_by("entity_type", "entity_id").agg(
        pl.col("events").sum(),
        pl.col("failures").sum(),
        pl.col("first_seen").min(),
        pl.col("last_seen").max(),
        pl.col("account").drop_nulls().first(),
        pl.col("owner").drop_nulls().first(),
    )


def events_of(entity: EntityRef) -> pl.Expr:
    """The events an entity took part in: as caller, with its key, from its address, on it."""
    value = pl.lit(entity.id)
    match entity.type:
        case "AwsUser" | "AwsRole" | "FederatedUser":
            return pl.col("principal") == value
        case "AwsRoleSession":
            return pl.col("session") == value
        case "AccessKey":
            return pl.col("access_key") == value
        case "IpAddress":
            return address_is(pl.col("src_ip"), entity.id)
        case "UserAgent":
            return pl.col("user_agent") == value
        case "AwsAccount":
            return pl.col("account") == value
        case "Ec2Instance":  # its role's calls, calls on it (by id or ARN), its launch
            on_it = pl.col("resources").list.eval((pl.element() == value) | pl.element().str.ends_with("/" + entity.id))
            launch = (pl.col("action") == "RunInstances") & pl.col("response").str.contains(entity.id, literal=True)
            return (instance_of_session() == value) | on_it.list.any().fill_null(False) | launch.fill_null(False)
        case "S3Bucket":
            return bucket_names().list.contains(value)
    return pl.lit(False)


def flows_of(entity: EntityRef, interfaces: list[str] | None = None) -> pl.Expr | None:
    """The flows of an instance (by id, or by the network interfaces it was launched with) or an
    address; None for entities flows never name."""
    if entity.type == "Ec2Instance":
        condition = pl.col("instance_id") == entity.id
        if interfaces:
            condition = condition | pl.col("interface_id").is_in(interfaces)
        return condition
    if entity.type == "IpAddress":
        return (pl.col("src_addr") == entity.id) | (pl.col("dst_addr") == entity.id)
    return None


LAUNCHES: dict[str, pl.DataType] = {
    "instance_id": pl.String(),
    "interface_id": pl.String(),
    "private_ip": pl.String(),
    "time": pl.Datetime("us", "UTC"),
    "event_id": pl.String(),
    "principal": pl.String(),
    "session": pl.String(),
    "access_key": pl.String(),
}


def instance_launches(events: pl.LazyFrame) -> pl.DataFrame:
    """Instances launched in the data, from successful RunInstances responses: one row per instance and
    network interface (columns: LAUNCHES), which ties VPC flows (that name only the interface) to an
    instance and to whoever launched it."""
    launches = (
        events.filter((pl.col("action") == "RunInstances") & pl.col("error_code").is_null())
        .select("time", "event_id", "principal", "session", "access_key", "response")
        .collect()
    )
    rows = []
    for row in launches.iter_rows(named=True):
        for instance in _items(_parse(row["response"]), "instancesSet"):
            instance_id = instance.get("instanceId")
            if not isinstance(instance_id, str) or not INSTANCE.match(instance_id):
                continue
            interfaces = _items(instance, "networkInterfaceSet") or [{}]
            for interface in interfaces:
                eni = interface.get("networkInterfaceId")
                address = interface.get("privateIpAddress") or instance.get("privateIpAddress")
                rows.append(
                    {
                        **{name: row[name] for name in ("time", "event_id", "principal", "session", "access_key")},
                        "instance_id": instance_id,
                        "interface_id": eni if isinstance(eni, str) else None,
                        "private_ip": address if isinstance(address, str) and parse_ip(address) else None,
                    }
                )
    return pl.DataFrame(rows, schema=LAUNCHES, orient="row") if rows else pl.DataFrame(schema=LAUNCHES)


def _parse(text: str | None) -> dict:
    try:
        value = orjson.loads(text) if text else None
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _items(parent: dict, key: str) -> list[dict]:
    """`parent[key]["items"]` as CloudTrail writes EC2 lists, keeping only objects."""
    container = parent.get(key)
    items = container.get("items") if isinstance(container, dict) else None
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []
