"""The behavior graph: entities as typed nodes, relationships as typed, directed, counted edges.

Nodes are keyed `<EntityType>:<id>` (see entities.EntityRef.key) and carry `type`, `id`,
`category` and `high_degree`. Edges of a networkx MultiDiGraph are keyed by relationship type and
carry `first_seen`, `last_seen` and `count`:

| edge           | from -> to                                   | source                      |
|----------------|----------------------------------------------|-----------------------------|
| used_key       | principal or session -> AccessKey            | events                      |
| session_of     | AwsRoleSession -> AwsRole                    | events                      |
| called_from    | principal or session -> IpAddress            | events                      |
| key_used_from  | AccessKey -> IpAddress                       | events                      |
| used_agent     | principal -> UserAgent                       | events                      |
| acted_on       | principal -> S3Bucket / AwsRole / AwsUser / Ec2Instance (attribute `actions`) | events |
| ran_as         | Ec2Instance -> AwsRoleSession (instance credentials) | events             |
| assumed        | caller principal or session -> AwsRole; -> issued AwsRoleSession | lineage  |
| created_key    | caller -> AccessKey (CreateAccessKey, STS tokens) | lineage                 |
| talked_to      | Ec2Instance (or IpAddress) -> IpAddress (bytes, flows) | VPC flows        |
| involves       | Finding -> entity (attribute `role`)         | finding_entities            |
| in_account     | principal -> AwsAccount                      | events                      |
| via_service    | principal or session -> AwsService (ec2.amazonaws.com, AWS Internal) | events |

The account itself, AWS services acting for principals (`AwsService`, a sourceIPAddress such as
ec2.amazonaws.com), and addresses, user agents, buckets or keys used by at least
`Config.high_degree_min` distinct identities (a NAT address, the console's user agent) are marked
`high_degree`: they say little about which incident an edge belongs to, so correlation discounts them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:  # networkx loads in ~0.1 s: imported where a graph is built
    import networkx as nx

from sleuth.config import Config
from sleuth.correlate.entities import (
    CATEGORIES,
    instance_of_session,
    normalized_ip,
    principal_type,
    resource_entity_columns,
)
from sleuth.correlate.flows import orient

_EDGE_COLUMNS = ["src_type", "src", "dst_type", "dst", "edge", "first_seen", "last_seen", "count"]


def _edges(frame: pl.LazyFrame, src_type: pl.Expr, src: pl.Expr, dst_type: pl.Expr, dst: pl.Expr, edge: str):
    return (
        frame.select(src_type.alias("src_type"), src.alias("src"), dst_type.alias("dst_type"), dst.alias("dst"), "time")
        .filter(pl.all_horizontal(pl.col("src", "dst", "src_type", "dst_type").is_not_null()))
        .group_by("src_type", "src", "dst_type", "dst")
        .agg(pl.col("time").min().alias("first_seen"), pl.col("time").max().alias("last_seen"), pl.len().alias("count"))
        .with_columns(pl.lit(edge).alias("edge"))
        .select(_EDGE_COLUMNS)
    )


def service_host() -> pl.Expr:
    """The AWS service that made a call on a principal's behalf: sourceIPAddress as a service host
    (ec2.amazonaws.com) or "AWS Internal"; null for addresses."""
    source = pl.col("src_ip").str.strip_chars()
    is_service = source.str.contains(r"(?i)^[a-z0-9.-]+\.amazonaws\.com(\.cn)?$") | (source == "AWS Internal")
    return pl.when(is_service).then(source)


def event_edges(events: pl.LazyFrame) -> pl.DataFrame:
    """The relationships CloudTrail shows, one row per (from, to, edge type)."""
    ptype, principal = principal_type(), pl.col("principal")
    session_type = pl.lit("AwsRoleSession")
    caller_type = pl.when(pl.col("session").is_not_null()).then(session_type).otherwise(ptype)
    caller = pl.coalesce("session", "principal")
    parts = [
        _edges(events, caller_type, caller, pl.lit("AccessKey"), pl.col("access_key"), "used_key"),
        _edges(events, session_type, pl.col("session"), ptype, principal, "session_of"),
        _edges(events, caller_type, caller, pl.lit("IpAddress"), normalized_ip(), "called_from"),
        _edges(
            events, pl.lit("AccessKey"), pl.col("access_key"), pl.lit("IpAddress"), normalized_ip(), "key_used_from"
        ),
        _edges(events, ptype, principal, pl.lit("UserAgent"), pl.col("user_agent"), "used_agent"),
        _edges(events, ptype, principal, pl.lit("AwsAccount"), pl.col("account"), "in_account"),
        _edges(events, pl.lit("Ec2Instance"), instance_of_session(), session_type, pl.col("session"), "ran_as"),
        _edges(events, caller_type, caller, pl.lit("AwsService"), service_host(), "via_service"),
    ]
    for entity_type, expr in resource_entity_columns().items():
        targets = events.select(ptype.alias("_t"), principal.alias("_p"), expr.alias("_r"), "time").explode("_r")
        parts.append(_edges(targets, pl.col("_t"), pl.col("_p"), pl.lit(entity_type), pl.col("_r"), "acted_on"))
    return pl.concat(parts).collect()


def lineage_edges(links: pl.DataFrame) -> pl.DataFrame:
    """Credential links as edges: who assumed which role and session, who created which key."""
    if links.is_empty():
        return pl.DataFrame(schema=dict.fromkeys(_EDGE_COLUMNS, pl.String)).cast(
            {"first_seen": pl.Datetime("us", "UTC"), "last_seen": pl.Datetime("us", "UTC"), "count": pl.UInt32}
        )
    lazy = links.lazy()
    caller_type = (
        pl.when(pl.col("caller_session").is_not_null())
        .then(pl.lit("AwsRoleSession"))
        .when(pl.col("caller").str.contains(":role/"))
        .then(pl.lit("AwsRole"))
        .otherwise(pl.lit("AwsUser"))
    )
    caller = pl.coalesce("caller_session", "caller")
    valid = lazy.filter(pl.col("caller").str.starts_with("arn:"))  # AWS services assuming roles link nothing
    parts = [
        _edges(valid, caller_type, caller, pl.lit("AwsRole"), pl.col("role"), "assumed"),
        _edges(valid, caller_type, caller, pl.lit("AwsRoleSession"), pl.col("issued_session"), "assumed"),
        _edges(valid, caller_type, caller, pl.lit("AccessKey"), pl.col("issued_key"), "created_key"),
    ]
    return pl.concat(parts).collect()


def flow_edges(flows: pl.LazyFrame) -> pl.DataFrame:
    """Who talked to whom in the flows: an instance (or its address) to each peer, with bytes. Each
    record is seen from its interface's side (flows.orient), as detections and investigations see it."""
    columns = ["instance_id", "interface_id", "src_addr", "dst_addr", "src_port", "dst_port", "flow_direction"]
    named = pl.col("instance_id").is_not_null()
    oriented = (
        orient(flows.select(*columns, "start", "bytes").collect())
        .lazy()
        .select(
            pl.when(named).then(pl.lit("Ec2Instance")).otherwise(pl.lit("IpAddress")).alias("src_type"),
            pl.when(named).then(pl.col("instance_id")).otherwise("_local").alias("src"),
            pl.lit("IpAddress").alias("dst_type"),
            pl.col("_peer").alias("dst"),
            pl.col("start").alias("time"),
            "bytes",
        )
    )
    return (
        oriented.filter(pl.col("src").is_not_null() & pl.col("dst").is_not_null() & (pl.col("src") != pl.col("dst")))
        .group_by("src_type", "src", "dst_type", "dst")
        .agg(
            pl.col("time").min().alias("first_seen"),
            pl.col("time").max().alias("last_seen"),
            pl.len().alias("count"),
            pl.col("bytes").sum().alias("bytes"),
        )
        .with_columns(pl.lit("talked_to").alias("edge"))
        .collect()
    )


def finding_edges(findings: pl.LazyFrame, finding_entities: pl.LazyFrame) -> pl.DataFrame:
    seen = findings.select("finding_id", "first_seen", "last_seen")
    return (
        finding_entities.filter(pl.col("entity_type") != "Finding")
        .join(seen, on="finding_id", how="inner")
        .select(
            pl.lit("Finding").alias("src_type"),
            pl.col("finding_id").alias("src"),
            pl.col("entity_type").alias("dst_type"),
            pl.col("entity_id").alias("dst"),
            pl.lit("involves").alias("edge"),
            pl.col("first_seen"),
            pl.col("last_seen").fill_null(pl.col("first_seen")),
            pl.lit(1, pl.UInt32).alias("count"),
            "role",
        )
        .unique(["src", "dst_type", "dst", "role"])
        .collect()
    )


def build_graph(
    events: pl.LazyFrame,
    config: Config,
    flows: pl.LazyFrame | None = None,
    findings: pl.LazyFrame | None = None,
    finding_entities: pl.LazyFrame | None = None,
    links: pl.DataFrame | None = None,
) -> nx.MultiDiGraph:
    frames = [event_edges(events)]
    if links is not None:
        frames.append(lineage_edges(links))
    if flows is not None:
        frames.append(flow_edges(flows))
    if findings is not None and finding_entities is not None:
        frames.append(finding_edges(findings, finding_entities))
    import networkx as nx

    graph = nx.MultiDiGraph()
    for frame in frames:
        add_edges(graph, frame)
    mark_high_degree(graph, config)
    return graph


def node_key(entity_type: str, entity_id: str) -> str:
    return f"{entity_type}:{entity_id}"


def add_edges(graph: nx.MultiDiGraph, frame: pl.DataFrame) -> None:
    extra = [c for c in frame.columns if c not in _EDGE_COLUMNS]
    for row in frame.iter_rows(named=True):
        src, dst = node_key(row["src_type"], row["src"]), node_key(row["dst_type"], row["dst"])
        for key, entity_type, entity_id in ((src, row["src_type"], row["src"]), (dst, row["dst_type"], row["dst"])):
            if key not in graph:
                graph.add_node(key, type=entity_type, id=entity_id, category=CATEGORIES.get(entity_type, "Other"))
        attrs = {"first_seen": row["first_seen"], "last_seen": row["last_seen"], "count": row["count"]}
        attrs.update({name: row[name] for name in extra})
        edge_key = row["edge"] if "role" not in extra else f"{row['edge']}:{row['role']}"
        if graph.has_edge(src, dst, edge_key):
            old = graph.edges[src, dst, edge_key]
            attrs["first_seen"] = min(old["first_seen"], attrs["first_seen"])
            attrs["last_seen"] = max(old["last_seen"], attrs["last_seen"])
            attrs["count"] = old["count"] + attrs["count"]
        graph.add_edge(src, dst, key=edge_key, edge=row["edge"], **attrs)


_IDENTITIES = ("AwsUser", "AwsRole", "AwsRoleSession", "FederatedUser", "Ec2Instance")


def mark_high_degree(graph: nx.MultiDiGraph, config: Config) -> None:
    """Mark the hubs: accounts, and shared entities (addresses, user agents, buckets, keys) that at
    least `high_degree_min` distinct identities used. Identities themselves are never hubs: a busy
    principal is what an incident is about."""
    for node, data in graph.nodes(data=True):
        neighbours = set(graph.predecessors(node)) | set(graph.successors(node))
        identities = sum(1 for other in neighbours if graph.nodes[other]["type"] in _IDENTITIES)
        data["degree"] = len(neighbours)
        data["high_degree"] = data["type"] in ("AwsAccount", "AwsService") or (
            data["type"] not in _IDENTITIES and identities >= config.high_degree_min
        )


def hub_keys(events: pl.LazyFrame, config: Config) -> set[str]:
    """The node keys `mark_high_degree` would mark among addresses, user agents and buckets, computed
    on the events directly (no graph needed): used by at least `high_degree_min` identities."""
    identity = pl.coalesce("session", "principal")
    hubs: set[str] = set()
    for entity_type, value in (("IpAddress", normalized_ip()), ("UserAgent", pl.col("user_agent"))):
        shared = (
            events.select(value.alias("value"), identity.alias("identity"))
            .filter(pl.col("value").is_not_null())
            .group_by("value")
            .agg(pl.col("identity").n_unique().alias("identities"))
            .filter(pl.col("identities") >= config.high_degree_min)
            .collect()
        )
        hubs.update(f"{entity_type}:{value}" for value in shared["value"].to_list())
    return hubs


def hubs_for(dataset, config: Config) -> set[str]:
    """`hub_keys` of the dataset's events, cached beside a case store."""
    from sleuth.derived import cached_frames

    def compute() -> dict[str, pl.DataFrame]:
        return {"hubs": pl.DataFrame({"key": sorted(hub_keys(dataset.events, config))}, schema={"key": pl.String})}

    return set(cached_frames(dataset, config, "hubs", compute)["hubs"]["key"].to_list())
