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
from collections.abc import Callable
from dataclasses import dataclass

import orjson
import polars as pl

from sleuth.errors import NotFoundError
from sleuth.netaddr import parse_ip, parse_network
from sleuth.patterns import WILDCARDS, has_wildcard, text_matches

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

INSTANCE_ID = r"i-(?:[0-9a-f]{17}|[0-9a-f]{8})"  # the long form first: unanchored matches take it whole
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


def find_entities(dataset, pattern: str) -> pl.DataFrame:
    """`sleuth search --entity`: entities of every type in the dataset that match `pattern`.

    Only the events that can hold a matching id are indexed: those with the pattern's longest literal
    part in one of their id columns (ids are parts of those columns), or with an address in its range.
    """
    events = dataset.events
    rows = _rows_for_pattern(pattern.strip())
    if rows is not None:
        events = indexed_columns(events.filter(rows)).collect().lazy()
    index = entity_index(events, dataset.frames["flows"], dataset.frames["finding_entities"], _pattern_filter(pattern))
    return search_entities(index, pattern)


def indexed_columns(events: pl.LazyFrame) -> pl.LazyFrame:
    """The columns entity_index reads (a response only where it is read: sign-ins and launches)."""
    response = pl.when(pl.col("action").is_in(["ConsoleLogin", "RunInstances"])).then(pl.col("response"))
    return events.select(
        "time", "account", "error_code", "action", "principal", "actor_type", "session", "access_key", "src_ip",
        "user_agent", "resources", response.alias("response"),
    )  # fmt: skip


def _rows_for_pattern(pattern: str) -> pl.Expr | None:
    """A condition on events that keeps every event of every entity `pattern` matches, or None."""
    network = parse_network(pattern) if parse_ip(pattern.split("/")[0]) else None
    if network is not None:
        if network.version != 4 or network.prefixlen < 8:
            return None
        octets = str(network.network_address).split(".")[: network.prefixlen // 8]
        fixed = r"\.".join(rf"0*{octet}" for octet in octets) + (r"\s*$" if len(octets) == 4 else r"\.")
        return pl.col("src_ip").str.contains(rf"^\s*{fixed}").fill_null(False)
    fragment = max(WILDCARDS.split(pattern), key=len)
    if len(fragment) < 2 or not fragment.isascii():
        return None

    def holds(column: pl.Expr) -> pl.Expr:
        return column.str.contains_any([fragment], ascii_case_insensitive=True).fill_null(False)

    columns = ["principal", "session", "access_key", "user_agent", "account", "src_ip"]
    padded = pl.col("src_ip").str.contains(r"(^|\.)0\d").fill_null(False)  # 035.x: its normalized form differs
    return (
        pl.any_horizontal([holds(pl.col(c)) for c in columns])
        | padded
        | (pl.col("resources").list.eval(holds(pl.element())).list.any().fill_null(False))
    )


def _pattern_filter(pattern: str) -> Callable[[pl.Expr], pl.Expr]:
    """A condition on entity ids that keeps at least the ids `search_entities` matches (applied before
    counting, so that a search does not count every entity of the data)."""
    pattern = pattern.strip()
    if parse_ip(pattern.split("/")[0]) is not None:  # an address or CIDR: keep what looks like one
        return lambda column: column.str.contains(r"^[0-9A-Fa-f:.]+$").fill_null(False)

    def matches(column: pl.Expr) -> pl.Expr:
        return text_matches(column, pattern) | text_matches(column.str.extract(r"[/:]([^/:]+)$", 1), pattern)

    return matches


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

    Exact ids win; then names (the last part of an ARN, a session's name). `TYPE:ID` (an entity's key,
    e.g. `UserAgent:curl/8`) picks among entities of several types that share an id. Several principals
    of one name, or no match at all, raise NotFoundError listing the candidates or the closest ids.
    """
    kind, given = _one_entity(text)
    return _chosen(given, _candidates(given, index, kind), lambda: index)


def locate(
    text: str,
    events: pl.LazyFrame,
    flows: pl.LazyFrame | None = None,
    finding_entities: pl.LazyFrame | None = None,
) -> EntityRef:
    """`resolve` without indexing every entity of the data. First only the records that hold one of the
    ids `text` may stand for are indexed (exact ids: cheap equality tests); when none is found, those
    with a principal or session whose name contains it (names); the whole index is built only to list
    the closest ids when nothing matches. Each stage indexes every record of the entities it can find,
    so the answer is `resolve`'s."""
    kind, given = _one_entity(text)
    forms = _id_forms(given)

    def equal(column: pl.Expr) -> pl.Expr:
        return column.is_in(forms).fill_null(False)

    def mentions(column: pl.Expr) -> pl.Expr:
        return column.str.contains_any(forms, ascii_case_insensitive=True).fill_null(False)

    columns = ["principal", "session", "access_key", "user_agent", "account", "src_ip"]
    exact = pl.any_horizontal([equal(pl.col(name)) for name in columns])
    exact = exact | pl.col("resources").list.eval(pl.element().is_in(_resource_forms(forms))).list.any()
    if _INSTANCE.match(given):
        exact = exact | events_of(EntityRef("Ec2Instance", given))
    if _PRINCIPAL_ID.match(given):
        exact = exact | pl.col("session").str.starts_with(given + ":")
    address = parse_ip(given)
    if address is not None:
        exact = exact | address_is(pl.col("src_ip"), str(address))
    # Names (_by_name): principals and sessions, also those only seen as resources (a role assumed).
    named = mentions(pl.col("principal")) | mentions(pl.col("session"))
    named = named | pl.col("resources").list.eval(mentions(pl.element())).list.any()
    ends = ("instance_id", "src_addr", "dst_addr")
    exact_flows = None if flows is None else flows.filter(pl.any_horizontal([equal(pl.col(c)) for c in ends]))
    named_by_findings = None if finding_entities is None else finding_entities.filter(equal(pl.col("entity_id")))
    candidates: list[EntityRef] = []
    # Names are principals' and sessions': the second stage needs no flows nor findings.
    for keep, in_flows, in_findings in ((exact, exact_flows, named_by_findings), (named, None, None)):
        rows = indexed_columns(events.filter(keep.fill_null(False))).collect().lazy()  # read once for every part
        candidates = _candidates(given, entity_index(rows, in_flows, in_findings), kind)
        if candidates:
            break
    return _chosen(given, candidates, lambda: entity_index(events, flows, finding_entities))


def address_is(column: pl.Expr, address: str) -> pl.Expr:
    """`column` (a sourceIPAddress) is `address` once normalized (see normalized_ip), without
    normalizing the whole column."""
    if ":" in address:
        return (column.str.strip_chars().str.to_lowercase() == address).fill_null(False)
    padded = r"\.".join(rf"0*{octet}" for octet in address.split("."))
    return column.str.contains(rf"^\s*{padded}\s*$").fill_null(False)


def _resource_forms(forms: list[str]) -> list[str]:
    """The ids as events' resources write them: ARNs as they are, bucket names as bucket ARNs."""
    buckets = [f"arn:{partition}:s3:::{name}" for name in forms for partition in ("aws", "aws-cn", "aws-us-gov")]
    return [*forms, *buckets]


def entity_row(
    entity: EntityRef, events: pl.LazyFrame, flows: pl.LazyFrame | None = None, interfaces: list[str] | None = None
) -> pl.DataFrame:
    """The entity's one index row (events, failures, first and last seen, account, owner) over all the data."""
    condition = flows_of(entity, interfaces)
    own_flows = flows.filter(condition) if flows is not None and condition is not None else None
    if own_flows is not None and entity.type == "Ec2Instance":  # flows that name only its interfaces
        own_flows = own_flows.with_columns(pl.lit(entity.id).alias("instance_id"))
    index = entity_index(events.filter(events_of(entity)), own_flows, where=lambda column: column == entity.id)
    return merge_index(index.filter(pl.col("entity_type") == entity.type))


def _one_entity(text: str) -> tuple[str | None, str]:
    """The entity type given as a `TYPE:` prefix (or None), and the id or name."""
    given = text.strip()
    if not given or has_wildcard(given):
        raise NotFoundError(f"{text!r} is not one entity", "name one entity; use `sleuth search --entity` to look up")
    kind, sep, rest = given.partition(":")
    if sep and kind in CATEGORIES and rest.strip():
        return kind, rest.strip()
    return None, given


def _id_forms(given: str) -> list[str]:
    """The ids `given` may stand for: itself, the address it writes, the bucket, role or instance of an ARN."""
    forms = {given}
    address = parse_ip(given)
    if address is not None:
        forms.add(str(address))
    forms.add(_canonical(given))
    return sorted(forms)


def _arn_type(given: str) -> str | None:
    """The entity type an ARN names when it names one type only (a bucket, an instance)."""
    if re.match(r"^arn:aws[\w-]*:s3:::", given):
        return "S3Bucket"
    if re.match(rf"^arn:aws[\w-]*:ec2:[^:]*:\d*:instance/{INSTANCE_ID}$", given):
        return "Ec2Instance"
    return None


def _canonical(given: str) -> str:
    """An ARN turned into the id sleuth keys its entity by (bucket name, role ARN, instance id)."""
    if not given.startswith("arn:aws"):
        return given
    if ":s3:::" in given:
        return given.split(":::", 1)[1].split("/", 1)[0]
    if ":assumed-role/" in given:
        return re.sub(r"^arn:(aws[\w-]*):sts::(\d+):assumed-role/([^/]+)/.*$", r"arn:\1:iam::\2:role/\3", given)
    instance = re.match(rf"^arn:aws[\w-]*:ec2:[^:]*:\d*:instance/({INSTANCE_ID})$", given)
    return instance.group(1) if instance else given


def _candidates(given: str, index: pl.DataFrame, kind: str | None = None) -> list[EntityRef]:
    kind = kind or _arn_type(given)
    if kind is not None:
        index = index.filter(pl.col("entity_type") == kind)
    return _exact(given, index) or _by_name(given, index)


def _chosen(given: str, candidates: list[EntityRef], full_index: Callable[[], pl.DataFrame]) -> EntityRef:
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        listed = ", ".join(f"{c.type} {c.id}" for c in candidates[:8])
        same = len({c.id for c in candidates}) == 1
        fix = f"prefix the type, e.g. {candidates[0].key}" if same else "give the full ARN or id"
        raise NotFoundError(f"{given!r} names {len(candidates)} entities: {listed}", fix)
    raise NotFoundError(f"no entity {given!r} in the data", _closest(given, full_index()))


def _exact(given: str, index: pl.DataFrame) -> list[EntityRef]:
    wanted = given
    address = parse_ip(given)
    if address is not None:
        wanted = str(address)
    elif given.startswith("arn:aws"):
        canonical = _canonical(given)
        # An assumed-role ARN names its role when the data has it (else, below, nothing matches).
        if ":assumed-role/" not in given or len(index.filter(pl.col("entity_id") == canonical)):
            wanted = canonical
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
            if not isinstance(instance_id, str) or not _INSTANCE.match(instance_id):
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
