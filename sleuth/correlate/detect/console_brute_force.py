"""Console password guessing: repeated failed sign-ins from one address against one identity.

Failed ConsoleLogin events (responseElements ConsoleLogin "Failure", or errorMessage "Failed
authentication") are grouped by source address and target identity: root by account, an IAM user by
account and user name (failed sign-ins often carry only userIdentity.userName and accountId, or no
name at all for unknown users: those group as "unknown user"). The statistic: failures since the
previous success from that address, counted over the `brute_force_hours` before each success.

- At least `brute_force_failures` failures, then a success from the same address: the guess worked.
  High (Credential Access T1110, then Initial Access T1078.004); Low when the address had signed in as
  that identity successfully before the failures began (someone mistyping their own password).
- At least that many failures within `brute_force_hours` and no success after them: Medium, Low from a
  known address.

Root's severity is one point higher. Several successes after one run of failures: the first one closes it.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from sleuth.correlate.detect import _common as c
from sleuth.correlate.detect.base import Context, Detection, empty_hits

DETECTION = Detection(
    id="console-brute-force",
    title="Console sign-in brute force",
    severity=8.0,
    tactic="Credential Access",
    technique="T1110",
    techniques=("T1110.001", "T1078.004"),
    tactics=("Initial Access",),
    description=(
        "Repeated failed console sign-ins from one address against one identity, then a successful one "
        "from the same address: a guessed or stuffed password. Failures without a success are reported at "
        "a lower severity."
    ),
    false_positives=(
        "A person mistyping their own password from their usual address (scored Low when the address had "
        "signed in successfully before); a shared office NAT where several people fail. Check the user "
        "agent and whether MFA was used on the success."
    ),
)

_FAILED = pl.col("response").str.contains(r'"ConsoleLogin"\s*:\s*"Failure"').fill_null(False) | pl.col(
    "error_message"
).str.contains("Failed authentication", literal=True).fill_null(False)
_SUCCESS = pl.col("response").str.contains(r'"ConsoleLogin"\s*:\s*"Success"').fill_null(False) & ~_FAILED
_HIDDEN = "HIDDEN_DUE_TO_SECURITY_REASONS"


def run(context: Context) -> pl.DataFrame:
    config = context.config
    window = timedelta(hours=config.brute_force_hours)
    name = pl.when(pl.col("user_name") == _HIDDEN).then(None).otherwise(pl.col("user_name"))
    who = (
        pl.when(pl.col("actor_type") == "Root")
        .then(pl.lit("root"))
        .otherwise(pl.coalesce(name, pl.col("principal").str.extract(r":user/(?:.*/)?([^/]+)$", 1), pl.lit("?")))
    )
    logins = (
        context.events.lazy()
        .with_row_index("_row")
        .filter((pl.col("action") == "ConsoleLogin") & (_FAILED | _SUCCESS))
        .select(
            "_row",
            "time",
            "account",
            _ip=c.ip(pl.col("src_ip")).fill_null(pl.col("src_ip")),
            _who=pl.concat_str([pl.col("account").fill_null("?"), pl.lit("/"), who]),
            _ok=_SUCCESS,
        )
        .sort("_ip", "_who", "time")
        .collect()
    )
    group = ["_ip", "_who"]
    after_success = pl.col("_ok").cast(pl.Int32).cum_sum().over(group) - pl.col("_ok").cast(pl.Int32)
    # Attempt runs: a run is the failures after one success (or the start) and the success closing it.
    logins = logins.with_columns(_run=after_success)
    last = pl.col("time").max().over([*group, "_run"])
    runs = logins.filter(~pl.col("_ok") & (pl.col("time") >= last - window) | pl.col("_ok"))
    runs = runs.group_by([*group, "_run"]).agg(
        pl.col("_row"),
        pl.col("time").min().alias("first_seen"),
        pl.col("time").max().alias("last_seen"),
        (~pl.col("_ok")).sum().alias("_failures"),
        pl.col("_ok").any().alias("_success"),
        (pl.col("_run").first() > 0).alias("_known"),  # a success from this address came before
        pl.col("account").drop_nulls().first(),
    )
    runs = runs.filter(pl.col("_failures") >= config.brute_force_failures)
    if runs.is_empty():
        return empty_hits()
    runs = runs.with_row_index("_hit")
    members = c.gather(context.events, runs.select("_hit", "_row").explode("_row"))
    # The identity: the ARN when any event of the run has one, else one built from the account and name.
    arn = pl.when(pl.col("principal").str.starts_with("arn:")).then(pl.col("principal"))
    members = members.with_columns(_arn=arn, _entities=c.actor_entities())
    details = members.group_by("_hit").agg(
        pl.col("_arn").drop_nulls().first(),
        pl.col("actor_type").drop_nulls().first(),
        pl.col("region").drop_nulls().first(),
        c.evidence(),
        c.gather_entities(),
    )
    hits = runs.join(details, on="_hit")
    user = pl.col("_who").str.extract(r"/(.*)$", 1)
    built = (
        pl.when(user == "root")
        .then(pl.format("arn:aws:iam::{}:root", "account"))
        .when(user != "?")
        .then(pl.format("arn:aws:iam::{}:user/{}", "account", user))
    )
    identity = pl.coalesce("_arn", built)
    hits = hits.with_columns(
        key_type=pl.when(identity.is_not_null())
        .then(c.principal_type(principal=identity))
        .otherwise(pl.lit("AwsAccount")),
        key_id=pl.coalesce(identity, "account"),
        _name=pl.when(identity.is_not_null()).then(c.short_name(identity)).otherwise(pl.lit("an unknown user")),
    )
    known, success = pl.col("_known"), pl.col("_success")
    severity = pl.when(success & ~known).then(DETECTION.severity).when(~known).then(5.0).otherwise(3.0)
    severity = severity + pl.when(user == "root").then(1.0).otherwise(0.0)
    when = "%Y-%m-%d %H:%M"
    outcome = pl.when(success).then(pl.lit(", then a successful sign-in")).otherwise(pl.lit(", no success"))
    history = pl.when(known).then(pl.lit("; the address had signed in as this identity before"))
    history = history.otherwise(pl.lit("; no earlier successful sign-in from this address"))
    return c.finish(
        hits.with_columns(
            detection_id=pl.lit(DETECTION.id),
            count=pl.col("_failures") + success.cast(pl.Int64),
            severity=severity.clip(upper_bound=10.0),
            title=pl.format(
                "{}{} failed console sign-ins as {} from {}",
                pl.when(success).then(pl.lit("Console sign-in after ")).otherwise(pl.lit("")),
                "_failures",
                "_name",
                "_ip",
            ),
            details=pl.format(
                "{} failures from {} between {} and {}{}{}",
                "_failures",
                "_ip",
                pl.col("first_seen").dt.strftime(when),
                pl.col("last_seen").dt.strftime(when),
                outcome,
                history,
            ),
            entities=pl.concat_list(
                pl.concat_list(c.entity(pl.col("key_type"), pl.col("key_id"), "target")), "entities"
            ),
        )
    )
