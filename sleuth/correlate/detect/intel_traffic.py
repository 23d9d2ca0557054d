"""Traffic with a flagged address: flows to or from an address on a threat-intel list, and AWS API calls
made from one (Detective's FLAGGED_IP_ADDRESS indicator, GuardDuty's *MaliciousIPCaller.Custom).

Flows: one hit per local address and flagged peer, keyed by the local instance (or address). Accepted
traffic the local side sent is command and control or a drop (High); accepted traffic only from the peer
is an exposed service it reached (Medium); refused traffic only is an attempt (Low).

CloudTrail: one hit per principal and flagged source address: someone holding the principal's credentials
works from a listed address (Medium; Low when every call failed).

Without an intel list (`Context.intel` None or empty) there are no hits.
"""

from __future__ import annotations

import polars as pl

from sleuth.correlate.detect import _common as c
from sleuth.correlate.detect.base import Context, Detection, conform_hits, empty_hits

DETECTION = Detection(
    id="flagged-address-traffic",
    title="Traffic with an address on a threat-intel list",
    severity=8.0,
    tactic="Command and Control",
    technique="T1071",
    tactics=("Initial Access",),
    techniques=("T1078.004",),
    description=(
        "An instance exchanged traffic with an address on a threat-intel list, or a principal called AWS "
        "APIs from one: a sign of command and control, a drop point, or stolen credentials in use."
    ),
    false_positives=(
        "Lists go stale: shared hosting, cloud and VPN exits get listed and reused. Check the list's reason "
        "and date for the address, and what the traffic or calls were."
    ),
    frames=("events", "flows"),
)


def _flagged(intel: object, addresses: pl.Series) -> pl.DataFrame:
    return intel.frame(addresses.drop_nulls().unique()).select(  # type: ignore[attr-defined]
        _peer="ip", _intel="intel_reason", _intel_source="intel_source"
    )


def _flows(context: Context) -> pl.DataFrame:
    flows = context.flows
    if flows.is_empty():
        return empty_hits()
    flagged = _flagged(context.intel, pl.concat([flows["src_addr"], flows["dst_addr"]]))
    if flagged.is_empty():
        return empty_hits()
    touched = flows.filter(
        pl.col("src_addr").is_in(flagged["_peer"].implode()) | pl.col("dst_addr").is_in(flagged["_peer"].implode())
    )
    rows = c.orient(touched, c.interface_addresses(flows)).join(flagged, on="_peer", maintain_order="left")
    accepted = (pl.col("action") != "REJECT").fill_null(True)
    rows = rows.with_columns(
        _key=c.flow_key(),
        _entities=c.flow_entities("actor"),
        _sent=accepted & pl.col("_outbound"),
        _got=accepted & ~pl.col("_outbound"),
    )
    hits = rows.group_by("_local", "_peer").agg(
        pl.col("account", "region", "instance_id", "_intel", "_intel_source").drop_nulls().first(),
        pl.col("bytes").filter("_sent").sum().alias("_out"),
        pl.col("_sent").any(),
        pl.col("_got").any(),
        pl.col("start").min().alias("first_seen"),
        pl.col("end").max().alias("last_seen"),
        pl.len().alias("count"),
        c.evidence("_key"),
        c.gather_entities(),
    )
    local = pl.coalesce(pl.format("{} ({})", "instance_id", "_local"), pl.col("_local"))
    return hits.with_columns(
        **c.local_key(),
        severity=pl.when("_sent").then(DETECTION.severity).when("_got").then(5.0).otherwise(2.0),
        title=pl.concat_str([pl.lit("Traffic between "), local, pl.lit(" and flagged address "), pl.col("_peer")]),
        details=pl.concat_str(
            [
                pl.lit("FLAGGED_IP_ADDRESS "),
                pl.col("_peer"),
                pl.lit(": "),
                pl.col("_intel"),
                pl.lit(" ("),
                pl.col("_intel_source"),
                pl.lit("); "),
                c.plural(pl.col("count"), "flow record"),
                pl.when("_sent")
                .then(pl.format(", {} bytes sent to it", "_out"))
                .when("_got")
                .then(pl.lit(", accepted from it only"))
                .otherwise(pl.lit(", all rejected")),
            ]
        ),
    )


def _calls(context: Context) -> pl.DataFrame:
    events = context.events
    sources = events.select(pl.col("src_ip").unique()).with_columns(_peer=c.ip(pl.col("src_ip"))).drop_nulls("_peer")
    flagged = _flagged(context.intel, sources["_peer"]).join(sources, on="_peer")
    if flagged.is_empty():
        return empty_hits()
    rows = events.filter(pl.col("src_ip").is_in(flagged["src_ip"].implode()) & pl.col("principal").is_not_null())
    rows = rows.join(flagged, on="src_ip", maintain_order="left").with_columns(_entities=c.actor_entities())
    hits = rows.group_by("principal", "_peer").agg(
        pl.col("account", "region", "actor_type", "_intel", "_intel_source").drop_nulls().first(),
        pl.col("error_code").is_null().sum().alias("_ok"),
        pl.col("action").drop_nulls().unique(maintain_order=True).head(5).str.join(", ").alias("_actions"),
        pl.col("time").min().alias("first_seen"),
        pl.col("time").max().alias("last_seen"),
        pl.len().alias("count"),
        c.evidence(),
        c.gather_entities(),
    )
    return hits.with_columns(
        key_type=c.principal_type(),
        key_id=pl.col("principal"),
        severity=pl.when(pl.col("_ok") > 0).then(6.0).otherwise(3.0),
        title=pl.concat_str(
            [pl.lit("AWS API calls by "), c.short_name(), pl.lit(" from flagged address "), pl.col("_peer")]
        ),
        details=pl.concat_str(
            [
                pl.lit("FLAGGED_IP_ADDRESS "),
                pl.col("_peer"),
                pl.lit(": "),
                pl.col("_intel"),
                pl.lit(" ("),
                pl.col("_intel_source"),
                pl.lit("); "),
                c.plural(pl.col("count"), "call"),
                pl.lit(" ("),
                pl.col("_ok").cast(pl.String),
                pl.lit(" succeeded): "),
                pl.col("_actions"),
            ]
        ),
    )


def run(context: Context) -> pl.DataFrame:
    if context.intel is None or not len(context.intel):  # type: ignore[arg-type]
        return empty_hits()
    parts = [
        conform_hits(part.with_columns(detection_id=pl.lit(DETECTION.id)))
        for part in (_flows(context), _calls(context))
    ]
    return c.finish(pl.concat(parts))
