"""Denied, then a policy change, then allowed: a principal widening its own permissions.

The classic IAM privilege escalation leaves this trace: a call fails with AccessDenied, the principal
(or someone for it) changes a policy — AttachUserPolicy, Put*Policy, CreatePolicyVersion,
SetDefaultPolicyVersion, AddUserToGroup, UpdateAssumeRolePolicy — and the very same call (service +
action; for sts:AssumeRole, the same role) then succeeds for the first time in the data (a call that had
worked before was refused for a passing reason). All three within `escalation_window_hours`.

A change is linked to the principal P when it names P (userName / roleName in its parameters; for
AssumeRole, the role P tried to assume), or when it names no user or role (policy versions, group
policies) and P made it. Made by P itself: Privilege Escalation, High. Made by someone else for P (an
administrator granting a permission after a refusal): reported Low, for the timeline.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from sleuth.correlate.detect import _common as c
from sleuth.correlate.detect.access_denied_burst import DENIED
from sleuth.correlate.detect.base import Context, Detection, empty_hits

DETECTION = Detection(
    id="denied-then-allowed",
    title="Access denied, then allowed after a policy change",
    severity=7.5,
    tactic="Privilege Escalation",
    technique="T1098.003",
    techniques=("T1078.004", "T1484.002"),
    description=(
        "A principal was refused a call, a policy change linked to it followed, and the same call then "
        "succeeded: permissions were widened to get past the refusal, typically by the principal itself "
        "(iam:CreatePolicyVersion, AttachUserPolicy, PutUserPolicy on itself)."
    ),
    false_positives=(
        "An administrator granting a missing permission after a user asked (the change is made by someone "
        "else: scored Low); infrastructure code creating a role and its policy and then using it, denied "
        "at first while IAM propagates. Check who made the change and whether it was requested."
    ),
)

CHANGES = [
    "AttachUserPolicy", "AttachRolePolicy", "AttachGroupPolicy", "PutUserPolicy", "PutRolePolicy",
    "PutGroupPolicy", "CreatePolicyVersion", "SetDefaultPolicyVersion", "AddUserToGroup", "UpdateAssumeRolePolicy",
]  # fmt: skip

_NAME = pl.col("principal").str.extract(r"([^/]+)$", 1)
_ROLE_ASKED = pl.col("request").str.json_path_match("$.roleArn").str.extract(r":role/(?:.*/)?([^/]+)$", 1)


def _with_call(rows: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """`rows` with `_call` (service:action:role asked) and `_asked`: the request is read only for AssumeRole."""
    assume = rows.filter(pl.col("action") == "AssumeRole")
    assume = assume.with_columns(request=events.get_column("request").gather(assume["_row"]))
    rows = pl.concat(
        [rows.filter(pl.col("action") != "AssumeRole"), assume.with_columns(_asked=_ROLE_ASKED).drop("request")],
        how="diagonal",
    )
    call = [pl.col("service"), pl.lit(":"), pl.col("action"), pl.lit(":"), pl.col("_asked").fill_null("")]
    return rows.with_columns(_call=pl.concat_str(call))


def run(context: Context) -> pl.DataFrame:
    window = timedelta(hours=context.config.escalation_window_hours)
    events = context.events.lazy().with_row_index("_row").filter(c.is_actor())
    keys = ["principal", "service", "action"]
    narrow = events.select("_row", *keys, "account", "time", "error_code")
    failures = narrow.filter(DENIED).collect()
    if failures.is_empty():
        return empty_hits()
    failures = _with_call(failures, context.events)
    allowed = narrow.filter(pl.col("error_code").is_null()).join(
        failures.lazy().select(keys).unique(), on=keys, how="semi"
    )
    allowed = _with_call(allowed.collect(), context.events)
    allowed = allowed.join(failures.select("principal", "_call").unique(), on=["principal", "_call"], how="semi")
    # The first success after each refusal, within the window, if the call had never succeeded before it
    # (a call that worked earlier was refused for a passing reason, not for want of a permission).
    first = allowed.group_by("principal", "_call").agg(_first=pl.col("time").min())
    pairs = (
        allowed.join(first, on=["principal", "_call"])
        .filter(pl.col("time") == pl.col("_first"))
        .sort("time")
        .join_asof(
            failures.sort("time").select("principal", "_call", "_asked", _t1="time", _r1="_row"),
            left_on="time",
            right_on="_t1",
            by=["principal", "_call"],
            strategy="backward",
            tolerance=window,
            allow_exact_matches=False,
            check_sortedness=False,
        )
        .drop_nulls("_t1")
        .group_by("_r1")
        .agg(pl.all().sort_by("time").first())
    )
    changes = (
        events.filter(pl.col("action").is_in(CHANGES) & pl.col("error_code").is_null())
        .select(
            "account",
            _t2="time",
            _r2="_row",
            _by="principal",
            _change="action",
            _link=pl.coalesce(
                pl.concat_str([pl.lit("user:"), pl.col("request").str.json_path_match("$.userName")]),
                pl.concat_str([pl.lit("role:"), pl.col("request").str.json_path_match("$.roleName")]),
                pl.col("principal"),
            ),
        )
        .collect()
    )
    if pairs.is_empty() or changes.is_empty():
        return empty_hits()
    kind = pl.when(pl.col("principal").str.contains(":role/")).then(pl.lit("role:")).otherwise(pl.lit("user:"))
    links = (
        pairs.with_columns(
            _link=pl.concat_list(
                pl.col("principal"), pl.concat_str([kind, _NAME]), pl.concat_str([pl.lit("role:"), "_asked"])
            )
        )
        .explode("_link")
        .drop_nulls("_link")
    )
    linked = (
        links.join(changes, on=["account", "_link"], how="inner")
        .filter((pl.col("_t2") > pl.col("_t1")) & (pl.col("_t2") < pl.col("time")))
        .sort("_t2")
        .group_by("_r1")
        .agg(pl.all().last())
    )
    if linked.is_empty():
        return empty_hits()
    hits = linked.group_by("principal", "_r2").agg(
        pl.col("account", "_by", "_t2", "_change").first(),
        pl.col("_t1").min().alias("first_seen"),
        pl.col("time").max().alias("last_seen"),
        pl.col("_call").str.replace(r":$", "").str.replace(r"\.amazonaws\.com", "").unique().sort().alias("_calls"),
        pl.col("_r1", "_row"),
    )
    # Evidence per hit: the refusals, the change, the successes.
    per_hit = hits.with_row_index("_hit").select("_hit", _row=pl.concat_list("_r1", "_r2", "_row")).explode("_row")
    detail = c.gather(context.events, per_hit).with_columns(_entities=c.actor_entities())
    evidence = detail.group_by("_hit").agg(
        pl.col("region").drop_nulls().first(),
        pl.col("actor_type").drop_nulls().first(),
        c.evidence(),
        c.gather_entities(),
    )
    hits = hits.with_row_index("_hit").join(evidence, on="_hit", how="left")
    self_made = pl.col("_by") == pl.col("principal")
    by_name = c.short_name(pl.col("_by"))
    how = (
        pl.when(self_made)
        .then(pl.lit("changing its own permissions"))
        .otherwise(pl.format("{} changed a policy", by_name))
    )
    return c.finish(
        hits.with_columns(
            detection_id=pl.lit(DETECTION.id),
            key_type=c.principal_type(),
            key_id=pl.col("principal"),
            count=pl.col("_r1").list.len(),
            severity=pl.when(self_made).then(DETECTION.severity).otherwise(3.0),
            title=pl.format("{} was denied, then allowed after {} ({})", c.short_name(), how, "_change"),
            details=pl.format(
                "refused, then allowed: {}; {} by {} at {}",
                pl.col("_calls").list.join(", "),
                "_change",
                by_name,
                pl.col("_t2").dt.strftime("%Y-%m-%d %H:%M:%S"),
            ),
        )
    )
