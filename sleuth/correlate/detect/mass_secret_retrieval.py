"""Mass secret retrieval: one principal reading many different secrets or SecureString parameters quickly.

An application reads the few secrets it needs, over and over; an intruder with a foothold reads all of
them once. The statistic is the number of distinct secrets and decrypted parameters one principal
retrieved successfully within a sliding window of `secret_burst_minutes` (exact sliding-window count,
see `_common.bursts`); a hit is a burst of at least `secret_burst_distinct`. What counts, from the
request parameters:

- secretsmanager GetSecretValue: its secretId (an ARN and a name of one secret count once: the ARN's
  random 6-character suffix is dropped); BatchGetSecretValue: each id of its secretIdList. A batch call
  by filters names no secret (CloudTrail logs neither the names nor the values): each such call counts
  as one retrieval of an unknown set, a lower bound.
- ssm GetParameter / GetParameters with withDecryption true: each parameter name (the decrypted value
  of a SecureString is the secret; without decryption it is ciphertext); GetParametersByPath with
  decryption: each path.

Severity: High when most of the burst's secrets are new for the principal (never retrieved by it earlier
in the data) and it went at machine speed (the burst within 2 minutes, or twice the threshold); Medium for
such novelty at a human pace by a principal established in the data (seen `history_hours` before);
Low otherwise: a principal reading what it always reads, or one without history (an application starting
up at the beginning of the data looks new).
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from sleuth.correlate.detect import _common as c
from sleuth.correlate.detect.base import Context, Detection, empty_hits

DETECTION = Detection(
    id="mass-secret-retrieval",
    title="Mass retrieval of secrets",
    severity=7.0,
    tactic="Credential Access",
    technique="T1555.006",
    techniques=("T1552",),
    description=(
        "One principal retrieved many different Secrets Manager secrets or decrypted SSM SecureString "
        "parameters within minutes, most of them for the first time: harvesting stored credentials."
    ),
    false_positives=(
        "A deployment or configuration tool that loads every secret of an environment, secret rotation or "
        "backup jobs, an administrator auditing secrets. Check the principal and user agent; a principal "
        "reading the secrets it read before is scored Low."
    ),
)

_SECRETS = ["GetSecretValue", "BatchGetSecretValue"]
_PARAMETERS = ["GetParameter", "GetParameters", "GetParametersByPath"]
_STRINGS = pl.List(pl.String)


def _request(path: str) -> pl.Expr:
    return pl.col("request").str.json_path_match(path)


def _names() -> pl.Expr:
    """The secrets and parameters one call retrieved, as `secret:<name>` / `parameter:<name>`."""
    action, decrypt = pl.col("action"), _request("$.withDecryption") == "true"
    secret_name = pl.element().str.replace(r"^arn:[^:]+:secretsmanager:[^:]*:[^:]*:secret:(.+)-[A-Za-z0-9]{6}$", "$1")
    parameter_name = pl.element().str.replace(r"^arn:[^:]+:ssm:[^:]*:[^:]*:parameter", "")
    secrets = (
        pl.when(action == "GetSecretValue")
        .then(pl.concat_list(_request("$.secretId")))
        .when(_request("$.secretIdList").is_not_null())
        .then(_request("$.secretIdList").str.json_decode(_STRINGS))
        .otherwise(pl.concat_list(pl.concat_str([pl.lit("(batch by filter "), pl.col("event_id"), pl.lit(")")])))
    )
    parameters = (
        pl.when(action == "GetParameter")
        .then(pl.concat_list(_request("$.name")))
        .when(action == "GetParameters")
        .then(_request("$.names").str.json_decode(_STRINGS))
        .otherwise(pl.concat_list(pl.concat_str([_request("$.path"), pl.lit(" (by path)")])))
    )
    return (
        pl.when(action.is_in(_SECRETS))
        .then(secrets.list.eval(pl.lit("secret:") + secret_name))
        .when(decrypt.fill_null(False))
        .then(parameters.list.eval(pl.lit("parameter:") + parameter_name))
    )


def run(context: Context) -> pl.DataFrame:
    config = context.config
    wanted = (pl.col("service") == "secretsmanager.amazonaws.com") & pl.col("action").is_in(_SECRETS) | (
        pl.col("service") == "ssm.amazonaws.com"
    ) & pl.col("action").is_in(_PARAMETERS)
    reads = (
        context.events.lazy()
        .with_row_index("_row")
        .filter(wanted & pl.col("error_code").is_null() & c.is_actor())
        .select("_row", "principal", "time", _item=_names())
        .explode("_item")
        .drop_nulls("_item")
        .collect()
    )
    window = timedelta(minutes=config.secret_burst_minutes)
    members = c.bursts(reads, ["principal"], "_item", window, config.secret_burst_distinct)
    if members.is_empty():
        return empty_hits()
    # New: a secret's first retrieval by the principal. Known: the principal was seen history_hours before.
    mine = reads.join(members.select("principal").unique(), on="principal")
    first = mine.group_by("principal", "_item").agg(_first=pl.col("time").min())
    since = context.events.lazy().filter(pl.col("principal").is_in(members["principal"].unique().implode()))
    since = since.group_by("principal").agg(_since=pl.col("time").min()).collect()
    members = members.join(first, on=["principal", "_item"], how="left", maintain_order="left").join(
        since, on="principal", how="left", maintain_order="left"
    )
    members = members.with_columns(
        _new=pl.when(pl.col("time") == pl.col("_first")).then("_item"),
        _known=pl.col("time") - pl.col("_since") >= timedelta(hours=config.history_hours),
    )
    rows = c.gather(context.events, members).with_columns(_entities=c.actor_entities())
    hits = rows.group_by("principal", "_episode").agg(
        pl.col("actor_type", "account", "region").drop_nulls().first(),
        pl.col("time").min().alias("first_seen"),
        pl.col("time").max().alias("last_seen"),
        pl.col("event_id").n_unique().alias("count"),
        pl.col("_peak").max(),
        pl.col("_known").all(),
        pl.col("_item").n_unique().alias("_items"),
        pl.col("_new").drop_nulls().n_unique().alias("_new"),
        pl.col("_item").filter(pl.col("_item").str.starts_with("secret:")).n_unique().alias("_secrets"),
        pl.col("_item").unique(maintain_order=True).head(5).str.replace(r"^\w+:", "").str.join(", ").alias("_sample"),
        c.evidence(),
        c.gather_entities(),
    )
    novel = pl.col("_new") * 2 >= pl.col("_items")
    fast = (pl.col("last_seen") - pl.col("first_seen") <= timedelta(minutes=2)) | (
        pl.col("_peak") >= 2 * config.secret_burst_distinct
    )
    span = c.minutes(pl.col("last_seen") - pl.col("first_seen"))
    minutes = config.secret_burst_minutes
    return c.finish(
        hits.with_columns(
            detection_id=pl.lit(DETECTION.id),
            key_type=c.principal_type(),
            key_id=pl.col("principal"),
            severity=pl.when(novel & fast).then(DETECTION.severity).when(novel & "_known").then(5.0).otherwise(3.0),
            title=pl.format(
                f"Mass secret retrieval by {{}}: {{}} distinct secrets/parameters within {minutes} min",
                c.short_name(),
                "_peak",
            ),
            details=pl.format(
                "{} distinct ({} secrets, {} parameters; {} new for this principal) in {} over {} min, e.g. {}",
                "_items",
                "_secrets",
                pl.col("_items") - pl.col("_secrets"),
                "_new",
                c.plural(pl.col("count"), "call"),
                span,
                "_sample",
            ),
        )
    )
