"""Finding groups: the findings, entities and evidence of one incident.

The algorithm (tunables in `Config`):
1. Linking entities. A finding links through the specific entities it names: access keys, role
   sessions, users, roles, federated users, instances, buckets and public IP addresses. Accounts,
   user agents, private or AWS-service addresses and the graph's hubs (`graph.mark_high_degree`:
   an address or agent used by `high_degree_min` identities or more) link nothing.
2. Credential lineage. An entity and the credentials it obtained are one actor: a key created by a
   principal, a role session it started and a user it created for itself all resolve (union-find)
   to the same linking identity, so a key minted by a compromised principal joins its incident.
3. Planned changes apart. A finding whose user agents are all infrastructure-as-code tooling
   (`automation_user_agents`: Terraform, CDK, CloudFormation, Pulumi) links only with other such
   findings: an identity's Terraform run and its interactive activity are two stories.
4. Time proximity. For each linking identity, its findings are sorted by first seen; a finding joins
   the previous one's cluster when it starts within `group_window_hours` of the latest last-seen so
   far. Findings of one actor weeks apart stay separate incidents.
5. Groups are the connected components of those links. A group id is a UUID derived from the sorted
   finding ids of its members, so the same input gives the same groups and ids in any order.
"""

from __future__ import annotations

import functools
import hashlib
import re
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from sleuth.attack import KILL_CHAIN
from sleuth.config import Config
from sleuth.correlate.entities import CATEGORIES, short_id
from sleuth.netaddr import is_external, parse_ip
from sleuth.severity import severity_label

LINKING_TYPES = ("AccessKey", "AwsRoleSession", "AwsUser", "AwsRole", "FederatedUser", "Ec2Instance", "S3Bucket",
                 "IpAddress")  # fmt: skip
_NAMESPACE = uuid.UUID("5b0c8f2e-4c1d-4a7e-9f3a-7d1e2c9b6a10")


def tactic_chain(tactics: list[str]) -> list[str]:
    """Distinct tactics in kill-chain order; unknown ones at the end as written, then `Other`."""
    known = [t for t in KILL_CHAIN if t in tactics]
    unknown = sorted({t for t in tactics if t and t not in KILL_CHAIN})
    return known + unknown


class Group:
    """One finding group. Its id, finding ids, severity and span are known at once; its tables
    (findings, entities, entity rows), tactic chain, accounts and title are built on first use, since
    an investigation shows a few groups of many (each costs a dozen polars operations)."""

    def __init__(
        self,
        finding_ids: list[str],
        severity: float,
        first_seen: datetime,
        last_seen: datetime,
        all_findings: pl.DataFrame,
        all_entities: pl.DataFrame,
    ) -> None:
        self.id = group_id(finding_ids)
        self.finding_ids = finding_ids
        self.severity = severity
        self.first_seen = first_seen
        self.last_seen = last_seen
        self.evidence: dict[str, pl.DataFrame] = {}
        self._all_findings = all_findings
        self._all_entities = all_entities

    @property
    def severity_label(self) -> str:
        return severity_label(self.severity) or "Informational"

    @functools.cached_property
    def findings(self) -> pl.DataFrame:
        return self._all_findings.filter(pl.col("finding_id").is_in(self.finding_ids)).sort(
            ["severity", "first_seen", "finding_id"], descending=[True, False, False]
        )

    @functools.cached_property
    def _rows(self) -> pl.DataFrame:
        return self._all_entities.filter(
            pl.col("finding_id").is_in(self.finding_ids) & (pl.col("entity_type") != "Finding")
        )

    @functools.cached_property
    def entity_rows(self) -> pl.DataFrame:
        """finding_id, entity_type, entity_id, role: one row per finding x entity x role."""
        return self._rows.select("finding_id", "entity_type", "entity_id", "role").unique().sort(pl.all())

    @functools.cached_property
    def entities(self) -> pl.DataFrame:
        """entity_type, entity_id, roles, findings, category: the group's entities by category."""
        return (
            self._rows.group_by("entity_type", "entity_id")
            .agg(
                pl.col("role").unique().sort().str.join(", ").alias("roles"),
                pl.col("finding_id").n_unique().alias("findings"),
            )
            .with_columns(pl.col("entity_type").replace_strict(CATEGORIES, default="Other").alias("category"))
            .sort(["category", "findings", "entity_type", "entity_id"], descending=[False, True, False, False])
        )

    @functools.cached_property
    def tactics(self) -> list[str]:
        return tactic_chain([t for row in self.findings["tactics"].to_list() for t in (row or [])])

    @functools.cached_property
    def accounts(self) -> list[str]:
        return sorted(self.findings["account"].drop_nulls().unique().to_list())

    @functools.cached_property
    def title(self) -> str:
        return _title(self.findings, self.entities)


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, item: str) -> str:
        self.parent.setdefault(item, item)
        root = item
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[item] != root:
            self.parent[item], item = root, self.parent[item]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            # The smaller key wins, so the result does not depend on the order of unions.
            low, high = sorted((ra, rb))
            self.parent[high] = low


def _linking(entities: pl.DataFrame, hubs: set[str]) -> pl.DataFrame:
    """The (finding, entity key) pairs that may link findings."""
    rows = entities.filter(pl.col("entity_type").is_in(LINKING_TYPES)).select("finding_id", "entity_type", "entity_id")
    keep = []
    for finding_id, entity_type, entity_id in rows.unique().iter_rows():
        key = f"{entity_type}:{entity_id}"
        if key in hubs:
            continue
        if entity_type == "IpAddress":
            address = parse_ip(entity_id)
            if address is None or not is_external(address):
                continue
            key = f"IpAddress:{address}"
        keep.append((finding_id, key))
    return pl.DataFrame(keep, schema={"finding_id": pl.String, "key": pl.String}, orient="row")


def _automation(finding_entities: pl.DataFrame, config: Config) -> set[str]:
    """Findings whose user agents are all infrastructure-as-code tooling (Terraform, CDK ...)."""
    agents = finding_entities.filter(pl.col("entity_type") == "UserAgent")
    if agents.is_empty() or not config.automation_user_agents:
        return set()
    pattern = "|".join(re.escape(word) for word in config.automation_user_agents)
    per_finding = agents.group_by("finding_id").agg(pl.col("entity_id").str.contains(pattern).all().alias("all"))
    return set(per_finding.filter(pl.col("all"))["finding_id"].to_list())


def _touching(links: pl.DataFrame | None, pairs: pl.DataFrame) -> pl.DataFrame | None:
    """The credential links that can join findings: those whose credentials (key, session, user)
    some finding names, and those that issued a session which went on to issue more (a role chain).
    Any other link only adds an identity no finding names, which changes no group."""
    if links is None or links.is_empty():
        return links
    named = pairs["key"].str.splitn(":", 2).struct.field("field_1").unique().implode()
    chained = links["caller_session"].drop_nulls().unique().implode()
    issued = ["issued_key", "issued_session", "issued_to"]
    keep = pl.any_horizontal([pl.col(c).is_in(named) for c in issued]) | pl.col("issued_session").is_in(chained)
    return links.filter(keep.fill_null(False)).unique(["caller", "caller_session", *issued, "kind"])


def _lineage_identities(links: pl.DataFrame | None) -> _UnionFind:
    """Entities and the credentials they obtained, as one identity each."""
    identities = _UnionFind()
    if links is None or links.is_empty():
        return identities
    for row in links.iter_rows(named=True):
        caller = row["caller"]
        if not caller or not caller.startswith("arn:"):
            continue  # an AWS service assuming a role is not an actor
        caller_key = f"AwsRoleSession:{row['caller_session']}" if row["caller_session"] else _principal_key(caller)
        if row["issued_key"]:
            identities.union(caller_key, f"AccessKey:{row['issued_key']}")
        if row["issued_session"]:
            identities.union(caller_key, f"AwsRoleSession:{row['issued_session']}")
        if row["kind"] == "access_key" and row["issued_to"] and row["issued_to"] != caller:
            identities.union(caller_key, _principal_key(row["issued_to"]))
    return identities


def _principal_key(arn: str) -> str:
    return f"AwsRole:{arn}" if ":role/" in arn else f"AwsUser:{arn}"


def group_findings(
    findings: pl.DataFrame,
    finding_entities: pl.DataFrame,
    config: Config,
    links: pl.DataFrame | None = None,
    hubs: set[str] | None = None,
) -> list[Group]:
    """The finding groups, most severe first, then most recent."""
    if findings.is_empty():
        return []
    findings = findings.unique("finding_id", keep="first").sort("finding_id")
    pairs = _linking(finding_entities, hubs or set())
    identities = _lineage_identities(_touching(links, pairs))
    spans = {
        row["finding_id"]: (row["first_seen"], row["last_seen"] or row["first_seen"])
        for row in findings.select("finding_id", "first_seen", "last_seen").iter_rows(named=True)
    }
    automated = _automation(finding_entities, config)
    by_identity: dict[str, list[str]] = defaultdict(list)
    for finding_id, key in pairs.iter_rows():
        if finding_id in spans:
            # Infrastructure-as-code changes of an identity are one story, its other findings another.
            suffix = "|automation" if finding_id in automated else ""
            by_identity[identities.find(key) + suffix].append(finding_id)
    clusters = _UnionFind()
    window = timedelta(hours=config.group_window_hours)
    for members in by_identity.values():
        ordered = sorted(set(members), key=lambda f: (spans[f][0], f))
        latest: datetime | None = None
        previous: str | None = None
        for finding_id in ordered:
            start, end = spans[finding_id]
            if previous is not None and latest is not None and start - latest <= window:
                clusters.union(previous, finding_id)
            latest = end if latest is None or end > latest else latest
            previous = finding_id
    components: dict[str, list[str]] = defaultdict(list)
    for finding_id in spans:
        components[clusters.find(finding_id)].append(finding_id)
    severity = dict(findings.select("finding_id", pl.col("severity").fill_null(0.0)).iter_rows())
    groups = []
    for ids in components.values():
        members = sorted(ids)
        groups.append(
            Group(
                members,
                float(max(severity[f] for f in members)),
                min(spans[f][0] for f in members),
                max(spans[f][1] for f in members),
                findings,
                finding_entities,
            )
        )
    return sorted(groups, key=lambda g: (-g.severity, -g.last_seen.timestamp(), g.id))


def group_id(finding_ids: list[str]) -> str:
    digest = hashlib.sha256("\n".join(sorted(finding_ids)).encode()).hexdigest()
    return str(uuid.uuid5(_NAMESPACE, digest))


def _title(members: pl.DataFrame, entities: pl.DataFrame) -> str:
    """What kinds of findings, about whom: "3 findings: StopLogging, Root login ... by user/alice"."""
    kinds = Counter(_kind(t) for t in members["type"].to_list())
    named = ", ".join(kind for kind, _ in kinds.most_common(3))
    more = f" and {len(kinds) - 3} more kinds" if len(kinds) > 3 else ""
    actors = entities.filter(pl.col("roles").str.contains("actor") & pl.col("category").eq("Identity"))
    actor = actors.filter(pl.col("entity_type").is_in(["AwsUser", "AwsRole", "FederatedUser"]))
    who = (actor if len(actor) else actors)["entity_id"].head(1).to_list()
    by = f" by {short_id(who[0])}" if who else ""
    count = len(members)
    return f"{count} finding{'s' if count != 1 else ''}: {named}{more}{by}"


def _kind(finding_type: str | None) -> str:
    """The readable part of a finding type: `Stealth:IAMUser/CloudTrailLoggingDisabled` -> the name."""
    text = finding_type or "unknown"
    return text.rsplit("/", 1)[-1].rsplit(":", 1)[-1] or text


# --- the library entry point -----------------------------------------------------------------


@dataclass
class GroupsResult:
    groups: list[Group]
    findings: int  # findings considered
    hubs: list[str]  # entities that linked nothing because they are shared by too many identities


def find_groups(
    dataset,
    config: Config,
    geo=None,
    intel=None,
    evidence: bool = False,
    detect: bool = True,
    links: pl.DataFrame | None = None,
) -> GroupsResult:
    """Finding groups over GuardDuty's findings and sleuth's own detections in `dataset` (`detect`
    False: the dataset already holds sleuth's findings, see detect.with_detections). `links`: the
    dataset's lineage.links_for when the caller has it already (else it is computed here)."""
    from sleuth.correlate.graph import hubs_for
    from sleuth.correlate.lineage import links_for

    if detect:
        dataset = _with_detections(dataset, config, geo, intel)
    findings = dataset.frames["findings"].collect()
    entities = dataset.frames["finding_entities"].collect()
    hubs = hubs_for(dataset, config)
    if links is None:
        links = links_for(dataset, config)
    groups = group_findings(findings, entities, config, links, hubs)
    if evidence:
        for group in groups:
            group.evidence = group_evidence(dataset, group, config, geo)
    return GroupsResult(groups, len(findings), sorted(hubs))


def _with_detections(dataset, config: Config, geo, intel):
    """The dataset with sleuth's detections beside GuardDuty's findings (when detections exist)."""
    try:
        from sleuth.correlate.detect import with_detections
    except ImportError:  # pragma: no cover - detections not installed
        return dataset
    return with_detections(dataset, config, geo, intel)


def group_evidence(dataset, group: Group, config: Config, geo=None) -> dict[str, pl.DataFrame]:
    """Detective's evidence: what the group's principals did for the first time in its span."""
    from sleuth.correlate import activity as act
    from sleuth.correlate.baseline import Scope, newly_observed
    from sleuth.correlate.entities import EntityRef, events_of
    from sleuth.correlate.profile import newly_observed_sets

    principals = group.entities.filter(pl.col("entity_type").is_in(["AwsUser", "AwsRole", "AwsRoleSession"]))
    if principals.is_empty():
        return {}
    scope = Scope(
        group.first_seen,
        group.last_seen + timedelta(seconds=1),
        group.first_seen - timedelta(days=config.baseline_days),
    )
    condition = pl.any_horizontal(
        [events_of(EntityRef(t, i)) for t, i in principals.select("entity_type", "entity_id").iter_rows()]
    )
    window = (pl.col("time") >= scope.baseline_start) & (pl.col("time") < scope.end)
    activity = act.calls(dataset.events.filter(window & condition)).collect()
    evidence = newly_observed_sets(dataset, activity, scope, geo)
    # Detective's "New IAM principal observed": principals of the group with no call in the baseline.
    evidence["principals"] = newly_observed(
        activity.with_columns(pl.coalesce("session", "principal").alias("identity")), None, scope, "identity"
    ).drop("new_for_account")
    return evidence


def group_graph(group: Group, links: pl.DataFrame | None = None):
    """The group as a graph: its findings, the entities they name (edge: the entity's role), and the
    credential links between those entities (who assumed which role, who created which key)."""
    import networkx as nx

    graph = nx.MultiDiGraph()
    for row in group.findings.iter_rows(named=True):
        label = f"[{row['severity_label']}] {_kind(row['type'])} ({row['finding_id'][:12]})"
        graph.add_node(f"Finding:{row['finding_id']}", type="Finding", label=label, severity=row["severity"])
    members = set()
    for row in group.entities.iter_rows(named=True):
        key = f"{row['entity_type']}:{row['entity_id']}"
        members.add(key)
        graph.add_node(key, type=row["entity_type"], label=short_id(row["entity_id"]), category=row["category"])
    involved = group.findings.select("finding_id")
    for finding_id, entity_type, entity_id, role in group.entity_rows.join(involved, on="finding_id").iter_rows():
        graph.add_edge(f"Finding:{finding_id}", f"{entity_type}:{entity_id}", key=role, label=role)
    if links is not None and not links.is_empty():
        for row in links.iter_rows(named=True):
            caller = _principal_key(row["caller"]) if row["caller"] and row["caller"].startswith("arn:") else None
            if caller not in members:
                continue
            for target, label in ((f"AccessKey:{row['issued_key']}", "created key"),
                                  (f"AwsRoleSession:{row['issued_session']}", "started session"),
                                  (_principal_key(row["role"]) if row["role"] else None, "assumed")):  # fmt: skip
                if target in members and not graph.has_edge(caller, target, label):
                    graph.add_edge(caller, target, key=label, label=label)
    return graph


def find_group(result: GroupsResult, wanted: str) -> Group:
    """The group with id `wanted` (or a unique prefix of it); NotFoundError listing the ids otherwise."""
    from sleuth.errors import NotFoundError

    text = wanted.strip().lower()
    matches = [g for g in result.groups if g.id == text] or [g for g in result.groups if text and g.id.startswith(text)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise NotFoundError(f"{wanted!r} is the start of {len(matches)} group ids", "give more of the id")
    known = ", ".join(g.id for g in result.groups[:5]) or "none (no findings in the sources)"
    raise NotFoundError(f"no finding group {wanted!r}", f"list them with `sleuth groups`; the most severe: {known}")
