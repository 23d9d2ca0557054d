"""Access-denied burst: one principal collecting many authorization failures in a short time.

Credentials in the wrong hands are tried against whatever the intruder hopes they allow; the refusals
(AccessDenied, AccessDeniedException, UnauthorizedOperation, Client.UnauthorizedOperation, and any
other error code containing "AccessDenied") pile up. The statistic is the number of such failures of one
principal within a sliding window of `denied_burst_minutes` (exact sliding-window count, see
`_common.bursts`); a hit is a burst of at least `denied_burst_count`. Breadth sets the severity: many
different refused actions, or one action tried against many different targets (GetPasswordData on 30
instances: distinct request parameters), read as probing; one request retried in a loop as a broken job.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from sleuth.correlate.detect import _common as c
from sleuth.correlate.detect.base import Context, Detection, empty_hits

DETECTION = Detection(
    id="access-denied-burst",
    title="Burst of access-denied failures",
    severity=5.0,
    tactic="Discovery",
    technique="T1580",
    techniques=("T1526", "T1078.004"),
    description=(
        "One principal received many AccessDenied / UnauthorizedOperation answers within a few minutes: "
        "someone probing what stolen or newly created credentials are allowed to do."
    ),
    false_positives=(
        "A deployment or job running with a role that lacks a permission retries the same call; a policy "
        "change that removed access from a working application. Few distinct calls in the burst point to "
        "such a misconfiguration (scored lower); many distinct services and actions point to probing."
    ),
)

_UNAUTHORIZED = ["UnauthorizedOperation", "Client.UnauthorizedOperation"]
DENIED = (
    pl.col("error_code").str.contains("AccessDenied", literal=True) | pl.col("error_code").is_in(_UNAUTHORIZED)
).fill_null(False)


def run(context: Context) -> pl.DataFrame:
    config = context.config
    window = timedelta(minutes=config.denied_burst_minutes)
    denied = (
        context.events.lazy()
        .with_row_index("_row")
        .filter(c.is_actor() & DENIED)
        .select("_row", "principal", "time")
        .collect()
    )
    members = c.bursts(denied, ["principal"], None, window, config.denied_burst_count)
    if members.is_empty():
        return empty_hits()
    rows = c.gather(context.events, members).with_columns(
        _entities=c.actor_entities(),
        _call=pl.concat_str([pl.col("service").str.replace(r"\.amazonaws\.com$", ""), pl.lit(":"), pl.col("action")]),
    )
    hits = rows.group_by("principal", "_episode").agg(
        pl.col("actor_type").drop_nulls().first(),
        pl.col("account").drop_nulls().first(),
        pl.col("region").drop_nulls().first(),
        pl.col("time").min().alias("first_seen"),
        pl.col("time").max().alias("last_seen"),
        pl.len().alias("count"),
        pl.col("_peak").max(),
        pl.col("_call").n_unique().alias("_calls"),
        pl.concat_str([pl.col("_call"), pl.col("request").fill_null("")]).n_unique().alias("_requests"),
        pl.col("_call").drop_nulls().mode().sort().first().alias("_top"),
        pl.col("error_code").drop_nulls().unique().sort().head(4).str.join(", ").alias("_codes"),
        c.evidence(),
        c.gather_entities(),
    )
    minutes = config.denied_burst_minutes
    severity = (
        pl.when(pl.col("_calls") >= 5)
        .then(DETECTION.severity + 1.0)
        .when((pl.col("_calls") >= 2) | (pl.col("_requests") * 2 >= pl.col("count")))
        .then(DETECTION.severity)
        .otherwise(3.0)
    )
    span = c.minutes(pl.col("last_seen") - pl.col("first_seen"))
    return c.finish(
        hits.with_columns(
            detection_id=pl.lit(DETECTION.id),
            key_type=c.principal_type(),
            key_id=pl.col("principal"),
            title=pl.format(
                f"Access-denied burst for {{}}: {{}} refused calls within {minutes} min", c.short_name(), "_peak"
            ),
            severity=severity,
            details=pl.format(
                f"{{}} refused calls ({{}}) to {{}} distinct actions with {{}} distinct requests in {{}} min, "
                f"most often {{}}; peak {{}} in {minutes} min",
                "count",
                "_codes",
                "_calls",
                "_requests",
                span,
                pl.col("_top").fill_null("?"),
                "_peak",
            ),
        )
    )
