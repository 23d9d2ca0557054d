"""Root account use: activity of the account's root user.

Root can do everything and should sign in only for the few tasks that need it, so any root activity is
worth a look (CIS AWS 1.7, GuardDuty's Policy:IAMUser/RootCredentialUsage). Events with userIdentity.type
Root are grouped into spans per account: consecutive events less than `root_session_gap_minutes` apart
are one span and one hit (findings merge later by key entity). Left out: calls AWS services make as root
on the account's behalf (the source is a service host such as ec2.amazonaws.com, or "AWS Internal"), and
failed sign-ins (console-brute-force reports those: they are attempts, not use).

Severity: Low, as GuardDuty rates root credential usage; Medium when the span holds a console sign-in
without MFA, or calls made with a long-term root access key (AKIA...), both against AWS's advice.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from sleuth.correlate.detect import _common as c
from sleuth.correlate.detect.base import Context, Detection, empty_hits

DETECTION = Detection(
    id="root-account-use",
    title="Root account used",
    severity=2.0,
    tactic="Privilege Escalation",
    technique="T1078.004",
    tactics=("Initial Access",),
    description=(
        "The account's root user made API calls or signed in to the console. Root bypasses IAM policies; "
        "stolen root credentials give an intruder the whole account."
    ),
    false_positives=(
        "The few tasks only root can do (closing the account, changing the support plan, restoring an "
        "S3 bucket policy that locks everyone out); confirm with the account owner. Service-invoked root "
        "events are already left out."
    ),
)

_SIGNIN_FAILED = (pl.col("action") == "ConsoleLogin") & pl.col("response").str.contains("Failure").fill_null(False)


def run(context: Context) -> pl.DataFrame:
    gap = timedelta(minutes=context.config.root_session_gap_minutes)
    by_service = pl.col("src_ip").str.contains(r"(?i)amazonaws\.com(\.cn)?$|^AWS Internal$").fill_null(False)
    root = (
        context.events.lazy()
        .with_row_index("_row")
        .filter((pl.col("actor_type") == "Root") & ~by_service & ~_SIGNIN_FAILED)
        .select("_row", "time", "account")
        .sort("account", "time")
        .collect()
    )
    if root.is_empty():
        return empty_hits()
    new_span = (pl.col("account") != pl.col("account").shift(1)).fill_null(True) | (
        pl.col("time") - pl.col("time").shift(1) > gap
    )
    root = root.with_columns(_span=new_span.cum_sum())
    rows = c.gather(context.events, root).with_columns(
        _entities=c.actor_entities(),
        _no_mfa=((pl.col("action") == "ConsoleLogin") & (pl.col("mfa") == False)).fill_null(False),  # noqa: E712
        _long_key=pl.col("access_key").str.starts_with("AKIA").fill_null(False),
        _ip=c.ip(pl.col("src_ip")),
    )
    hits = rows.group_by("_span").agg(
        pl.col("principal").drop_nulls().first(),
        pl.col("account").first(),
        pl.col("region").drop_nulls().first(),
        pl.col("time").min().alias("first_seen"),
        pl.col("time").max().alias("last_seen"),
        pl.len().alias("count"),
        pl.col("action").drop_nulls().unique(maintain_order=True).head(5).str.join(", ").alias("_actions"),
        pl.col("action").n_unique().alias("_distinct"),
        pl.col("_ip").drop_nulls().unique(maintain_order=True).head(3).str.join(", ").alias("_ips"),
        pl.col("_no_mfa").any(),
        pl.col("_long_key").any(),
        c.evidence(),
        c.gather_entities(),
    )
    principal = pl.coalesce("principal", pl.format("arn:aws:iam::{}:root", "account"))
    risky = pl.col("_no_mfa") | pl.col("_long_key")
    return c.finish(
        hits.with_columns(
            detection_id=pl.lit(DETECTION.id),
            key_type=pl.lit("AwsUser"),
            key_id=principal,
            severity=pl.when(risky).then(5.0).otherwise(DETECTION.severity),
            title=pl.concat_str(
                [
                    pl.lit("Root account of "),
                    pl.col("account"),
                    pl.lit(" used: "),
                    c.plural(pl.col("count"), "event"),
                    pl.when(pl.col("_no_mfa")).then(pl.lit(", console sign-in without MFA")).otherwise(pl.lit("")),
                    pl.when(pl.col("_long_key")).then(pl.lit(", root access key")).otherwise(pl.lit("")),
                ]
            ),
            details=pl.concat_str(
                [
                    c.plural(pl.col("count"), "root event"),
                    pl.lit(" ("),
                    c.plural(pl.col("_distinct"), "distinct action"),
                    pl.lit(": "),
                    pl.col("_actions"),
                    pl.when(pl.col("_distinct") > 5).then(pl.lit(", ...")).otherwise(pl.lit("")),
                    pl.lit(") from "),
                    pl.col("_ips").replace("", "no IP address"),
                    pl.lit(" in "),
                    c.minutes(pl.col("last_seen") - pl.col("first_seen")),
                    pl.lit(" min"),
                ]
            ),
        )
    )
