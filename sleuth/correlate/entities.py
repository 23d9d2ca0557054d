"""Entities of the behavior graph: what each event, flow and finding involves, and how a user names them.

Types are Amazon Detective's (handbook §3) plus sleuth's `AccessKey`. Ids follow Detective's formats
where the logs carry them (role session `<rolePrincipalId>:<sessionName>`, instance id, bucket name,
address, user agent, account id). IAM users and roles are keyed by ARN, not by Detective's principal
id: a role seen only as the target of AssumeRole, or named by a GuardDuty finding, has no principal
id in the logs, and the ARN is what remediation commands need. Principal ids, user and role names
and ARN variants still resolve to the entity (`resolve`). The root user is an `AwsUser` keyed by
`arn:aws:iam::<account>:root`.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

import polars as pl

from sleuth.errors import NotFoundError
from sleuth.netaddr import parse_ip, parse_network
from sleuth.patterns import has_wildcard, text_matches

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
    "Finding": "Finding",
    "FindingGroup": "Finding",
}
PRINCIPAL_TYPES = ("AwsUser", "AwsRole", "FederatedUser")

INSTANCE_ID = r"i-(?:[0-9a-f]{8}|[0-9a-f]{17})"
_INSTANCE = re.compile(rf"^{INSTANCE_ID}$")
_ACCESS_KEY = re.compile(r"^(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{12,}$")
_PRINCIPAL_ID = re.compile(r"^(?:AIDA|AROA|AIPA|ANPA|ANVA|APKA)[A-Z0-9]{12,}$")
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
    events: pl.LazyFrame, flows: pl.LazyFrame | None = None, finding_entities: pl.LazyFrame | None = None
) -> pl.DataFrame:
    """Every entity in the events (and flows), with its events, failures, first and last seen.

    Columns: entity_type, entity_id, events, failures, first_seen, last_seen, account, owner (the
    principal behind a role session or an access key).
    """
    parts = []
    for name, expr in event_entity_columns().items():
        typed = principal_type() if name == "principal" else pl.lit(name)
        owned = name in ("AwsRoleSession", "AccessKey")  # a session's role, a key's user or role
        parts.append(
            events.select(
                typed.alias("entity_type"),
                expr.alias("entity_id"),
                pl.col("time"),
                pl.col("error_code").is_not_null().alias("failed"),
                pl.col("account"),
                (pl.col("principal") if owned else pl.lit(None, pl.String)).alias("owner"),
            )
        )
    for entity_type, expr in resource_entity_columns().items():
        parts.append(
            events.select(
                pl.lit(entity_type).alias("entity_type"),
                expr.alias("entity_id"),
                pl.col("time"),
                pl.col("error_code").is_not_null().alias("failed"),
                pl.col("account"),
                pl.lit(None, pl.String).alias("owner"),
            ).explode("entity_id")
        )
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
        frames.append(_flow_entities(flows))
    if finding_entities is not None:
        frames.append(_finding_entities(finding_entities))
    return pl.concat(frames, how="vertical_relaxed").sort("entity_type", "entity_id")


def _flow_entities(flows: pl.LazyFrame) -> pl.DataFrame:
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
    return (
        pl.concat(ends)
        .filter(pl.col("entity_id").is_not_null())
        .group_by("entity_type", "entity_id")
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


def _finding_entities(finding_entities: pl.LazyFrame) -> pl.DataFrame:
    """Entities named only by findings (a GuardDuty resource never seen in the logs, say)."""
    return (
        finding_entities.filter(pl.col("entity_type") != "Finding")
        .group_by("entity_type", "entity_id")
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


def find_entities(dataset, pattern: str) -> pl.DataFrame:
    """`sleuth search --entity`: entities of every type in the dataset that match `pattern`."""
    index = entity_index(dataset.events, dataset.frames["flows"], dataset.frames["finding_entities"])
    return search_entities(index, pattern)


def search_entities(index: pl.DataFrame, pattern: str) -> pl.DataFrame:
    """Entities matching an id, a `*`/`?` wildcard, a name (last ARN part) or an IP/CIDR, most active first."""
    pattern = pattern.strip()
    network = parse_network(pattern) if parse_ip(pattern.split("/")[0]) else None
    if network is not None:
        addresses = index.filter(pl.col("entity_type") == "IpAddress")["entity_id"].to_list()
        inside = [
            a for a in addresses if (ip := parse_ip(a)) is not None and ip.version == network.version and ip in network
        ]
        matched = index.filter((pl.col("entity_type") == "IpAddress") & pl.col("entity_id").is_in(inside))
    else:
        name = pl.col("entity_id").str.extract(r"[/:]([^/:]+)$", 1)
        matched = index.filter(text_matches(pl.col("entity_id"), pattern) | text_matches(name, pattern))
    return merge_index(matched).sort(["events", "entity_type", "entity_id"], descending=[True, False, False])


def resolve(text: str, index: pl.DataFrame) -> EntityRef:
    """The one entity a user means by `text` (ARN, name, session, key, IP, instance, bucket, user agent).

    Exact ids win; then names (the last part of an ARN, a session's name). Several principals of one
    name, or no match at all, raise NotFoundError listing the candidates or the closest ids.
    """
    given = text.strip()
    if not given or has_wildcard(given):
        raise NotFoundError(f"{text!r} is not one entity", "name one entity; use `sleuth search --entity` to look up")
    candidates = _exact(given, index)
    if not candidates:
        candidates = _by_name(given, index)
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        listed = ", ".join(f"{c.type} {c.id}" for c in candidates[:8])
        raise NotFoundError(f"{given!r} names {len(candidates)} entities: {listed}", "give the full ARN or id")
    raise NotFoundError(f"no entity {given!r} in the data", _closest(given, index))


def _exact(given: str, index: pl.DataFrame) -> list[EntityRef]:
    wanted = given
    address = parse_ip(given)
    if address is not None:
        wanted = str(address)
    elif given.startswith("arn:aws") and ":s3:::" in given:
        wanted = given.split(":::", 1)[1].split("/", 1)[0]
    elif given.startswith("arn:aws") and ":assumed-role/" in given:
        role = re.sub(r"^arn:(aws[\w-]*):sts::(\d+):assumed-role/([^/]+)/.*$", r"arn:\1:iam::\2:role/\3", given)
        hits = index.filter(pl.col("entity_id") == role)
        if len(hits):
            wanted = role
    rows = index.filter(pl.col("entity_id") == wanted)
    if not len(rows) and _PRINCIPAL_ID.match(given):
        rows = _role_of_principal_id(given, index)
    types = _unique_refs(rows)
    preferred = [ref for ref in types if ref.type in PRINCIPAL_TYPES]
    return preferred or types


def _role_of_principal_id(principal_id: str, index: pl.DataFrame) -> pl.DataFrame:
    """A role named by its principal id (AROA...): the owner of its sessions `<principal id>:<name>`."""
    owners = index.filter(
        (pl.col("entity_type") == "AwsRoleSession") & pl.col("entity_id").str.starts_with(principal_id + ":")
    )["owner"].drop_nulls()
    return index.filter(pl.col("entity_id").is_in(owners.unique().implode()))


def _by_name(given: str, index: pl.DataFrame) -> list[EntityRef]:
    name = pl.col("entity_id").str.extract(r"[/:]([^/:]+)$", 1).str.to_lowercase()
    rows = index.filter(pl.col("entity_type").is_in([*PRINCIPAL_TYPES, "AwsRoleSession"]) & (name == given.lower()))
    refs = _unique_refs(rows)
    principals = [ref for ref in refs if ref.type in PRINCIPAL_TYPES]
    return principals or refs


def _unique_refs(rows: pl.DataFrame) -> list[EntityRef]:
    seen: dict[EntityRef, None] = {}
    for entity_type, entity_id in rows.select("entity_type", "entity_id").iter_rows():
        seen.setdefault(EntityRef(entity_type, entity_id), None)
    return list(seen)


def _closest(given: str, index: pl.DataFrame) -> str:
    ids = index["entity_id"].unique().to_list()
    names = {re.split(r"[/:]", i)[-1]: i for i in ids}
    close = difflib.get_close_matches(given, ids, n=3, cutoff=0.6)
    close += [names[n] for n in difflib.get_close_matches(given, list(names), n=3, cutoff=0.6)]
    unique = list(dict.fromkeys(close))[:5]
    if unique:
        return "closest: " + ", ".join(unique)
    return "check the spelling, or list entities with `sleuth search --entity '*'`"


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
            return normalized_ip() == value
        case "UserAgent":
            return pl.col("user_agent") == value
        case "AwsAccount":
            return pl.col("account") == value
        case "Ec2Instance":
            return (instance_of_session() == value) | pl.col("resources").list.contains(value)
        case "S3Bucket":
            return bucket_names().list.contains(value)
    return pl.lit(False)


def flows_of(entity: EntityRef) -> pl.Expr | None:
    """The flows of an instance or address; None for entities flows never name."""
    if entity.type == "Ec2Instance":
        return pl.col("instance_id") == entity.id
    if entity.type == "IpAddress":
        return (pl.col("src_addr") == entity.id) | (pl.col("dst_addr") == entity.id)
    return None
