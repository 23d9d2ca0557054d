"""Views of entities: search results, an entity profile, and the summary page."""

from __future__ import annotations

from typing import Any

import polars as pl

from sleuth.correlate.activity import sparkline
from sleuth.correlate.baseline import bucket_every
from sleuth.correlate.profile import Profile
from sleuth.correlate.summary import Summary
from sleuth.report.document import Document, Section


def frame_records(frame: pl.DataFrame, columns: list[str] | None = None) -> list[dict[str, Any]]:
    return [dict(row) for row in (frame.select(columns) if columns else frame).iter_rows(named=True)]


def frame_section(
    title: str, frame: pl.DataFrame, columns: list[str], empty: str = "none", limit: int = 20, **extra: Any
) -> Section:
    """A table of the first `limit` rows of `frame` (the title says when rows were left out)."""
    shown = frame.head(limit)
    if len(frame) > len(shown):
        title = f"{title} ({len(shown)} of {len(frame)})"
    return Section(title, columns, [list(row) for row in shown.select(columns).iter_rows()], empty=empty, **extra)


# --- sleuth search --entity ------------------------------------------------------------------

ENTITY_COLUMNS = ["entity_type", "entity_id", "events", "failures", "first_seen", "last_seen", "account", "owner"]


def entities_document(found: pl.DataFrame, pattern: str, limit: int | None) -> Document:
    total = len(found)
    shown = found.head(limit) if limit is not None else found
    records = frame_records(shown, ENTITY_COLUMNS)
    count = f"{len(shown)} of {total}" if len(shown) < total else str(total)
    section = Section(
        f"Entities matching {pattern} ({count})",
        ENTITY_COLUMNS,
        [list(r.values()) for r in records],
        empty="no entity matches",
        limits={"entity_id": 70, "owner": 50},
    )
    data = {"pattern": pattern, "count": len(records), "total": total, "entities": records}
    return Document("entities", data, records, [section], columns=ENTITY_COLUMNS)


# --- sleuth profile --------------------------------------------------------------------------

_NEW_TITLES = {
    "geolocations": "Newly observed geolocations",
    "asos": "Newly observed autonomous system organizations",
    "user_agents": "Newly observed user agents",
    "api_calls": "Newly observed API calls",
    "addresses": "Newly observed IP addresses",
}
_SPIKE = ["api", "scope_count", "baseline_count", "expected", "ratio", "p_value"]


def profile_document(profile: Profile) -> Document:
    details = profile.details
    volume = profile.volume
    total = volume["success"] + volume["failure"]
    per = "hour" if bucket_every(profile.scope) == "1h" else "day"
    headline = (
        f"{details['type']} {details['id']}: {int(total.sum())} calls in the scope "
        f"({int(volume['failure'].sum())} failed); scope {_span(profile.scope.start, profile.scope.end)}, "
        f"baseline from {_time(profile.scope.baseline_start)}"
    )
    sections = [
        Section("Details", ["field", "value"], [[k, v] for k, v in details.items() if v not in (None, [], "")]),
        Section(
            "API call volume",
            ["calls", "failed", f"baseline per {per}", f"timeline (per {per}, scope start to end)"],
            [
                [
                    int(total.sum()),
                    int(volume["failure"].sum()),
                    volume["baseline"][0] if len(volume) else 0,
                    sparkline(total.to_list()),
                ]
            ],
        ),
        frame_section("API calls by service", profile.apis, ["api", "calls", "success", "failure", "first_seen"]),
        frame_section(
            "Observed IP addresses",
            profile.addresses,
            ["ip", "ip_kind", "calls", "failure", "location", "aso", "first_seen", "last_seen"],
            limits={"aso": 40},
        ),
        frame_section(
            "User agents",
            profile.user_agents,
            ["user_agent", "calls", "failure", "first_seen"],
            limits={"user_agent": 70},
        ),
    ]
    for name, frame in profile.new.items():
        columns = ["value", "first_seen", "count", "new_for_account"]
        if name == "geolocations":
            columns.append("addresses")
        sections.append(frame_section(_NEW_TITLES[name], frame, columns))
    sections += [
        frame_section("API calls with increased volume", profile.increased_volume, _SPIKE),
        frame_section("Failed-call spikes", profile.failure_spikes, _SPIKE),
        frame_section(
            "Resource interaction (credentials obtained and roles assumed)",
            profile.roles,
            # issued_to is the role for an assumption, the user for an access key (role: JSON only)
            ["kind", "caller", "issued_to", "count", "first_seen", "keys", "events_with_credentials"],
            limits={"caller": 70, "issued_to": 70, "keys": 70},
        ),
    ]
    if profile.entity.type != "Ec2Instance" and len(profile.instances):
        sections.append(
            frame_section(
                "Instances launched (by it, or with credentials it issued)",
                profile.instances,
                ["instance_id", "interface_id", "private_ip", "time", "principal", "event_id"],
                limits={"principal": 50},
            )
        )
    if profile.entity.type in ("IpAddress", "Ec2Instance") or len(profile.instances):
        title = (
            "VPC flow volume"
            if profile.entity.type in ("IpAddress", "Ec2Instance")
            else ("VPC flow volume of the instances it launched")
        )
        sections.append(
            frame_section(
                title,
                profile.flows,
                [
                    "peer",
                    "direction",
                    "local_port",
                    "remote_port",
                    "protocol",
                    "bytes_in",
                    "bytes_out",
                    "accepted",
                    "rejected",
                ],
            )
        )
    sections.append(
        frame_section("Related findings", profile.findings, ["severity_label", "type", "title", "role", "finding_id"])
    )
    for note in profile.notes:
        sections[0].note = (sections[0].note + "; " if sections[0].note else "") + note
    data = {
        "entity": {"type": profile.entity.type, "id": profile.entity.id},
        **profile.scope.as_json(),
        "details": details,
        "volume": frame_records(profile.volume),
        "api_calls": frame_records(profile.apis),
        "addresses": frame_records(profile.addresses),
        "user_agents": frame_records(profile.user_agents),
        "newly_observed": {name: frame_records(frame) for name, frame in profile.new.items()},
        "increased_volume": frame_records(profile.increased_volume),
        "failure_spikes": frame_records(profile.failure_spikes),
        "resource_interaction": frame_records(profile.roles),
        "flows": frame_records(profile.flows),
        "launched_instances": frame_records(profile.instances),
        "findings": frame_records(profile.findings),
        "notes": profile.notes,
    }
    records = data["api_calls"]
    return Document("profile", data, records, sections, headline, columns=list(profile.apis.columns))


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def _time(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "-"


def _span(start, end) -> str:
    return f"{_time(start)} .. {_time(end)} UTC"


# --- sleuth summary --------------------------------------------------------------------------


def summary_document(summary: Summary) -> Document:
    totals = summary.totals
    headline = (
        f"Scope {_span(summary.scope.start, summary.scope.end)}: {_count(totals['events'], 'event')} "
        f"({totals['failures']} failed) by {_count(totals['principals'], 'principal')} from "
        f"{_count(totals['addresses'], 'address', 'addresses')}; {_count(totals['flows'], 'flow')}; "
        f"{_count(totals['findings'], 'finding')}"
    )
    actor_columns = ["type", "id", "calls", "success", "failure", "timeline"]
    sections = [
        frame_section("Most active principals and instances", summary.busiest, actor_columns, limits={"id": 60}),
        frame_section("Principals with the most failed calls", summary.failing, actor_columns, limits={"id": 60}),
        frame_section(
            "Instances with the most flow volume",
            summary.flow_volume,
            ["id", "interfaces", "bytes_in", "bytes_out", "flows"],
        ),
        frame_section(
            "Newly observed geolocations",
            summary.new_geolocations,
            ["location", "addresses", "principals", "first_seen", "calls"],
            limits={"principals": 120},
        ),
        frame_section("Findings by severity", summary.findings, ["severity_label", "count", "most_severe"]),
    ]
    data = {
        **summary.scope.as_json(),
        "totals": totals,
        "busiest": frame_records(summary.busiest),
        "most_failures": frame_records(summary.failing),
        "flow_volume": frame_records(summary.flow_volume),
        "new_geolocations": frame_records(summary.new_geolocations),
        "findings": frame_records(summary.findings),
    }
    return Document("summary", data, data["busiest"], sections, headline, columns=actor_columns)
