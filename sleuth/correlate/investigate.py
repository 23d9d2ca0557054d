"""`sleuth investigate TARGET`: how it happened, where it started, what to do now.

A target is a finding id (GuardDuty's or sleuth's), a finding group id, or an entity (ARN, user or
role name, role session, access key, IP address, instance id). The investigation:
1. sets the scope (a finding's span padded by `investigate_margin_hours`; a group's span; an
   entity's findings of Medium or above chained in time, padded (baseline.finding_span); else
   `--scope`/`--last`/the last 24 h of the data) and the baseline (the `baseline_days` before it);
2. gathers the incident: the target's identities and the credentials lineage ties to them (keys
   they created, sessions they started, users they made), their events in the scope, the addresses
   the attack came from, and the flows of those addresses and of the instances involved;
3. derives Detective's indicators and sleuth's own (sleuth/correlate/indicators.py), the severity
   and the story (sleuth/correlate/story.py), and the remediation (sleuth/correlate/remediation.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:  # networkx loads in ~0.1 s: imported where a graph is built
    import networkx as nx

from sleuth import __version__
from sleuth.config import Config
from sleuth.correlate import indicators as ind
from sleuth.correlate import remediation, story
from sleuth.correlate.baseline import Scope, finding_span, last_record, resolve_scope
from sleuth.correlate.entities import (
    PRINCIPAL_TYPES,
    EntityRef,
    events_of,
    instance_launches,
    normalized_ip,
    short_id,
)
from sleuth.correlate.flows import interface_ends
from sleuth.correlate.graph import event_edges, flow_edges, lineage_edges
from sleuth.correlate.groups import Group, find_groups
from sleuth.correlate.lineage import links_for
from sleuth.correlate.lookup import locate
from sleuth.errors import NotFoundError, UsageError
from sleuth.netaddr import is_external, parse_ip


@dataclass
class Incident:
    """What the investigation is about: identities, addresses, instances and their records."""

    principals: set[str] = field(default_factory=set)  # user and role ARNs
    sessions: set[str] = field(default_factory=set)
    keys: set[str] = field(default_factory=set)
    addresses: set[str] = field(default_factory=set)  # the attacker's addresses (public)
    hosts: set[str] = field(default_factory=set)  # internal addresses investigated (an instance's, an endpoint's)
    instances: set[str] = field(default_factory=set)
    events: pl.DataFrame = field(default_factory=pl.DataFrame)  # in the scope
    earlier: pl.DataFrame = field(default_factory=pl.DataFrame)  # from the attacker's addresses, before it
    flows: pl.DataFrame = field(default_factory=pl.DataFrame)
    flow_ends: pl.DataFrame | None = None  # flows.interface_ends of the flows' interfaces, to orient them
    links: pl.DataFrame = field(default_factory=pl.DataFrame)  # credential lineage of the identities


@dataclass
class Investigation:
    target: dict
    scope: Scope
    severity: float
    severity_reasons: list[str]
    summary: str
    first_intrusion: dict | None
    indicators: list[dict]
    timeline: pl.DataFrame
    daily: pl.DataFrame
    resources: pl.DataFrame
    entities: list[dict]
    findings: pl.DataFrame
    groups: list[dict]
    graph: nx.MultiDiGraph
    remediation: list[dict]
    prevention: list[dict]
    inputs: list[dict]
    run: dict

    @property
    def severity_label(self) -> str:
        from sleuth.severity import severity_label

        return severity_label(self.severity) or "Informational"


def now() -> datetime:
    """The time of the run; SOURCE_DATE_EPOCH fixes it for reproducible reports (and golden tests)."""
    fixed = os.environ.get("SOURCE_DATE_EPOCH")
    if fixed and fixed.isdigit():
        return datetime.fromtimestamp(int(fixed), UTC)
    return datetime.now(UTC).replace(microsecond=0)


def investigate(
    dataset,
    target: str,
    config: Config,
    geo=None,
    intel=None,
    scope: tuple[datetime, datetime] | None = None,
    baseline_days: int | None = None,
) -> Investigation:
    from sleuth.correlate import activity
    from sleuth.correlate.detect import with_detections

    activity.warm_geo(geo, dataset, config)
    dataset = with_detections(dataset, config, geo, intel)
    findings = dataset.frames["findings"].collect()
    finding_entities = dataset.frames["finding_entities"].collect()
    links = links_for(dataset, config)
    groups = find_groups(dataset, config, geo, intel, detect=False, links=links).groups
    seeds, window, described = _target(dataset, target, findings, finding_entities, groups, config, scope)
    window = Scope(
        window[0],
        window[1],
        window[0] - timedelta(days=config.baseline_days if baseline_days is None else baseline_days),
    )
    incident = gather(dataset, seeds, window, links, finding_entities, findings)
    pinned = _target_findings(described, groups)
    related = ind.related_findings(findings, finding_entities, incident, window, pinned)
    related_groups = [g for g in groups if set(g.finding_ids) & set(related["finding_id"].to_list())]
    indicators = ind.all_indicators(dataset, incident, window, config, geo, intel, related, related_groups)
    severity, reasons = story.severity(indicators, related, incident)
    first = story.first_intrusion(incident)
    moment = now()
    return Investigation(
        target=described,
        scope=window,
        severity=severity,
        severity_reasons=reasons,
        summary=story.summary(described, incident, indicators, first, severity),
        first_intrusion=first,
        indicators=indicators,
        timeline=story.timeline(incident),
        daily=story.daily(incident),
        resources=story.resources(incident),
        entities=_entities(incident),
        findings=related,
        groups=[{"id": g.id, "title": g.title, "severity_label": g.severity_label} for g in related_groups],
        graph=incident_graph(incident, related, finding_entities),
        remediation=remediation.steps(incident, indicators, moment),
        prevention=remediation.prevention(incident, indicators, related),
        inputs=[_input(report) for report in dataset.inputs],
        run={
            "sleuth_version": __version__,
            "time": moment,
            "parameters": {
                "target": target,
                "scope_given": scope is not None,
                "baseline_days": config.baseline_days if baseline_days is None else baseline_days,
                "margin_hours": config.investigate_margin_hours,
            },
        },
    )


# --- the target and its scope ----------------------------------------------------------------


def _target(dataset, target, findings, finding_entities, groups: list[Group], config: Config, scope):
    """(seed entities, (scope start, end), description) for a finding id, group id or entity."""
    margin = timedelta(hours=config.investigate_margin_hours)
    text = target.strip()
    finding = findings.filter(pl.col("finding_id") == text)
    if finding.is_empty() and len(text) >= 8:
        finding = findings.filter(pl.col("finding_id").str.starts_with(text))
    if len(finding) == 1:
        row = finding.row(0, named=True)
        seeds = _refs(finding_entities.filter(pl.col("finding_id") == row["finding_id"]))
        span = scope or (row["first_seen"] - margin, (row["last_seen"] or row["first_seen"]) + margin)
        return seeds, span, {"kind": "finding", "id": row["finding_id"], "type": row["type"], "title": row["title"]}
    group = [g for g in groups if g.id == text.lower()] or [
        g for g in groups if len(text) >= 8 and g.id.startswith(text)
    ]
    if len(group) == 1:
        chosen = group[0]
        seeds = _refs(chosen.entity_rows)
        span = scope or (chosen.first_seen, chosen.last_seen + timedelta(seconds=1))
        return seeds, span, {"kind": "group", "id": chosen.id, "type": "FindingGroup", "title": chosen.title}
    try:
        entity = locate(text, dataset.events, dataset.frames["flows"], dataset.frames["finding_entities"])
    except NotFoundError as exc:
        raise NotFoundError(
            f"{target!r} is no finding id, finding group id or entity in the data", exc.fix or ""
        ) from None
    if entity.type == "AwsAccount":
        raise UsageError(
            f"{entity.id} is an account: an investigation follows identities, addresses and instances",
            "sleuth summary shows the account's busiest and failing principals and sleuth groups its incidents; "
            "investigate one of those",
        )
    span = scope or _entity_span(entity, findings, finding_entities, dataset, config)
    return [entity], span, {"kind": "entity", "id": entity.id, "type": entity.type, "title": None}


def _target_findings(described: dict, groups: list[Group]) -> list[str]:
    """The findings the target is made of (a finding, a group's): always in the report, even when the
    data holds no event of theirs (a GuardDuty export alone)."""
    if described["kind"] == "finding":
        return [described["id"]]
    if described["kind"] == "group":
        return next((list(g.finding_ids) for g in groups if g.id == described["id"]), [])
    return []


def _entity_span(entity: EntityRef, findings, finding_entities, dataset, config: Config) -> tuple[datetime, datetime]:
    """The span of the entity's Medium-or-above findings (baseline.finding_span); else the last
    `scope_hours` of the data."""
    named = finding_entities.filter(pl.col("entity_id") == entity.id)["finding_id"].implode()
    span = finding_span(findings.filter(pl.col("finding_id").is_in(named)), config)
    if span:
        return span
    window = resolve_scope(last_record(dataset), config)
    return window.start, window.end


def _refs(rows: pl.DataFrame) -> list[EntityRef]:
    """A finding's or group's entities as seeds, without the addresses that are its target's own (an
    instance's public address is the victim's, not where the attack came from)."""
    own = (pl.col("entity_type") == "IpAddress") & (pl.col("role") == "target")
    seeds = rows.filter(~own.fill_null(False)) if "role" in rows.columns else rows
    return [EntityRef(t, i) for t, i in seeds.select("entity_type", "entity_id").unique().sort(pl.all()).iter_rows()]


# --- the incident ----------------------------------------------------------------------------


def gather(dataset, seeds: list[EntityRef], scope: Scope, links: pl.DataFrame, finding_entities, findings) -> Incident:
    incident = Incident()
    for seed in seeds:
        _add(incident, seed)
    in_scope = dataset.events.filter(scope.in_scope())
    used = [seed for seed in seeds if seed.type in _USED_BY]
    if used:
        # An address, a bucket or a user agent as target: the identities that used it are the incident's.
        users = in_scope.filter(pl.any_horizontal([events_of(seed) for seed in used]).fill_null(False))
        for principal, session in users.select("principal", "session").unique().collect().iter_rows():
            if principal and principal.startswith("arn:"):
                incident.principals.add(principal)
            if session:
                incident.sessions.add(session)
    launches = instance_launches(dataset.events)
    if incident.hosts:  # an internal address: the instance launched with it
        incident.instances |= set(launches.filter(pl.col("private_ip").is_in(list(incident.hosts)))["instance_id"])
    if incident.instances:
        # An instance as target (or its address): whoever launched it, and the key they used, belongs to its story.
        launched = launches.filter(pl.col("instance_id").is_in(list(incident.instances)))
        incident.principals |= set(launched["principal"].drop_nulls().to_list())
        incident.keys |= set(launched["access_key"].drop_nulls().to_list())
    created = _users_created(in_scope, incident)
    _follow_lineage(incident, links, scope, created)
    condition = _identity_condition(incident)
    incident.events = in_scope.filter(condition).sort("time", "event_id").collect()
    incident.addresses |= _attacker_addresses(incident, finding_entities, findings, scope)
    if incident.addresses:
        from_attacker = normalized_ip().is_in(list(incident.addresses))
        incident.earlier = (
            dataset.events.filter((pl.col("time") < scope.start) & (pl.col("time") >= scope.baseline_start))
            .filter(from_attacker & (condition | pl.lit(not incident.principals)))
            .sort("time", "event_id")
            .collect()
        )
    else:
        incident.earlier = incident.events.head(0)
    incident.instances |= _instances(incident)
    interfaces = launches.filter(pl.col("instance_id").is_in(list(incident.instances)))["interface_id"]
    incident.flows = _flows(dataset, incident, scope, interfaces.drop_nulls().unique().to_list())
    if not incident.flows.is_empty():
        seen = incident.flows["interface_id"].drop_nulls().unique().to_list()
        incident.flow_ends = interface_ends(dataset.frames["flows"], seen, scope.in_scope("start"))
    incident.links = links.filter(
        pl.col("caller").is_in(list(incident.principals))
        | pl.col("caller_session").is_in(list(incident.sessions))
        | pl.col("issued_key").is_in(list(incident.keys))
    )
    return incident


_USED_BY = ("IpAddress", "S3Bucket", "UserAgent")  # targets investigated through the identities that used them


def _add(incident: Incident, entity: EntityRef) -> None:
    if entity.type in PRINCIPAL_TYPES:
        incident.principals.add(entity.id)
    elif entity.type == "AwsRoleSession":
        incident.sessions.add(entity.id)
    elif entity.type == "AccessKey":
        incident.keys.add(entity.id)
    elif entity.type == "IpAddress":
        address = parse_ip(entity.id)
        if address is not None:
            (incident.addresses if is_external(address) else incident.hosts).add(str(address))
    elif entity.type == "Ec2Instance":
        incident.instances.add(entity.id)


def _users_created(in_scope: pl.LazyFrame, incident: Incident) -> set[str]:
    """Users the incident's principals created in the scope (the attacker's own persistence)."""
    made = (
        in_scope.filter(
            (pl.col("action") == "CreateUser")
            & pl.col("error_code").is_null()
            & pl.col("principal").is_in(list(incident.principals))
        )
        .select("account", pl.col("request").str.json_path_match("$.userName").alias("name"))
        .collect()
    )
    return {f"arn:aws:iam::{account}:user/{name}" for account, name in made.iter_rows() if name}


def _follow_lineage(incident: Incident, links: pl.DataFrame, scope: Scope, created: set[str]) -> None:
    """Add what the incident's identities obtained in the scope: the keys and sessions, and the users
    they created and then gave keys to. An existing user given a key stays out: the key is followed."""
    for _ in range(4):  # role chains are short; four hops cover them
        before = (len(incident.principals), len(incident.sessions), len(incident.keys))
        mine = links.filter(
            (
                pl.col("caller").is_in(list(incident.principals))
                | pl.col("caller_session").is_in(list(incident.sessions))
            )
            & (pl.col("time") < scope.end)
            & (pl.col("time") >= scope.start)
        )
        for row in mine.iter_rows(named=True):
            if row["issued_key"]:
                incident.keys.add(row["issued_key"])
            if row["issued_session"]:
                incident.sessions.add(row["issued_session"])
            if row["kind"] == "access_key" and row["issued_to"] in created:
                incident.principals.add(row["issued_to"])
        if (len(incident.principals), len(incident.sessions), len(incident.keys)) == before:
            return


def _identity_condition(incident: Incident) -> pl.Expr:
    parts = [
        pl.col("principal").is_in(list(incident.principals)),
        pl.col("session").is_in(list(incident.sessions)),
        pl.col("access_key").is_in(list(incident.keys)),
    ]
    if incident.instances:
        parts.append(pl.col("session").str.extract(r":(i-[0-9a-f]+)$", 1).is_in(list(incident.instances)))
    if not (incident.principals or incident.sessions or incident.keys or incident.instances):
        parts.append(normalized_ip().is_in(list(incident.addresses | incident.hosts)))
    return pl.any_horizontal(parts).fill_null(False)


def _attacker_addresses(incident: Incident, finding_entities, findings, scope: Scope) -> set[str]:
    """Public addresses the attack came from: those the incident's serious findings name as an actor
    or a network peer (not as a target: an instance's own public address is no attacker's)."""
    found: set[str] = set()
    serious = findings.filter(
        (pl.col("severity") >= 4) & (pl.col("first_seen") < scope.end) & (pl.col("last_seen") >= scope.start)
    )["finding_id"]
    ids = set(incident.principals) | set(incident.sessions) | set(incident.keys) | set(incident.instances)
    involved = finding_entities.filter(pl.col("finding_id").is_in(serious.implode()))
    mine = involved.filter(pl.col("entity_id").is_in(list(ids)))["finding_id"].unique()
    for (address,) in (
        involved.filter(
            pl.col("finding_id").is_in(mine.implode())
            & (pl.col("entity_type") == "IpAddress")
            & (pl.col("role") != "target")
        )
        .select("entity_id")
        .iter_rows()
    ):
        parsed = parse_ip(address)
        if parsed is not None and is_external(parsed):
            found.add(str(parsed))
    return found


def _instances(incident: Incident) -> set[str]:
    """Instances the incident touched: role sessions of instances, and instances it launched."""
    events = incident.events
    if events.is_empty():
        return set()
    sessions = events["session"].drop_nulls().str.extract(r":(i-[0-9a-f]{8,17})$", 1).drop_nulls().to_list()
    launched = (
        events.filter((pl.col("action") == "RunInstances") & pl.col("error_code").is_null())["response"]
        .drop_nulls()
        .str.extract_all(r'"instanceId":\s*"(i-[0-9a-f]{8,17})"')
        .explode()
        .drop_nulls()
        .str.extract(r"(i-[0-9a-f]+)", 1)
        .to_list()
    )
    return set(sessions) | set(launched)


def _flows(dataset, incident: Incident, scope: Scope, interfaces: list[str]) -> pl.DataFrame:
    """Flows of the attacker's addresses and of the incident's instances (by id, or by the network
    interfaces they were launched with: flows often name only the interface), in the scope."""
    parts = []
    if interfaces:
        parts.append(pl.col("interface_id").is_in(interfaces))
    if incident.addresses or incident.hosts:
        addresses = list(incident.addresses | incident.hosts)
        parts.append(pl.col("src_addr").is_in(addresses) | pl.col("dst_addr").is_in(addresses))
    if incident.instances:
        parts.append(pl.col("instance_id").is_in(list(incident.instances)))
    flows = dataset.frames["flows"]
    if not parts:
        return flows.head(0).collect()
    return flows.filter(scope.in_scope("start") & pl.any_horizontal(parts)).sort("start").collect()


def _entities(incident: Incident) -> list[dict]:
    from sleuth.correlate.entities import CATEGORIES

    rows = [("AwsRole" if ":role/" in p else "AwsUser", p) for p in sorted(incident.principals)]
    rows += [("AwsRoleSession", s) for s in sorted(incident.sessions)]
    rows += [("AccessKey", k) for k in sorted(incident.keys)]
    rows += [("IpAddress", a) for a in sorted(incident.addresses)]
    rows += [("Ec2Instance", i) for i in sorted(incident.instances)]
    return [{"type": t, "id": i, "category": CATEGORIES.get(t, "Other")} for t, i in rows]


def _input(report) -> dict:
    return {
        "path": report.path,
        "sha256": report.sha256,
        "size": report.size,
        "format": report.format,
        "kept": report.kept,
    }


# --- the graph -------------------------------------------------------------------------------

_GRAPH_MAX = 40


def incident_graph(incident: Incident, related: pl.DataFrame, finding_entities: pl.DataFrame) -> nx.MultiDiGraph:
    """Identities, keys, addresses, instances and findings of the incident, and how they connect."""
    import networkx as nx

    from sleuth.correlate.graph import add_edges, finding_edges

    graph = nx.MultiDiGraph()
    edges = event_edges(incident.events.lazy()) if not incident.events.is_empty() else None
    if edges is not None:
        add_edges(graph, edges.filter(~pl.col("edge").is_in(["used_agent", "in_account", "via_service"])))
    if not incident.links.is_empty():
        add_edges(graph, lineage_edges(incident.links))
    if not incident.flows.is_empty():
        add_edges(graph, flow_edges(incident.flows.lazy()).drop("bytes"))
    if not related.is_empty():
        named = finding_entities.filter(
            pl.col("entity_type").is_in(
                ["IpAddress", "AccessKey", "Ec2Instance", "AwsUser", "AwsRole", "AwsRoleSession"]
            )
        )
        add_edges(graph, finding_edges(related.lazy(), named.lazy()).drop("role"))
    keep = {n for n in graph.nodes if graph.nodes[n]["type"] not in ("UserAgent", "AwsAccount")}
    if len(keep) > _GRAPH_MAX:
        ranked = sorted(keep, key=lambda n: (-graph.degree(n), n))
        keep = set(ranked[:_GRAPH_MAX])
    graph = graph.subgraph(keep).copy()
    kinds = {row["finding_id"]: f"[{row['severity_label']}] {row['title']}" for row in related.iter_rows(named=True)}
    for _, data in graph.nodes(data=True):
        text = data["id"]
        if data["type"] == "Finding":
            data["label"] = kinds.get(text, text)[:80]
            data["severity"] = next(
                (r["severity"] for r in related.iter_rows(named=True) if r["finding_id"] == text), 0
            )
        else:
            data["label"] = short_id(text)
    for _, _, data in graph.edges(data=True):
        data["label"] = data.get("edge", "").replace("_", " ")
    return graph
