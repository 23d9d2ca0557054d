"""Entity profiles (Detective's profile panels): what an entity did in the scope against its baseline."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

import polars as pl

from sleuth.config import Config
from sleuth.correlate import activity as act
from sleuth.correlate.baseline import (
    Scope,
    api_name,
    finding_span,
    last_record,
    newly_observed,
    resolve_scope,
    spikes,
)
from sleuth.correlate.entities import (
    LAUNCHES,
    PRINCIPAL_TYPES,
    EntityRef,
    events_of,
    flows_of,
    instance_launches,
    normalized_ip,
)
from sleuth.correlate.flows import orient
from sleuth.correlate.lineage import ISSUING, credential_links, with_usage
from sleuth.correlate.lookup import entity_row, locate
from sleuth.dataset import Dataset


@dataclass
class Profile:
    entity: EntityRef
    scope: Scope
    details: dict
    volume: pl.DataFrame  # bucket, success, failure, baseline
    apis: pl.DataFrame  # api, success, failure, calls, first_seen, last_seen (scope)
    addresses: pl.DataFrame  # ip, calls, failure, first/last seen, location, aso ... (scope)
    user_agents: pl.DataFrame  # user_agent, calls, failure, first/last seen (scope)
    # Newly observed: geolocations, asos, user_agents, api_calls, addresses; each with the columns
    # value, first_seen, count, new_for_account.
    new: dict[str, pl.DataFrame]
    increased_volume: pl.DataFrame  # api, scope_count, baseline_count, expected, ratio, p_value
    failure_spikes: pl.DataFrame  # the same, failed calls only
    roles: pl.DataFrame  # resource interaction: credential links from or to the entity
    flows: pl.DataFrame  # peer, local_port, remote_port, protocol, direction, bytes_in, bytes_out, accepted, rejected
    findings: pl.DataFrame  # related findings
    notes: list[str] = field(default_factory=list)  # why a panel is empty when it is not obvious
    # Instances the entity launched (itself, or with credentials it issued), or the instance itself:
    # instance_id, interface_id, private_ip, time, event_id, principal, session, access_key.
    instances: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=LAUNCHES))


def build_profile(
    dataset: Dataset,
    target: str,
    config: Config,
    geo=None,
    scope: tuple[datetime, datetime] | None = None,
    baseline_days: int | None = None,
    intel=None,
    detect: bool = True,
) -> Profile:
    """The profile of the entity `target` names (see lookup.resolve) over the scope window: the one
    given, else the span of the entity's findings (sleuth's own too, unless `detect` is False),
    else the last `scope_hours` of the data."""
    act.warm_geo(geo, dataset, config)
    if detect:
        from sleuth.correlate.detect import with_detections

        dataset = with_detections(dataset, config, geo, intel)
    flows = dataset.frames["flows"]
    entity = locate(target, dataset.events, flows, dataset.frames["finding_entities"])
    findings = related_findings(dataset, entity)
    span = None if scope else finding_span(findings, config)
    window = resolve_scope(last_record(dataset), config, scope or span, baseline_days)
    # Read once (the row and the window), only the columns a profile reads: the JSON texts are the bulk
    # of a record; only responses to sign-ins (did it fail?) and launches (of which instance?) are read.
    everything = (
        dataset.events.filter(events_of(entity))
        .select(*_PROFILED, _response_if(["ConsoleLogin", "RunInstances"]))
        .collect()
    )
    events = everything.filter((pl.col("time") >= window.baseline_start) & (pl.col("time") < window.end))
    activity = act.calls(events)
    scoped = activity.filter(window.in_scope())
    lineage_events = _lineage_events(dataset.events, entity, events)
    launches = instance_launches(lineage_events)
    own = launches.filter(pl.col("instance_id") == entity.id) if entity.type == "Ec2Instance" else launches.clear()
    row = entity_row(entity, everything.lazy(), flows, own["interface_id"].drop_nulls().to_list())
    links = with_usage(credential_links(lineage_events), dataset.events)
    instances = own if entity.type == "Ec2Instance" else _launched(entity, links, launches)
    return Profile(
        entity=entity,
        scope=window,
        details=_details(entity, row, events, links, instances, _creation(lineage_events, entity)),
        volume=act.volume(activity, window, _first(row)),
        apis=act.by_api(scoped),
        addresses=act.with_geo(act.by_value(scoped, "ip"), geo),
        user_agents=act.by_value(scoped, "user_agent"),
        new=newly_observed_sets(dataset, activity, window, geo, row["account"][0] if len(row) else None),
        increased_volume=spikes(activity, window, config, ["api"], _first(row)),
        failure_spikes=spikes(activity.filter(pl.col("failed")), window, config, ["api"], _first(row)),
        roles=_resource_interaction(entity, links, events),
        flows=_flow_volume(flows, entity, instances, window),
        findings=findings,
        notes=_notes(activity, window, from_findings=span is not None),
        instances=instances,
    )


_PROFILED = ["event_id", "time", "account", "service", "action", "error_code", "actor_type", "principal", "session",
             "access_key", "src_ip", "user_agent", "resources"]  # fmt: skip


def _response_if(actions: list[str]) -> pl.Expr:
    return pl.when(pl.col("action").is_in(actions)).then(pl.col("response")).alias("response")


def _first(row: pl.DataFrame) -> datetime | None:
    return row["first_seen"].min() if len(row) else None


def _lineage_events(events: pl.LazyFrame, entity: EntityRef, own: pl.DataFrame) -> pl.LazyFrame:
    """The events credential lineage needs for this entity (a superset; _resource_interaction picks):
    the credential-issuing events made by it, its sessions or keys, or that name it (AssumeRole of a
    role: its ARN in the request; CreateAccessKey / CreateUser / CreateRole: the name in the request;
    the issuing of a key or session: in the response); a principal's own events (the keys it used
    after a console sign-in); and every RunInstances (for instance_launches). Only the columns lineage
    reads, request and response only where it reads them."""
    sessions = own["session"].drop_nulls().unique().implode()
    keys = own["access_key"].drop_nulls().unique().implode()
    actions = [*ISSUING, "CreateUser", "CreateRole"]
    by_it = (pl.col("principal") == entity.id) | pl.col("session").is_in(sessions) | pl.col("access_key").is_in(keys)
    named = re.search(r":(?:user|role)/(?:.*/)?([^/]+)$", entity.id)
    if entity.type in ("AwsUser", "AwsRole") and named:
        by_it = by_it | pl.col("request").str.contains_any([entity.id, named.group(1)]).fill_null(False)
    if entity.type in ("AccessKey", "AwsRoleSession", "FederatedUser"):
        by_it = by_it | pl.col("response").str.contains_any([entity.id]).fill_null(False)
    condition = (pl.col("action").is_in(actions) & by_it) | (pl.col("action") == "RunInstances")
    if entity.type in PRINCIPAL_TYPES:
        condition = condition | (pl.col("principal") == entity.id)
    if entity.type in ("AwsRoleSession", "AccessKey"):  # their principal's console sign-ins and keys
        condition = condition | pl.col("principal").is_in(own["principal"].drop_nulls().unique().implode())
    needed = pl.col("action").is_in([*actions, "RunInstances"])
    columns = ["time", "event_id", "account", "principal", "session", "access_key", "src_ip", "action", "error_code"]
    return (
        events.filter(condition.fill_null(False))
        .select(
            *columns,
            pl.when(needed).then(pl.col("request")).alias("request"),
            pl.when(needed).then(pl.col("response")).alias("response"),
        )
        .collect()  # read once, not once per lineage step
        .lazy()
    )


def _details(
    entity: EntityRef,
    row: pl.DataFrame,
    events: pl.DataFrame,
    links: pl.DataFrame,
    instances: pl.DataFrame,
    creation: dict | None,
) -> dict:
    info = row.to_dicts()[0] if len(row) else {}
    created = links.filter((pl.col("issued_to") == entity.id) | (pl.col("issued_key") == entity.id))
    details = {
        "type": entity.type,
        "id": entity.id,
        "category": entity.category,
        "account": info.get("account"),
        "first_seen": info.get("first_seen"),
        "last_seen": info.get("last_seen"),
        "events": info.get("events", 0),
        "failures": info.get("failures", 0),
        "owner": info.get("owner"),
        "created_by": _creator(entity, created, instances, creation),
        "access_keys": sorted(events["access_key"].drop_nulls().unique().to_list())[:50],
        "sessions": sorted(events["session"].drop_nulls().unique().to_list())[:50],
        "principals": sorted(events["principal"].drop_nulls().unique().to_list())[:50],
    }
    if entity.type == "Ec2Instance":
        details["interfaces"] = sorted(instances["interface_id"].drop_nulls().unique().to_list())
        details["private_ips"] = sorted(instances["private_ip"].drop_nulls().unique().to_list())
    return details


def _creator(entity: EntityRef, created: pl.DataFrame, instances: pl.DataFrame, creation: dict | None) -> str | None:
    """Who created the entity, when the data shows it: the issuer of a key or session, the launcher of
    an instance, the caller of CreateUser / CreateRole; else none."""
    if entity.type == "AccessKey" and len(created):
        return created["caller"][0]
    if entity.type == "AwsRoleSession":
        issued = created.filter(pl.col("issued_session") == entity.id)
        if len(issued):
            return issued["caller"][0]
    if entity.type == "Ec2Instance" and len(instances):
        return instances.sort("time")["principal"][0]
    return (creation or {}).get("principal")


def _creation(events: pl.LazyFrame, entity: EntityRef) -> dict | None:
    """The CreateUser / CreateRole event of an IAM user or role (the first successful one), if logged."""
    kind = re.match(r"^arn:aws[\w-]*:iam::(\d+):(user|role)/(?:.*/)?([^/]+)$", entity.id)
    if entity.type not in ("AwsUser", "AwsRole") or kind is None:
        return None
    account, what, name = kind.groups()
    action, field_name = ("CreateUser", "userName") if what == "user" else ("CreateRole", "roleName")
    found = (
        events.filter((pl.col("action") == action) & pl.col("error_code").is_null() & (pl.col("account") == account))
        .filter(pl.col("request").str.json_path_match(f"$.{field_name}") == name)
        .select("time", "principal", "event_id")
        .sort("time")
        .head(1)
        .collect()
    )
    return found.to_dicts()[0] if len(found) else None


def _launched(entity: EntityRef, links: pl.DataFrame, launches: pl.DataFrame) -> pl.DataFrame:
    """Instances a principal, session or key launched itself, or with credentials it issued (the keys
    and sessions it obtained, the users it made access keys for)."""
    if launches.is_empty() or entity.type not in (*PRINCIPAL_TYPES, "AwsRoleSession", "AccessKey"):
        return launches.clear()
    issued = links.filter(
        (pl.col("caller") == entity.id) | (pl.col("caller_session") == entity.id) | (pl.col("caller_key") == entity.id)
    )
    users = issued.filter(pl.col("kind") == "access_key")["issued_to"].drop_nulls().implode()
    keys = issued["issued_key"].drop_nulls().implode()
    sessions = issued["issued_session"].drop_nulls().implode()
    mine = {
        "AccessKey": pl.col("access_key") == entity.id,
        "AwsRoleSession": pl.col("session") == entity.id,
    }.get(entity.type, pl.col("principal") == entity.id)
    by_issued = pl.col("access_key").is_in(keys) | pl.col("session").is_in(sessions) | pl.col("principal").is_in(users)
    return launches.filter((mine | by_issued).fill_null(False)).sort("time", "instance_id")


def newly_observed_sets(
    dataset: Dataset, activity: pl.DataFrame, scope: Scope, geo, account: str | None = None
) -> dict[str, pl.DataFrame]:
    """Detective's four "newly observed" panels, each with the account's baseline for the "new for the
    account" flag (the whole data's when `account` is not given)."""
    baseline = dataset.events.filter(scope.in_baseline())
    if account is not None:
        baseline = baseline.filter(pl.col("account") == account)
    raw_ips, account_agents, raw_apis = pl.collect_all(
        [
            baseline.select(pl.col("src_ip")).unique(),
            baseline.select(pl.col("user_agent")).unique(),
            baseline.select("service", "action").unique(),
        ]
    )  # the distinct raw values first: normalizing them is then cheap
    account_ips = raw_ips.select(normalized_ip().alias("ip")).unique()
    account_apis = raw_apis.select(api_name().alias("api")).unique()
    located = act.with_geo(activity, geo)
    account_located = act.with_geo(account_ips, geo)
    new_geo = newly_observed(located, account_located.select("location"), scope, "location")
    new_geo = new_geo.join(
        located.filter(scope.in_scope()).group_by("location").agg(pl.col("ip").drop_nulls().unique().sort()),
        left_on="value",
        right_on="location",
        how="left",
    ).rename({"ip": "addresses"})
    return {
        "geolocations": new_geo,
        "asos": newly_observed(located, account_located.select("aso"), scope, "aso"),
        "user_agents": newly_observed(activity, account_agents, scope, "user_agent"),
        "api_calls": newly_observed(activity, account_apis, scope, "api"),
        "addresses": newly_observed(activity, account_ips, scope, "ip"),
    }


def _resource_interaction(entity: EntityRef, links: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """Role assumptions: for a role, who assumed it; for a caller, the roles and keys it obtained."""
    sessions = events["session"].drop_nulls().unique().implode()
    keys = events["access_key"].drop_nulls().unique().implode()
    mine = (
        (pl.col("caller") == entity.id)
        | (pl.col("role") == entity.id)
        | (pl.col("issued_to") == entity.id)
        | pl.col("caller_session").is_in(sessions)
        | pl.col("caller_key").is_in(keys)
        | (pl.col("issued_key") == entity.id)
        | (pl.col("issued_session") == entity.id)
    )
    related = links.filter(mine.fill_null(False))
    return (
        related.group_by("kind", "caller", "role", "issued_to", "cross_account")
        .agg(
            pl.len().alias("count"),
            pl.col("time").min().alias("first_seen"),
            pl.col("time").max().alias("last_seen"),
            pl.col("issued_session").drop_nulls().unique().sort().alias("sessions"),
            pl.col("issued_key").drop_nulls().unique().sort().alias("keys"),
            pl.col("events").sum().alias("events_with_credentials"),
        )
        .sort("first_seen", "kind", "caller")
    )


def _flow_volume(flows: pl.LazyFrame, entity: EntityRef, instances: pl.DataFrame, scope: Scope) -> pl.DataFrame:
    """Per peer, local/remote port, protocol and direction: bytes in/out, accepted and rejected flows.

    An address's own flows; an instance's (by id, or by the interfaces it was launched with); for a
    principal, the flows of the instances it launched."""
    schema = {
        "peer": pl.String, "local_port": pl.Int32, "remote_port": pl.Int32, "protocol": pl.Int32,
        "direction": pl.String, "bytes_in": pl.Int64, "bytes_out": pl.Int64, "accepted": pl.UInt32,
        "rejected": pl.UInt32, "first_seen": pl.Datetime("us", "UTC"), "last_seen": pl.Datetime("us", "UTC"),
    }  # fmt: skip
    interfaces = instances["interface_id"].drop_nulls().unique().to_list()
    if entity.type in ("IpAddress", "Ec2Instance"):
        condition = flows_of(entity, interfaces)
    elif len(instances):
        ids = instances["instance_id"].unique().implode()
        condition = pl.col("instance_id").is_in(ids) | pl.col("interface_id").is_in(interfaces)
    else:
        condition = None
    if condition is None:
        return pl.DataFrame(schema=schema)
    frame = flows.filter(condition & scope.in_scope("start")).collect()
    if entity.type == "IpAddress":  # seen from the address: the other end is its peer
        frame = frame.with_columns(_outbound=pl.col("src_addr") == entity.id)
    else:
        frame = orient(frame)
    out = pl.col("_outbound")
    oriented = frame.select(
        pl.when(out).then("dst_addr").otherwise("src_addr").alias("peer"),
        pl.when(out).then("src_port").otherwise("dst_port").alias("local_port"),
        pl.when(out).then("dst_port").otherwise("src_port").alias("remote_port"),
        "protocol",
        pl.when(out).then(pl.lit("outbound")).otherwise(pl.lit("inbound")).alias("direction"),
        pl.when(out).then(0).otherwise("bytes").alias("bytes_in"),
        pl.when(out).then("bytes").otherwise(0).alias("bytes_out"),
        (pl.col("action") == "ACCEPT").alias("accept"),
        "start",
    )
    return (
        oriented.group_by("peer", "local_port", "remote_port", "protocol", "direction")
        .agg(
            pl.col("bytes_in").sum(),
            pl.col("bytes_out").sum(),
            pl.col("accept").sum().alias("accepted"),
            (~pl.col("accept")).sum().alias("rejected"),
            pl.col("start").min().alias("first_seen"),
            pl.col("start").max().alias("last_seen"),
        )
        .with_columns((pl.col("bytes_in") + pl.col("bytes_out")).alias("_total"))
        .sort(["_total", "peer", "direction", "local_port"], descending=[True, False, False, False])
        .drop("_total")
        .cast(schema)
    )


def related_findings(dataset: Dataset, entity: EntityRef) -> pl.DataFrame:
    """Findings that name the entity (any role), most severe first."""
    ids = (
        dataset.frames["finding_entities"]
        .filter(pl.col("entity_id") == entity.id)
        .select("finding_id", "role")
        .unique()
        .collect()
    )
    findings = dataset.frames["findings"].filter(pl.col("finding_id").is_in(ids["finding_id"].implode())).collect()
    return (
        findings.join(ids.group_by("finding_id").agg(pl.col("role").sort().str.join(", ")), on="finding_id")
        .select(
            "finding_id", "producer", "type", "title", "severity", "severity_label", "first_seen", "last_seen", "role"
        )
        .sort(["severity", "last_seen"], descending=True)
    )


def _notes(activity: pl.DataFrame, scope: Scope, from_findings: bool = False) -> list[str]:
    notes = []
    if from_findings:
        notes.append("the scope is the span of the entity's Medium-or-above findings; --scope START..END sets another")
    if activity.filter(scope.in_baseline()).is_empty():
        notes.append("no activity in the baseline window: everything in the scope is newly observed")
    if activity.filter(scope.in_scope()).is_empty():
        notes.append("no activity in the scope window: widen it with --scope START..END")
    return notes
