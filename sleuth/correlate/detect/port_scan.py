"""Port scan: one source address trying many destination ports of one destination address.

The statistic is the number of distinct destination ports one source tried on one destination within a
sliding window of `port_scan_minutes` (exact sliding-window count, see `_common.bursts`), over all flow
records, rejected ones included (a scan is mostly refused); a hit is a burst of at least
`port_scan_ports`. A scan seen by both ends' interfaces counts once.

Who matters: a scanner inside the network (an instance scanning outward or its neighbours, GuardDuty's
Recon:EC2/Portscan) is Medium and the hit is keyed by that instance or address; an external scanner
probing a local address is the Internet's background noise, Low, keyed by the target.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from sleuth.correlate.detect import _common as c
from sleuth.correlate.detect.base import Context, Detection, empty_hits

DETECTION = Detection(
    id="port-scan",
    title="Port scan",
    severity=5.0,
    tactic="Discovery",
    technique="T1046",
    techniques=("T1595.001",),
    description=(
        "One address tried many different ports of another within minutes: network service discovery. From "
        "an instance it means the instance is being used to map the network; from outside, someone is "
        "probing an exposed address."
    ),
    false_positives=(
        "Vulnerability scanners and monitoring (Inspector-like agents, Nessus, nmap by the security team); "
        "Internet-wide scanners hit every public address (scored Low). Check the scanner against known "
        "security tooling."
    ),
    frames=("flows",),
)


def run(context: Context) -> pl.DataFrame:
    flows = context.flows
    if flows.is_empty():
        return empty_hits()
    config = context.config
    # Only pairs that tried enough ports over the whole window can have a burst (hashed: fast to group).
    pair = pl.struct("src_addr", "dst_addr").hash(seed=4)
    tries = flows.select("src_addr", "dst_addr", "dst_port", time="start", _pair=pair).drop_nulls()
    busy = (
        tries.group_by("_pair").agg(pl.col("dst_port").n_unique()).filter(pl.col("dst_port") >= config.port_scan_ports)
    )
    tries = tries.filter(pl.col("_pair").is_in(busy["_pair"].implode())).drop("_pair")
    window = timedelta(minutes=config.port_scan_minutes)
    members = c.bursts(tries.unique(), ["src_addr", "dst_addr"], "dst_port", window, config.port_scan_ports)
    if members.is_empty():
        return empty_hits()
    spans = members.group_by("src_addr", "dst_addr", "_episode").agg(
        _from=pl.col("time").min(), _to=pl.col("time").max(), _peak=pl.col("_peak").max()
    )
    scanned = flows.join(spans.select("src_addr", "dst_addr"), on=["src_addr", "dst_addr"], how="semi")
    rows = c.orient(scanned, c.interface_addresses(flows))
    rows = rows.join(spans, on=["src_addr", "dst_addr"], maintain_order="left").filter(
        pl.col("start").is_between("_from", "_to")
    )
    # The scanner's side is the local one when the scanner is inside; else the target's.
    inside = c.is_internal(pl.col("src_addr")) | (pl.col("_outbound") & (pl.col("_local") == pl.col("src_addr")))
    rows = rows.with_columns(_inside=inside, _key=c.flow_key())
    rows = rows.with_columns(
        _entities=pl.when("_outbound").then(c.flow_entities("actor")).otherwise(c.flow_entities("target")),
        _scanner_instance=pl.when("_outbound").then("instance_id"),
        _target_instance=pl.when(~pl.col("_outbound")).then("instance_id"),
    )
    hits = rows.group_by("src_addr", "dst_addr", "_episode").agg(
        pl.col("account", "region", "_scanner_instance", "_target_instance").drop_nulls().first(),
        pl.col("_inside").any(),
        pl.col("_peak").first(),
        pl.col("start").min().alias("first_seen"),
        pl.col("end").max().alias("last_seen"),
        pl.len().alias("count"),
        (pl.col("action") == "REJECT").sum().alias("_rejected"),
        pl.col("dst_port").n_unique().alias("_ports"),
        pl.col("dst_port").unique().sort().head(8).cast(pl.String).str.join(", ").alias("_sample"),
        c.evidence("_key"),
        c.gather_entities(),
    )
    scanner = pl.coalesce(pl.format("{} ({})", "_scanner_instance", "src_addr"), pl.col("src_addr"))
    target = pl.coalesce(pl.format("{} ({})", "_target_instance", "dst_addr"), pl.col("dst_addr"))
    inside = pl.col("_inside")
    return c.finish(
        hits.with_columns(
            detection_id=pl.lit(DETECTION.id),
            key_type=pl.when(inside & pl.col("_scanner_instance").is_not_null())
            .then(pl.lit("Ec2Instance"))
            .when(~inside & pl.col("_target_instance").is_not_null())
            .then(pl.lit("Ec2Instance"))
            .otherwise(pl.lit("IpAddress")),
            key_id=pl.when(inside)
            .then(pl.coalesce("_scanner_instance", "src_addr"))
            .otherwise(pl.coalesce("_target_instance", "dst_addr")),
            severity=pl.when(inside).then(DETECTION.severity).otherwise(2.0),
            title=pl.concat_str(
                [
                    pl.lit("Port scan of "),
                    target,
                    pl.lit(" by "),
                    scanner,
                    pl.lit(": "),
                    pl.col("_peak").cast(pl.String),
                    pl.lit(f" ports within {config.port_scan_minutes} min"),
                ]
            ),
            details=pl.concat_str(
                [
                    pl.col("src_addr"),
                    pl.lit(" tried "),
                    c.plural(pl.col("_ports"), "port"),
                    pl.lit(" of "),
                    pl.col("dst_addr"),
                    pl.lit(" in "),
                    c.minutes(pl.col("last_seen") - pl.col("first_seen")),
                    pl.lit(" min ("),
                    pl.col("_rejected").cast(pl.String),
                    pl.lit(" of "),
                    c.plural(pl.col("count"), "flow record"),
                    pl.lit(" rejected), e.g. "),
                    pl.col("_sample"),
                    pl.when(inside)
                    .then(pl.lit("; the scanner is inside the network"))
                    .otherwise(pl.lit("; external scanner")),
                ]
            ),
        )
    )
