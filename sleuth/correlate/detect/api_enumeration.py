"""API enumeration burst: one principal making many *different* read calls in a short time.

An intruder holding fresh credentials maps what they can reach: List*/Describe*/Get* across services,
often with many AccessDenied answers. Normal workloads repeat the same few calls, so the statistic is
the number of distinct read calls (service + action, e.g. `iam:ListUsers`) a principal makes within a
sliding window of `enum_burst_minutes`; a hit is a burst of at least `enum_burst_distinct` of them
(exact sliding-window count, see `_common.bursts`). Reads are calls named List*/Describe*/Get* or
logged with readOnly true; failed calls count too. One hit per burst, keyed by the principal.

Severity: Medium when most of the burst's calls are new for the principal (never made by it earlier in
the data) — an identity exploring what it has never touched; Low when the principal has made most of
them before (a busy person or tool doing its usual rounds). Breadth (twice the threshold) and many
refusals (a fifth or more of the calls denied) raise it.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from sleuth.correlate.detect import _common as c
from sleuth.correlate.detect.base import Context, Detection, empty_hits

DETECTION = Detection(
    id="api-enumeration-burst",
    title="API enumeration burst",
    severity=5.0,
    tactic="Discovery",
    technique="T1580",
    techniques=("T1526", "T1087.004", "T1069.003"),
    description=(
        "One principal made many different List/Describe/Get calls within a few minutes, most of them new "
        "for it: the pattern of someone mapping an account with credentials they just obtained (Pacu or "
        "ScoutSuite-like sweeps, manual recon)."
    ),
    false_positives=(
        "Security and inventory scanners (CSPM, Prowler, ScoutSuite, Config, Datadog/Wiz integrations) and "
        "console pages that load many views do the same; check the user agent and whether the principal "
        "is such a tool's role. A principal repeating calls it made before is scored Low. Many AccessDenied "
        "answers in the burst make a legitimate scanner unlikely."
    ),
)

_READ = pl.col("action").str.contains(r"^(List|Describe|Get)") | pl.col("read_only").fill_null(False)
_CALL = pl.concat_str([pl.col("service").fill_null(""), pl.lit(":"), pl.col("action")])


def run(context: Context) -> pl.DataFrame:
    config = context.config
    window = timedelta(minutes=config.enum_burst_minutes)
    reads = (
        context.events.lazy()
        .with_row_index("_row")
        .filter(c.is_actor() & _READ & pl.col("action").is_not_null())
        .select("_row", "principal", "time", _call=_CALL)
        .collect()
    )
    members = c.bursts(reads, ["principal"], "_call", window, config.enum_burst_distinct)
    if members.is_empty():
        return empty_hits()
    # A call is new for the principal at its first occurrence in the data.
    seen = reads.filter(pl.col("principal").is_in(members["principal"].unique().implode()))
    first = seen.group_by("principal", "_call").agg(_first=pl.col("time").min())
    members = members.join(first, on=["principal", "_call"], how="left", maintain_order="left")
    rows = c.gather(context.events, members).with_columns(
        _entities=c.actor_entities(),
        _new=pl.when(pl.col("time") == pl.col("_first")).then(pl.col("_call")),
        _denied=pl.col("error_code").str.contains(r"(?i)AccessDenied|Unauthorized").fill_null(False),
        _service=pl.col("service").str.replace(r"\.amazonaws\.com$", ""),
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
        pl.col("_new").drop_nulls().n_unique().alias("_new"),
        pl.col("_service").n_unique().alias("_services"),
        pl.col("_denied").sum().alias("_denied"),
        c.evidence(),
        c.gather_entities(),
    )
    minutes = config.enum_burst_minutes
    severity = (
        pl.when(pl.col("_new") * 2 >= pl.col("_calls")).then(DETECTION.severity).otherwise(3.0)
        + pl.when(pl.col("_peak") >= 2 * config.enum_burst_distinct).then(1.0).otherwise(0.0)
        + pl.when(pl.col("_denied") * 5 >= pl.col("count")).then(1.5).otherwise(0.0)
    )
    span = c.minutes(pl.col("last_seen") - pl.col("first_seen"))
    return c.finish(
        hits.with_columns(
            detection_id=pl.lit(DETECTION.id),
            key_type=c.principal_type(),
            key_id=pl.col("principal"),
            title=pl.format(
                f"API enumeration by {{}}: {{}} distinct read calls within {minutes} min", c.short_name(), "_peak"
            ),
            severity=severity,
            details=pl.format(
                f"{{}} distinct read calls ({{}} new for this principal) across {{}} services in {{}} min: {{}} calls, "
                f"{{}} denied; peak {{}} in {minutes} min",
                "_calls",
                "_new",
                "_services",
                span,
                "count",
                "_denied",
                "_peak",
            ),
        )
    )
