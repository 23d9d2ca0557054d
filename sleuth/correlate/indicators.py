"""The indicators of an investigation: Detective's types and sleuth's own, each with its evidence.

Every indicator is a dict with `type` (handbook §5), the fields Detective gives it (snake_case), and
`evidence`: event ids, flow keys or finding ids, with times and addresses where they apply.
"""

from __future__ import annotations

import polars as pl

from sleuth.config import Config
from sleuth.correlate import activity as act
from sleuth.correlate.baseline import Scope, api_name, spikes
from sleuth.correlate.entities import failed, normalized_ip
from sleuth.correlate.flows import is_internal, orient
from sleuth.correlate.profile import newly_observed_sets

_EVIDENCE_MAX = 20  # ids listed per indicator; the counts say how many there were


def related_findings(
    findings: pl.DataFrame, finding_entities: pl.DataFrame, incident, scope: Scope, pinned: list[str] = ()
) -> pl.DataFrame:
    """Findings active in the scope that name any of the incident's identities, addresses or instances,
    and the `pinned` ones (the target's own) whatever they name."""
    ids = (
        set(incident.principals)
        | set(incident.sessions)
        | set(incident.keys)
        | set(incident.addresses)
        | set(incident.hosts)
        | set(incident.instances)
    )
    named = finding_entities.filter(pl.col("entity_id").is_in(list(ids)))["finding_id"].unique().implode()
    active = (pl.col("first_seen") < scope.end) & (pl.col("last_seen").fill_null(pl.col("first_seen")) >= scope.start)
    return (
        findings.filter((pl.col("finding_id").is_in(named) & active) | pl.col("finding_id").is_in(list(pinned)))
        .drop("raw", strict=False)
        .sort(["severity", "first_seen", "finding_id"], descending=[True, False, False])
    )


def all_indicators(dataset, incident, scope: Scope, config: Config, geo, intel, related, groups) -> list[dict]:
    indicators: list[dict] = []
    indicators += ttp_observed(incident)
    indicators += ttp_from_findings(related, indicators)
    indicators += impossible_travel(related)
    indicators += flagged_addresses(incident, intel)
    history = identity_history(dataset, incident, scope)
    indicators += new_behaviour(dataset, incident, scope, geo, history)
    indicators += volume_spikes(incident, scope, config, history)
    indicators += [
        {
            "type": "RELATED_FINDING",
            "id": r["finding_id"],
            "finding_type": r["type"],
            "title": r["title"],
            "severity": r["severity"],
            "severity_label": r["severity_label"],
            "producer": r["producer"],
            "first_seen": r["first_seen"],
            "last_seen": r["last_seen"],
            "evidence": {"finding_ids": [r["finding_id"]]},
        }
        for r in related.iter_rows(named=True)
    ]
    indicators += [
        {
            "type": "RELATED_FINDING_GROUP",
            "id": g.id,
            "title": g.title,
            "severity_label": g.severity_label,
            "tactics": g.tactics,
            "evidence": {"finding_ids": g.finding_ids[:_EVIDENCE_MAX]},
        }
        for g in groups
    ]
    indicators += credential_lineage(incident)
    indicators += logging_tampering(incident)
    indicators += network_transfer(incident)
    return indicators


def _events_of_incident(incident) -> pl.DataFrame:
    if incident.earlier.is_empty():
        return incident.events
    return pl.concat([incident.earlier, incident.events]).unique("event_id", keep="first").sort("time", "event_id")


def ttp_observed(incident) -> list[dict]:
    """Events of the mapping table, by tactic, technique, API and source address (Detective's TTP_OBSERVED)."""
    from sleuth.correlate.detect.mapped import label_events

    events = _events_of_incident(incident)
    if events.is_empty():
        return []
    from sleuth.correlate.story import unique_ids

    events = unique_ids(events)
    labels = (
        label_events(events)
        .sort(["event_id", "severity"], descending=[False, True])
        .unique("event_id", keep="first")
        .select("event_id", "rule_id", "severity", "tactics", "techniques")
    )
    # One row per tactic of a mapped event: a technique can serve several (an opened security group is
    # Defense Evasion and Exfiltration); the techniques list runs beside the tactics when it is as long.
    joined = (
        events.join(labels, on="event_id", how="inner")
        .with_columns(pl.int_ranges(pl.col("tactics").list.len()).alias("_i"))
        .explode("_i")
    ).with_columns(
        pl.col("tactics").list.get(pl.col("_i"), null_on_oob=True).alias("tactic"),
        pl.col("techniques")
        .list.get(pl.col("_i"), null_on_oob=True)
        .fill_null(pl.col("techniques").list.first())
        .alias("technique"),
        normalized_ip().fill_null(pl.col("src_ip")).alias("ip"),
        api_name().alias("api"),  # label_events matched service and action: neither is null
    )
    grouped = (
        joined.group_by("tactic", "technique", "api", "ip")
        .agg(
            (~failed()).sum().alias("success"),
            failed().sum().alias("failure"),
            pl.col("severity").max(),
            pl.col("rule_id").first(),
            pl.col("time").min().alias("first_seen"),
            pl.col("time").max().alias("last_seen"),
            pl.col("original_id").head(_EVIDENCE_MAX).alias("event_ids"),
            pl.col("principal").drop_nulls().unique().sort().alias("principals"),
        )
        .sort("first_seen", "api", "tactic", "technique", "ip", nulls_last=True)
    )
    return [
        {
            "type": "TTP_OBSERVED",
            "tactic": r["tactic"],
            "technique": r["technique"],
            "procedure": r["rule_id"],
            "api_name": r["api"],
            "ip_address": r["ip"],
            "api_success_count": r["success"],
            "api_failure_count": r["failure"],
            "severity": r["severity"],
            "first_seen": r["first_seen"],
            "last_seen": r["last_seen"],
            "principals": r["principals"],
            "evidence": {"event_ids": r["event_ids"]},
        }
        for r in grouped.iter_rows(named=True)
    ]


def ttp_from_findings(related: pl.DataFrame, ttps: list[dict]) -> list[dict]:
    """TTP_OBSERVED from the related findings' tactics that no mapped event shows (Detective takes its
    TTPs from findings): instance credentials used elsewhere are Credential Access though every call
    made with them is a read. `api_name` is the finding type; call counts are the events' (unknown: null)."""
    shown = {i["tactic"] for i in ttps}
    rows = []
    for r in related.sort("first_seen", "finding_id").iter_rows(named=True):
        techniques = r["techniques"] or []
        for n, tactic in enumerate(r["tactics"] or []):
            if tactic in shown:
                continue
            shown.add(tactic)
            rows.append(
                {
                    "type": "TTP_OBSERVED",
                    "tactic": tactic,
                    "technique": techniques[n] if n < len(techniques) else (techniques[0] if techniques else None),
                    "procedure": r["type"],
                    "api_name": r["type"],
                    "ip_address": None,
                    "api_success_count": None,
                    "api_failure_count": None,
                    "severity": r["severity"],
                    "first_seen": r["first_seen"],
                    "last_seen": r["last_seen"],
                    "principals": [],
                    "evidence": {"finding_ids": [r["finding_id"]]},
                }
            )
    return rows


def impossible_travel(related: pl.DataFrame) -> list[dict]:
    travel = related.filter(pl.col("type").str.contains("(?i)impossible-travel"))
    return [
        {
            "type": "IMPOSSIBLE_TRAVEL",
            "finding_id": r["finding_id"],
            "title": r["title"],
            "first_seen": r["first_seen"],
            "last_seen": r["last_seen"],
            "description": r["description"],
            "evidence": {"event_ids": r["event_ids"]},
        }
        for r in travel.iter_rows(named=True)
    ]


def flagged_addresses(incident, intel) -> list[dict]:
    if intel is None or not len(intel):
        return []
    events = _events_of_incident(incident)
    seen = set(events.select(normalized_ip()).to_series().drop_nulls().to_list()) if not events.is_empty() else set()
    if not incident.flows.is_empty():
        seen |= set(incident.flows["src_addr"].drop_nulls().to_list()) | set(incident.flows["dst_addr"].drop_nulls())
    out = []
    for address in sorted(seen | set(incident.addresses)):
        reason = intel.match(address)
        if reason:
            ids = (
                events.filter(normalized_ip() == address)["event_id"].head(_EVIDENCE_MAX).to_list()
                if len(events)
                else []
            )
            out.append(
                {"type": "FLAGGED_IP_ADDRESS", "ip_address": address, "reason": reason, "evidence": {"event_ids": ids}}
            )
    return out


def identity_history(dataset, incident, scope: Scope) -> pl.DataFrame:
    """The calls (activity.calls columns only) of the incident's identities, baseline and scope."""
    window = (pl.col("time") >= scope.baseline_start) & (pl.col("time") < scope.end)
    identities = pl.any_horizontal(
        pl.col("principal").is_in(list(incident.principals)),
        pl.col("session").is_in(list(incident.sessions)),
        pl.col("access_key").is_in(list(incident.keys)),
    ).fill_null(False)
    return act.calls(dataset.events.filter(window & identities)).collect()


def new_behaviour(dataset, incident, scope: Scope, geo, history: pl.DataFrame) -> list[dict]:
    """NEW_GEOLOCATION, NEW_ASO, NEW_USER_AGENT and NEW_API_CALL for the incident's identities."""
    if incident.events.is_empty():
        return []
    if history.is_empty():
        history = act.calls(incident.events)
    sets = newly_observed_sets(dataset, history, scope, geo)
    out: list[dict] = []
    kinds = {
        "geolocations": ("NEW_GEOLOCATION", "location"),
        "asos": ("NEW_ASO", "aso"),
        "user_agents": ("NEW_USER_AGENT", "user_agent"),
        "api_calls": ("NEW_API_CALL", "api_name"),
    }
    for name, (kind, key) in kinds.items():
        for row in sets[name].iter_rows(named=True):
            item = {
                "type": kind,
                key: row["value"],
                "is_new_for_entire_account": row["new_for_account"],
                "first_seen": row["first_seen"],
                "count": row["count"],
            }
            if name == "geolocations":
                item["ip_address"] = ", ".join(row.get("addresses") or [])
            out.append(item)
    return out


def volume_spikes(incident, scope: Scope, config: Config, history: pl.DataFrame) -> list[dict]:
    """INCREASED_API_VOLUME and FAILED_CALL_SPIKE against the identities' own baseline."""
    if not incident.principals:
        return []
    out = []
    for kind, frame in (("INCREASED_API_VOLUME", history), ("FAILED_CALL_SPIKE", history.filter(pl.col("failed")))):
        for row in spikes(frame, scope, config, ["api"]).iter_rows(named=True):
            out.append(
                {
                    "type": kind,
                    "api_name": row["api"],
                    "scope_count": row["scope_count"],
                    "baseline_count": row["baseline_count"],
                    "expected": round(row["expected"], 2),
                    "ratio": round(row["ratio"], 1),
                    "p_value": row["p_value"],
                }
            )
    return out


def credential_lineage(incident) -> list[dict]:
    out = []
    for row in incident.links.iter_rows(named=True):
        out.append(
            {
                "type": "CREDENTIAL_LINEAGE",
                "kind": row["kind"],
                "time": row["time"],
                "caller": row["caller"],
                "caller_session": row["caller_session"],
                "role": row["role"],
                "issued_session": row["issued_session"],
                "issued_key": row["issued_key"],
                "issued_to": row["issued_to"],
                "cross_account": row["cross_account"],
                "events_with_credentials": row.get("events"),
                "ip_address": row["src_ip"],
                "evidence": {"event_ids": [row["event_id"]] if row["event_id"] else []},
            }
        )
    return out


def logging_tampering(incident) -> list[dict]:
    from sleuth.coverage import tampering_actions

    events = _events_of_incident(incident)
    if events.is_empty():
        return []
    hits = events.join(tampering_actions(), on=["service", "action"], how="inner")
    return [
        {
            "type": "LOGGING_TAMPERING",
            "api_name": r["action"],
            "what": r["what"],
            "time": r["time"],
            "principal": r["principal"],
            "ip_address": r["src_ip"],
            "succeeded": r["error_code"] is None,
            "error_code": r["error_code"],
            "restore": r["restore"],
            "request": r["request"],
            "evidence": {"event_ids": [r["event_id"]]},
        }
        for r in hits.sort("time").iter_rows(named=True)
    ]


def network_transfer(incident) -> list[dict]:
    """Flows between the incident's addresses or instances and their peers, by direction and port."""
    flows = incident.flows
    if flows.is_empty():
        return []
    # Each flow from the incident's instance's side: the interface's own address is local.
    grouped = (
        orient(flows, incident.flow_ends)
        .with_columns(
            pl.when("_outbound").then(pl.lit("outbound")).otherwise(pl.lit("inbound")).alias("direction"),
            pl.col("_local").alias("local"),
            pl.col("_peer").alias("peer"),
            pl.col("_local_port").alias("local_port"),
            pl.col("_peer_port").alias("remote_port"),
            (~is_internal(pl.col("_peer"))).alias("external_peer"),
        )
        .group_by(
            "direction", "local", "local_port", "peer", "remote_port", "protocol", "interface_id", "external_peer"
        )
        .agg(
            pl.col("bytes").sum(),
            pl.len().alias("flows"),
            (pl.col("action") == "ACCEPT").sum().alias("accepted"),
            pl.col("start").min().alias("first_seen"),
            pl.col("end").max().alias("last_seen"),
        )
        .sort(
            ["bytes", "peer", "direction", "local", "local_port", "remote_port", "protocol", "interface_id"],
            descending=[True, False, False, False, False, False, False, False],
            nulls_last=True,
        )
    )
    return [
        {
            "type": "NETWORK_TRANSFER",
            "direction": r["direction"],
            "local_address": r["local"],
            "local_port": r["local_port"],
            "peer_address": r["peer"],
            "external_peer": r["external_peer"],
            "remote_port": r["remote_port"],
            "protocol": r["protocol"],
            "bytes": r["bytes"],
            "flows": r["flows"],
            "accepted": r["accepted"],
            "interface_id": r["interface_id"],
            "first_seen": r["first_seen"],
            "last_seen": r["last_seen"],
            "evidence": {"flows": f"{r['flows']} flow records on {r['interface_id']}"},
        }
        for r in grouped.iter_rows(named=True)
    ]


def data_sent_out(indicators: list[dict]) -> list[dict]:
    """The NETWORK_TRANSFER indicators of data that left the network: accepted, outbound, to an external
    peer (a rejected call to the VPC router or traffic between instances moved nothing out)."""
    return [
        i
        for i in indicators
        if i["type"] == "NETWORK_TRANSFER" and i["direction"] == "outbound" and i["accepted"] and i["external_peer"]
    ]
