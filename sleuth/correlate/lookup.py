"""How a user names entities: resolving one entity from text (`resolve`, `locate`, `entity_row`), and
entity search (`sleuth search --entity`: `find_entities`, `search_entities`).

A user may name an entity by its id, an ARN variant (an assumed-role ARN, a bucket or instance ARN),
a principal id, a name (the last part of an ARN, a session's name), a zero-padded address, or
`TYPE:ID` to pick among types sharing an id. What the ids are is sleuth.correlate.entities.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable

import polars as pl

from sleuth.correlate.entities import (
    CATEGORIES,
    INSTANCE,
    INSTANCE_ID,
    PRINCIPAL_ID,
    PRINCIPAL_TYPES,
    EntityRef,
    address_is,
    entity_index,
    events_of,
    flows_of,
    merge_index,
)
from sleuth.errors import NotFoundError
from sleuth.netaddr import parse_ip, parse_network
from sleuth.patterns import WILDCARDS, has_wildcard, text_matches


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
    if INSTANCE.match(given):
        exact = exact | events_of(EntityRef("Ec2Instance", given))
    if PRINCIPAL_ID.match(given):
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
    if not len(rows) and PRINCIPAL_ID.match(given):
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
