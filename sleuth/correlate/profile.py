"""Entity profiles (Detective's profile panels): what an entity did in the scope against its baseline."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import polars as pl

from sleuth.config import Config
from sleuth.correlate import activity as act
from sleuth.correlate.baseline import Scope, api_name, data_end, newly_observed, resolve_scope, spikes
from sleuth.correlate.entities import EntityRef, entity_index, events_of, flows_of, normalized_ip, resolve
from sleuth.correlate.lineage import credential_links, with_usage
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


def build_profile(
    dataset: Dataset,
    target: str,
    config: Config,
    geo=None,
    scope: tuple[datetime, datetime] | None = None,
    baseline_days: int | None = None,
) -> Profile:
    """The profile of the entity `target` names (see entities.resolve) over the scope window."""
    index = entity_index(dataset.events, dataset.frames["flows"])
    entity = resolve(target, index)
    window = resolve_scope(_last_time(dataset), config, scope, baseline_days)
    in_window = (pl.col("time") >= window.baseline_start) & (pl.col("time") < window.end)
    events = dataset.events.filter(in_window & events_of(entity)).collect()
    activity = act.calls(events)
    scoped = activity.filter(window.in_scope())
    row = index.filter((pl.col("entity_type") == entity.type) & (pl.col("entity_id") == entity.id))
    links = with_usage(credential_links(dataset.events), dataset.events)
    return Profile(
        entity=entity,
        scope=window,
        details=_details(entity, row, events, links),
        volume=act.volume(activity, window),
        apis=act.by_api(scoped),
        addresses=act.with_geo(act.by_value(scoped, "ip"), geo),
        user_agents=act.by_value(scoped, "user_agent"),
        new=newly_observed_sets(dataset, activity, window, geo),
        increased_volume=spikes(activity, window, config, ["api"], _first(row)),
        failure_spikes=spikes(activity.filter(pl.col("failed")), window, config, ["api"], _first(row)),
        roles=_resource_interaction(entity, links, events),
        flows=_flow_volume(dataset, entity, window),
        findings=related_findings(dataset, entity),
        notes=_notes(activity, window),
    )


def _last_time(dataset: Dataset) -> datetime | None:
    ends = [data_end(dataset.events), data_end(dataset.frames["flows"], "start")]
    known = [end for end in ends if end is not None]
    return max(known) if known else None


def _first(row: pl.DataFrame) -> datetime | None:
    return row["first_seen"].min() if len(row) else None


def _details(entity: EntityRef, row: pl.DataFrame, events: pl.DataFrame, links: pl.DataFrame) -> dict:
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
        "created_by": _creator(entity, events, created),
        "access_keys": sorted(events["access_key"].drop_nulls().unique().to_list())[:50],
        "sessions": sorted(events["session"].drop_nulls().unique().to_list())[:50],
        "principals": sorted(events["principal"].drop_nulls().unique().to_list())[:50],
    }
    return details


def _creator(entity: EntityRef, events: pl.DataFrame, created: pl.DataFrame) -> str | None:
    """Who created the entity, when the data shows it: the issuer of a key or session, else none."""
    if entity.type == "AccessKey" and len(created):
        return created["caller"][0]
    if entity.type == "AwsRoleSession":
        issued = created.filter(pl.col("issued_session") == entity.id)
        if len(issued):
            return issued["caller"][0]
    return None


def newly_observed_sets(dataset: Dataset, activity: pl.DataFrame, scope: Scope, geo) -> dict[str, pl.DataFrame]:
    """Detective's four "newly observed" panels, each with the whole account's baseline for the flag."""
    baseline = dataset.events.filter(scope.in_baseline())
    account_ips = baseline.select(normalized_ip().alias("ip")).unique().collect()
    account_agents = baseline.select(pl.col("user_agent")).unique().collect()
    account_apis = baseline.select(api_name().alias("api")).unique().collect()
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


def _flow_volume(dataset: Dataset, entity: EntityRef, scope: Scope) -> pl.DataFrame:
    """Per peer, local/remote port, protocol and direction: bytes in/out, accepted and rejected flows."""
    condition = flows_of(entity)
    schema = {
        "peer": pl.String, "local_port": pl.Int32, "remote_port": pl.Int32, "protocol": pl.Int32,
        "direction": pl.String, "bytes_in": pl.Int64, "bytes_out": pl.Int64, "accepted": pl.UInt32,
        "rejected": pl.UInt32, "first_seen": pl.Datetime("us", "UTC"), "last_seen": pl.Datetime("us", "UTC"),
    }  # fmt: skip
    if condition is None:
        return pl.DataFrame(schema=schema)
    flows = dataset.frames["flows"].filter(condition & scope.in_scope("start")).collect()
    if entity.type == "IpAddress":
        outbound = pl.col("src_addr") == entity.id
    else:
        local = _instance_addresses(flows)
        outbound = pl.col("src_addr").is_in(local.implode())
    oriented = flows.with_columns(outbound.alias("out")).select(
        pl.when("out").then("dst_addr").otherwise("src_addr").alias("peer"),
        pl.when("out").then("src_port").otherwise("dst_port").alias("local_port"),
        pl.when("out").then("dst_port").otherwise("src_port").alias("remote_port"),
        "protocol",
        pl.when("out").then(pl.lit("outbound")).otherwise(pl.lit("inbound")).alias("direction"),
        pl.when("out").then(0).otherwise("bytes").alias("bytes_in"),
        pl.when("out").then("bytes").otherwise(0).alias("bytes_out"),
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
        .sort(["_total", "peer"], descending=[True, False])
        .drop("_total")
        .cast(schema)
    )


def _instance_addresses(flows: pl.DataFrame) -> pl.Series:
    """An instance's own addresses: the private ones among its flows' ends (its interfaces' side)."""
    ends = pl.concat([flows["src_addr"], flows["dst_addr"]]).drop_nulls()
    private = ends.filter(ends.str.contains(r"^(10\.|172\.(1[6-9]|2\d|3[01])\.|192\.168\.|fd|fc)"))
    return private.unique()


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


def _notes(activity: pl.DataFrame, scope: Scope) -> list[str]:
    notes = []
    if activity.filter(scope.in_baseline()).is_empty():
        notes.append("no activity in the baseline window: everything in the scope is newly observed")
    if activity.filter(scope.in_scope()).is_empty():
        notes.append("no activity in the scope window: widen it with --scope START..END")
    return notes
