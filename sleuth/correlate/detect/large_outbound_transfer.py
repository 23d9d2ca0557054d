"""Large outbound transfer: an instance (or any local address) sending much data to one external address.

The statistic is the sum of bytes of accepted flow records sent by a local address to one external
address over the whole analysed window; a hit is at least `exfil_min_bytes`. The local side of a record
is the flow log's interface (its direction field, else the interface's own address, see
`_common.orient`); external means neither private, shared, loopback nor link-local. Left out: answers of
a web server to its clients (local port 80/443/8080/8443 to a high peer port: serving, not sending), and
with geolocation, peers in Amazon's networks (S3 and other AWS endpoints).

Severity grows with the volume (half a point per doubling above the threshold) and rises when the peer
is also a source of CloudTrail calls (the address that holds the account's credentials receives the
data) or is on a threat-intel list.
"""

from __future__ import annotations

import polars as pl

from sleuth.correlate.detect import _common as c
from sleuth.correlate.detect.base import Context, Detection, empty_hits

DETECTION = Detection(
    id="large-outbound-transfer",
    title="Large outbound transfer to an external address",
    severity=4.0,
    tactic="Exfiltration",
    technique="T1048",
    techniques=("T1041", "T1567"),
    description=(
        "A local address sent a large volume of data to one external address. Worth most when that "
        "address also appears in CloudTrail as a caller or on a threat-intel list."
    ),
    false_positives=(
        "Backups and replication to an off-site provider, uploads to SaaS or package mirrors, and "
        "without geolocation uploads to AWS endpoints; check the peer's owner and whether the volume "
        "is usual for the instance."
    ),
    frames=("flows",),
)

_WEB = [80, 443, 8080, 8443]


def run(context: Context) -> pl.DataFrame:
    flows = context.flows
    if flows.is_empty():
        return empty_hits()
    config = context.config
    accepted = flows.filter((pl.col("action") != "REJECT").fill_null(True) & (pl.col("bytes") > 0))
    # Only source -> destination pairs that moved enough bytes in all can qualify (hashed: fast to group).
    pair = pl.struct("src_addr", "dst_addr").hash(seed=5)
    heavy = accepted.group_by(_pair=pair).agg(pl.col("bytes").sum()).filter(pl.col("bytes") >= config.exfil_min_bytes)
    accepted = accepted.filter(pair.is_in(heavy["_pair"].implode()))
    flows = c.orient(accepted, c.interface_addresses(flows))
    serving = pl.col("_local_port").is_in(_WEB) & (pl.col("_peer_port") >= 1024)
    out = flows.filter(pl.col("_outbound") & ~c.is_internal(pl.col("_peer")) & ~serving.fill_null(False))
    totals = (
        out.group_by("_local", "_peer")
        .agg(_bytes=pl.col("bytes").sum())
        .filter(pl.col("_bytes") >= config.exfil_min_bytes)
    )
    if context.geo is not None and not totals.is_empty():
        geo = context.geo.frame(totals["_peer"].unique()).select(_peer="ip", _aso="aso", _where="location")
        totals = totals.join(geo, on="_peer", how="left").filter(
            ~pl.col("_aso").str.contains("(?i)amazon").fill_null(False)
        )
    else:
        totals = totals.with_columns(_aso=pl.lit(None, pl.String), _where=pl.lit(None, pl.String))
    if totals.is_empty():
        return empty_hits()
    rows = out.join(totals, on=["_local", "_peer"], maintain_order="left").with_columns(
        _key=c.flow_key(), _entities=c.flow_entities("actor")
    )
    hits = rows.group_by("_local", "_peer").agg(
        pl.col("account", "region", "instance_id", "_aso", "_where").drop_nulls().first(),
        pl.col("_bytes").first(),
        pl.col("interface_id").drop_nulls().unique().sort().alias("_enis"),
        pl.col("_peer_port").drop_nulls().unique().sort().head(5).cast(pl.String).str.join(", ").alias("_ports"),
        pl.col("start").min().alias("first_seen"),
        pl.col("end").max().alias("last_seen"),
        pl.len().alias("count"),
        c.evidence("_key"),
        c.gather_entities(),
    )
    hits = hits.join(c.peer_context(context.events, context.intel, hits["_peer"]), on="_peer", how="left")
    callers = pl.col("_callers").list.len().fill_null(0) > 0
    flagged = pl.col("_intel").is_not_null()
    volume = (pl.col("_bytes") / config.exfil_min_bytes).log(2).clip(lower_bound=0) * 0.5
    mib = (pl.col("_bytes") / (1 << 20)).round(1)
    where = pl.when(pl.col("_where").is_not_null()).then(pl.format(" ({})", "_where")).otherwise(pl.lit(""))
    enis = pl.col("_enis").list.join(", ")
    local = pl.when(pl.col("instance_id").is_not_null()).then(pl.format("{} ({}, {})", "instance_id", "_local", enis))
    local = local.otherwise(pl.format("{} ({})", "_local", enis))
    return c.finish(
        hits.with_columns(
            detection_id=pl.lit(DETECTION.id),
            **c.local_key(),
            severity=(
                pl.lit(DETECTION.severity)
                + volume.clip(upper_bound=2.0)
                + pl.when(callers).then(2.5).otherwise(0.0)
                + pl.when(flagged).then(3.0).otherwise(0.0)
            )
            .clip(upper_bound=9.5)
            .round(1),
            title=pl.format("{} MiB sent from {} to {}", mib, local, "_peer"),
            details=pl.format(
                "{} MiB in {} to {}{} port {}{}",
                mib,
                c.plural(pl.col("count"), "accepted flow"),
                "_peer",
                where,
                "_ports",
                c.peer_notes(),
            ),
            entities=pl.concat_list("entities", c.principal_entities("_callers", "actor")),
        )
    )
