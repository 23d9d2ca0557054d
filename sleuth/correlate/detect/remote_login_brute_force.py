"""SSH / RDP brute force seen in flow logs: many connections from one external address to port 22 or
3389 of one local address.

A connection is a distinct source port of the external peer (a long session spans several flow records
with one source port, and counts once). The statistic is the number of such connections from one peer to
one local address and port within a sliding hour (exact sliding-window count, see `_common.bursts`); a hit
is at least `login_brute_force_attempts`. Rejected attempts count: the peer tried.

Severity: Low, as GuardDuty rates an instance that is the target of SSH/RDP brute force (exposed
services are probed all day); Medium when the peer also called AWS APIs (it holds credentials of the
account) or is on a threat-intel list; more when the port accepted connections and one of them carried
more than a login's worth of data (10 KB and up), a sign that a login may have succeeded.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from sleuth.correlate.detect import _common as c
from sleuth.correlate.detect.base import Context, Detection, empty_hits

DETECTION = Detection(
    id="remote-login-brute-force",
    title="SSH/RDP brute force against an instance",
    severity=2.0,
    tactic="Credential Access",
    technique="T1110",
    techniques=("T1110.001", "T1021.004", "T1021.001"),
    description=(
        "Many connections from one external address to the SSH or RDP port of one local address within an "
        "hour: password guessing against an exposed login service."
    ),
    false_positives=(
        "Internet-wide scanners and bots probe every exposed SSH/RDP port (scored Low); a deployment tool "
        "opening many short SSH sessions from a fixed address. Restrict the port to known addresses."
    ),
    frames=("flows",),
)

_PORTS = [22, 3389]
_SESSION_BYTES = 10_000


def run(context: Context) -> pl.DataFrame:
    flows = context.flows
    if flows.is_empty():
        return empty_hits()
    config = context.config
    logins = c.orient(
        flows.filter(pl.col("dst_port").is_in(_PORTS) & (pl.col("protocol") == 6).fill_null(True)),
        c.interface_addresses(flows),
    )
    logins = logins.filter(~pl.col("_outbound") & ~c.is_internal(pl.col("_peer"))).with_columns(time=pl.col("start"))
    members = c.bursts(
        logins, ["_peer", "_local", "dst_port"], "src_port", timedelta(hours=1), config.login_brute_force_attempts
    )
    if members.is_empty():
        return empty_hits()
    members = members.with_columns(_key=c.flow_key(), _entities=c.flow_entities("target"))
    accepted = pl.col("action") != "REJECT"
    hits = members.group_by("_peer", "_local", "dst_port", "_episode").agg(
        pl.col("account", "region", "instance_id").drop_nulls().first(),
        pl.col("_peak").first(),
        pl.col("src_port").n_unique().alias("_connections"),
        accepted.fill_null(True).sum().alias("_accepted"),
        pl.col("bytes").filter(accepted.fill_null(True)).max().fill_null(0).alias("_largest"),
        pl.col("start").min().alias("first_seen"),
        pl.col("end").max().alias("last_seen"),
        pl.len().alias("count"),
        c.evidence("_key"),
        c.gather_entities(),
    )
    hits = hits.join(c.peer_context(context.events, context.intel, hits["_peer"]), on="_peer", how="left")
    callers = pl.col("_callers").list.len().fill_null(0) > 0
    flagged = pl.col("_intel").is_not_null()
    session = pl.col("_largest") >= _SESSION_BYTES
    service = pl.when(pl.col("dst_port") == 22).then(pl.lit("SSH")).otherwise(pl.lit("RDP"))
    target = pl.coalesce(pl.format("{} ({})", "instance_id", "_local"), pl.col("_local"))
    return c.finish(
        hits.with_columns(
            detection_id=pl.lit(DETECTION.id),
            **c.local_key(),
            severity=(
                pl.lit(DETECTION.severity)
                + pl.when(callers | flagged).then(3.0).otherwise(0.0)
                + pl.when(session).then(2.0).otherwise(0.0)
            ).clip(upper_bound=9.0),
            title=pl.format(
                "{} brute force against {} from {}: {} connections within an hour", service, target, "_peer", "_peak"
            ),
            details=pl.format(
                "{} from {} to port {} of {} in {} min; {} of {} accepted, largest {} bytes{}",
                c.plural(pl.col("_connections"), "connection"),
                "_peer",
                "dst_port",
                "_local",
                c.minutes(pl.col("last_seen") - pl.col("first_seen")),
                "_accepted",
                c.plural(pl.col("count"), "flow record"),
                "_largest",
                c.peer_notes(),
            ),
        )
    )
