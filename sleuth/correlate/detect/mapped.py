"""Table-driven detections: every CloudTrail event that matches a row of the mapping table
(`sleuth/data/cloudtrail_attack.csv`, see `table.py`) and its condition is a hit of that row.

Each row is a detection of its own (`RULES`): its hits merge into findings per acting principal, so
"CloudTrail logging stopped by user/bert-jan" and "Access key created for another IAM user by
user/bert-jan" stay two findings. A failed call is still an attempt: it is kept, scored two points
lower (never below Low) and titled as failed. Context rows (severity 0) make no hit; `label_events`
gives investigations the technique of every mapped event, context rows included.

The work is vectorised: a join on service and action keeps the few candidate events, conditions run
on those only, and the events of one row, key entity and merge window are aggregated into one hit
(a million matching events cost a group-by, measured at about 4 s on 2 cores).
"""

from __future__ import annotations

import polars as pl

from sleuth.correlate.detect._conditions import CONDITIONS, failed_expr, foreign_accounts, shared_accounts
from sleuth.correlate.detect.base import Context, Detection, conform_hits, empty_hits
from sleuth.correlate.detect.table import LAMBDA_VERSION, mapped_rules
from sleuth.netaddr import parse_ip

DETECTION = Detection(
    id="cloudtrail-mapped-events",
    title="Security-relevant CloudTrail events (the ATT&CK mapping table)",
    severity=5.0,
    tactic="Execution",
    technique="T1059.009",
    description="Each row of sleuth/data/cloudtrail_attack.csv is a detection: an API call, optionally under a "
    "condition on its parameters, mapped to its ATT&CK tactic and technique (`sleuth rules`).",
    false_positives="Administration and infrastructure-as-code make the same calls: each row's rationale says when.",
)

RULES: tuple[Detection, ...] = tuple(rule.detection() for rule in mapped_rules() if not rule.context_only)

FAILED_PENALTY = 2.0  # a failed attempt scores this much lower ...
FAILED_FLOOR = 1.0  # ... but stays at least Low
_LAMBDA = "lambda.amazonaws.com"
_FEDERATED = ["SAMLUser", "WebIdentityUser", "IdentityCenterUser"]
# Request fields that name what an event acted on, for the hit's one-line details.
TARGET_PATHS = ("userName", "roleName", "groupName", "name", "trailName", "bucketName", "instanceId", "snapshotId",
                 "imageId", "dBSnapshotIdentifier", "dBInstanceIdentifier", "groupId", "functionName", "secretId",
                 "keyId", "detectorId", "policyArn", "resolverQueryLogConfigId", "target", "configurationRecorderName",
                 "domainName")  # fmt: skip


def _rules_frame(include_context: bool) -> pl.DataFrame:
    rules = [rule for rule in mapped_rules() if include_context or not rule.context_only]
    return pl.DataFrame(
        {
            "service": [r.service for r in rules],
            "_action": [r.action for r in rules],
            "rule_id": [r.id for r in rules],
            "rule_condition": [r.condition for r in rules],
            "rule_severity": [r.severity for r in rules],
            "rule_line": [r.line for r in rules],
            "rule_title": [r.title for r in rules],
        },
        schema={
            "service": pl.String,
            "_action": pl.String,
            "rule_id": pl.String,
            "rule_condition": pl.String,
            "rule_severity": pl.Float64,
            "rule_line": pl.Int64,
            "rule_title": pl.String,
        },
    )


def match_events(events: pl.DataFrame, include_context: bool = False) -> pl.DataFrame:
    """The events that match a row of the table, each with its best row (`rule_*` columns)."""
    rules = _rules_frame(include_context)
    if events.is_empty() or rules.is_empty():
        return (
            events.head(0)
            .with_columns(pl.lit(None, pl.String).alias(c) for c in ("rule_id", "rule_condition", "rule_title"))
            .with_columns(pl.lit(None, pl.Float64).alias("rule_severity"))
        )
    actions = rules["_action"].unique().to_list()
    candidates = events.with_row_index("_row").filter(pl.col("action").is_in(actions) | (pl.col("service") == _LAMBDA))
    candidates = candidates.with_columns(
        pl.when(pl.col("service") == _LAMBDA)
        .then(pl.col("action").str.replace(LAMBDA_VERSION, ""))
        .otherwise(pl.col("action"))
        .alias("_action")
    )
    joined = candidates.join(rules, on=["service", "_action"], how="inner")
    kept = [joined.filter(pl.col("rule_condition") == "")]
    for name in joined.filter(pl.col("rule_condition") != "")["rule_condition"].unique().sort().to_list():
        subset = joined.filter(pl.col("rule_condition") == name)
        kept.append(subset.filter(CONDITIONS[name].test(subset)))
    matched = pl.concat(kept)
    best = matched.sort(
        ["_row", "rule_severity", pl.col("rule_condition") != "", "rule_line"],
        descending=[False, True, True, False],
    ).unique(subset="_row", keep="first", maintain_order=True)
    return best.drop("_action", "rule_line")


def label_events(events: pl.DataFrame) -> pl.DataFrame:
    """Every mapped event (context rows included) with its row, tactics and techniques: the TTPs an
    investigation shows. Columns: event_id, time, principal, rule_id, severity, tactics, techniques."""
    matched = match_events(events, include_context=True)
    by_id = {rule.id: rule for rule in mapped_rules()}
    ttps = pl.DataFrame(
        {
            "rule_id": list(by_id),
            "tactics": [list(r.tactics) for r in by_id.values()],
            "techniques": [list(r.all_techniques) for r in by_id.values()],
        },
        schema={"rule_id": pl.String, "tactics": pl.List(pl.String), "techniques": pl.List(pl.String)},
    )
    return (
        matched.select("event_id", "time", "principal", "rule_id", pl.col("rule_severity").alias("severity"))
        .join(ttps, on="rule_id", how="left")
        .sort("time", "event_id", nulls_last=True)
    )


def run(context: Context) -> pl.DataFrame:
    matched = match_events(context.events)
    if matched.is_empty():
        return empty_hits()
    return conform_hits(_hits(matched, context.config.finding_merge_hours))


# --- hits -------------------------------------------------------------------------------------


def _short_principal() -> pl.Expr:
    short = pl.col("principal").str.replace(r"^arn:[^:]+:(?:iam|sts)::\d{12}:", "")
    return pl.coalesce(short, pl.col("account"), pl.lit("an unknown caller"))


def _key_type() -> pl.Expr:
    principal = pl.col("principal")
    return (
        pl.when(principal.str.contains(r"^arn:[^:]+:iam::\d{12}:(?:user/|root$)"))
        .then(pl.lit("AwsUser"))
        .when(principal.str.contains(r"^arn:[^:]+:iam::\d{12}:role/"))
        .then(pl.lit("AwsRole"))
        .when(principal.str.contains(r"^arn:[^:]+:sts::\d{12}:federated-user/"))
        .then(pl.lit("FederatedUser"))
        .when(pl.col("actor_type").is_in(_FEDERATED) & principal.is_not_null())
        .then(pl.lit("FederatedUser"))
        .otherwise(pl.lit("AwsAccount"))
    )


def _entity(entity_type: pl.Expr | str, entity_id: pl.Expr, role: str) -> pl.Expr:
    kind = pl.lit(entity_type) if isinstance(entity_type, str) else entity_type
    return pl.struct(entity_type=kind.cast(pl.String), entity_id=entity_id.cast(pl.String), role=pl.lit(role))


def _resource_entities() -> pl.Expr:
    """Resource ARNs of Detective's entity types: IAM users and roles, buckets, instances."""
    arn = pl.element()
    kind = (
        pl.when(arn.str.contains(r"^arn:[^:]+:iam::\d{12}:user/"))
        .then(pl.lit("AwsUser"))
        .when(arn.str.contains(r"^arn:[^:]+:iam::\d{12}:role/"))
        .then(pl.lit("AwsRole"))
        .when(arn.str.contains(r"^arn:[^:]+:s3:::[^/]+"))
        .then(pl.lit("S3Bucket"))
        .when(arn.str.contains(r"^arn:[^:]+:ec2:[^:]*:\d*:instance/i-"))
        .then(pl.lit("Ec2Instance"))
    )
    entity_id = (
        pl.when(kind == "S3Bucket")
        .then(arn.str.extract(r"^arn:[^:]+:s3:::([^/]+)"))
        .when(kind == "Ec2Instance")
        .then(arn.str.extract(r"instance/(i-[0-9A-Za-z]+)"))
        .otherwise(arn)
    )
    return pl.col("resources").fill_null([]).list.eval(_entity(kind, entity_id, "target"))


def _request(path: str) -> pl.Expr:
    return pl.col("request").str.json_path_match(f"$.{path}")


def _iam_arn(kind: str, name: pl.Expr) -> pl.Expr:
    partition = pl.coalesce(pl.col("actor_arn").str.extract(r"^arn:([^:]+):"), pl.lit("aws"))
    return (
        pl.when(name.str.contains(r"^arn:"))
        .then(name)
        .otherwise(pl.lit("arn:") + partition + pl.lit(":iam::") + pl.col("account") + pl.lit(f":{kind}/") + name)
    )


def _with_external_accounts(matched: pl.DataFrame) -> pl.DataFrame:
    """`_external`: other accounts named by sharing or trust rows (the recipients of what was opened);
    read in Python on those rows only."""
    readers = {
        "foreign_principal": foreign_accounts,
        "shared_with_other_account": lambda request, _: shared_accounts(request),
    }
    empty = pl.lit([], pl.List(pl.String)).alias("_external")
    rows = matched.select(pl.col("rule_condition").is_in(list(readers)).arg_true()).to_series().to_list()
    if not rows:
        return matched.with_columns(empty)
    values = []
    for condition, request, account in matched[rows].select("rule_condition", "request", "account").iter_rows():
        found = readers[condition](request, account)
        values.append([a for a in found if a.isdigit() and len(a) == 12 and a != account])
    found = pl.DataFrame(
        {"_ext_row": rows, "_external": values}, schema={"_ext_row": pl.UInt32, "_external": pl.List(pl.String)}
    )
    return (
        matched.with_row_index("_ext_row")
        .join(found, on="_ext_row", how="left", maintain_order="left")
        .with_columns(pl.col("_external").fill_null(empty))
        .drop("_ext_row")
    )


def _ip_column(matched: pl.DataFrame) -> pl.DataFrame:
    """src_ip as a normalised address (035.1.2.3 -> 35.1.2.3), null for service names."""
    sources = matched["src_ip"].drop_nulls().unique().to_list()
    parsed = {text: parse_ip(text) for text in sources}
    mapping = pl.DataFrame(
        {"src_ip": list(parsed), "_ip": [str(a) if a is not None else None for a in parsed.values()]},
        schema={"src_ip": pl.String, "_ip": pl.String},
    )
    return matched.join(mapping, on="src_ip", how="left")


# Request fields that name the IAM user or role, instance and bucket an event acted on.
_TARGETS = {"_user": "userName", "_role": "roleName", "_instance": "instanceId", "_bucket": "bucketName"}
TARGET_TEXT = r'"(?:' + "|".join(TARGET_PATHS) + r')"\s*:\s*"([^"\\]{1,120})'
# Columns whose distinct values become the entities of a hit: (column, entity type, role).
_ENTITY_COLUMNS = [
    ("_session", "AwsRoleSession", "actor"),
    ("access_key", "AccessKey", "actor"),
    ("_ip", "IpAddress", "actor"),
    ("user_agent", "UserAgent", "actor"),
    ("_user", "AwsUser", "target"),
    ("_role", "AwsRole", "target"),
    ("_instance", "Ec2Instance", "target"),
    ("_bucket", "S3Bucket", "target"),
    ("_new_key", "AccessKey", "target"),
]
MAX_DETAILS = 5  # distinct detail lines joined into one hit


def _hits(matched: pl.DataFrame, merge_hours: int) -> pl.DataFrame:
    """One hit per row x key entity x merge window: events a finding would merge anyway are
    aggregated first (any two events of one window are closer than the merge span), so a million
    matching events cost a group-by, not a million entity lists."""
    matched = _with_external_accounts(_ip_column(matched))
    failed = failed_expr() & (pl.col("rule_condition") != "failed")
    error = pl.coalesce(pl.col("error_code").str.slice(0, 80), pl.lit("failed"))
    key_type = _key_type()
    target = pl.col("request").str.extract(TARGET_TEXT, 1)
    failure = pl.when(failed).then(pl.lit(" (failed: ") + error + pl.lit(")")).otherwise(pl.lit(""))
    window = max(1, merge_hours) * 3_600_000_000  # microseconds
    events = matched.with_columns(
        key_type.alias("key_type"),
        pl.when(key_type == "AwsAccount").then(pl.col("account")).otherwise(pl.col("principal")).alias("key_id"),
        pl.when(failed)
        .then(pl.max_horizontal(pl.col("rule_severity") - FAILED_PENALTY, pl.lit(FAILED_FLOOR)))
        .otherwise(pl.col("rule_severity"))
        .alias("severity"),
        pl.concat_str([pl.col("rule_title"), pl.lit(" by "), _short_principal(), failure]).alias("title"),
        pl.concat_str(
            [
                pl.col("action"),
                pl.when(target.is_not_null()).then(pl.lit(" ") + target).otherwise(pl.lit("")),
                pl.when(pl.col("src_ip").is_not_null()).then(pl.lit(" from ") + pl.col("src_ip")).otherwise(pl.lit("")),
                failure,
            ]
        ).alias("details"),
        pl.when(pl.col("actor_type") == "AssumedRole").then(pl.col("session")).alias("_session"),
        *(_iam_arn(kind, _request(_TARGETS[column])).alias(column) for column, kind in (("_user", "user"),
                                                                                       ("_role", "role"))),
        _request(_TARGETS["_instance"]).alias("_instance"),
        _request(_TARGETS["_bucket"]).alias("_bucket"),
        # the key an access-key creation made: what remediation deactivates, and what links its later use
        pl.when(pl.col("action") == "CreateAccessKey")
        .then(pl.col("response").str.json_path_match("$.accessKey.accessKeyId"))
        .alias("_new_key"),
        (pl.col("time").dt.epoch("us") // window).alias("_window"),
    )  # fmt: skip
    group = ["rule_id", "key_type", "key_id", "account", "region", "_window"]
    hits = (
        events.sort("time", "event_id", nulls_last=True)
        .group_by(group, maintain_order=True)
        .agg(
            pl.col("title").sort_by(["severity", "time"], descending=[True, False]).first(),
            pl.col("severity").max(),
            pl.col("time").min().alias("first_seen"),
            pl.col("time").max().alias("last_seen"),
            pl.len().cast(pl.Int64).alias("count"),
            pl.col("event_id").drop_nulls().alias("event_ids"),
            pl.col("details").unique(maintain_order=True).head(MAX_DETAILS).str.join("; ").alias("details"),
            *(pl.col(column).drop_nulls().unique(maintain_order=True) for column, _, _ in _ENTITY_COLUMNS),
            pl.col("resources").list.explode(keep_nulls=False, empty_as_null=False).unique(maintain_order=True),
            pl.col("_external").list.explode(keep_nulls=False, empty_as_null=False).unique(maintain_order=True),
        )
    )
    entity_lists = [
        pl.concat_list(_entity(pl.col("key_type"), pl.col("key_id"), "actor")),
        pl.concat_list(_entity("AwsAccount", pl.col("account"), "target")),
        *(pl.col(column).list.eval(_entity(kind, pl.element(), role)) for column, kind, role in _ENTITY_COLUMNS),
        _resource_entities(),
        pl.col("_external").list.eval(_entity("AwsAccount", pl.element(), "external")),
    ]
    entities = (
        pl.concat_list(entity_lists)
        .list.filter(
            pl.element().struct.field("entity_id").is_not_null()
            & pl.element().struct.field("entity_type").is_not_null()
        )
        .list.unique(maintain_order=True)
    )
    return hits.select(
        pl.col("rule_id").alias("detection_id"),
        "key_type",
        "key_id",
        "title",
        "severity",
        "account",
        "region",
        "first_seen",
        "last_seen",
        "count",
        "event_ids",
        entities.alias("entities"),
        "details",
    )
