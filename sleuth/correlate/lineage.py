"""Credential lineage: which caller obtained which credentials, and where they were used.

Each credential-issuing event is one link:
- `AssumeRole`, `AssumeRoleWithSAML`, `AssumeRoleWithWebIdentity`: the caller (a user, a role
  session: role chaining) obtains a role session (`responseElements.assumedRoleUser.assumedRoleId`)
  and its temporary key (`responseElements.credentials.accessKeyId`); a role in another account
  than the caller's is a cross-account hop;
- `GetSessionToken`, `GetFederationToken`: the caller obtains a temporary key (and, for federation,
  a federated user);
- `CreateAccessKey`: a long-term key for `userName` (the caller itself when absent), made by the caller;
- `ConsoleLogin` success: the console session's temporary keys are not in the record, so the keys
  the principal first uses from the same address within `_CONSOLE_KEY_HOURS` after it, and that no
  other link issued, are linked as `console` (inferred).
Every link then lists the keys its session used and the events made with its key or session.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

_ASSUME = ["AssumeRole", "AssumeRoleWithSAML", "AssumeRoleWithWebIdentity"]
_TOKENS = ["GetSessionToken", "GetFederationToken"]
_CONSOLE_KEY_HOURS = 12
# The events that may issue credentials (a filter on eventName that keeps every link).
ISSUING = [*_ASSUME, *_TOKENS, "CreateAccessKey", "ConsoleLogin"]

LINEAGE: dict[str, pl.DataType] = {
    "kind": pl.String(),  # assume_role | session_token | federation_token | access_key | console
    "time": pl.Datetime("us", "UTC"),
    "event_id": pl.String(),
    "account": pl.String(),
    "caller": pl.String(),  # the principal that obtained the credentials
    "caller_session": pl.String(),  # its role session, when it was one (role chaining)
    "caller_key": pl.String(),
    "src_ip": pl.String(),
    "role": pl.String(),  # the role assumed (ARN)
    "issued_session": pl.String(),  # <rolePrincipalId>:<sessionName>
    "issued_key": pl.String(),
    "issued_to": pl.String(),  # the principal the credentials belong to
    "cross_account": pl.Boolean(),
}


def _json(path: str) -> pl.Expr:
    return pl.col("response").str.json_path_match(path)


def _request(path: str) -> pl.Expr:
    return pl.col("request").str.json_path_match(path)


def credential_links(events: pl.LazyFrame) -> pl.DataFrame:
    """One row per successful credential-issuing event, in time order (columns: LINEAGE)."""
    issuing = events.filter(
        pl.col("action").is_in([*_ASSUME, *_TOKENS, "CreateAccessKey"]) & pl.col("error_code").is_null()
    )
    role = pl.coalesce(
        _request("$.roleArn"),
        _json("$.assumedRoleUser.arn").str.replace(
            r"^arn:(aws[\w-]*):sts::(\d+):assumed-role/([^/]+)/.*$", "arn:${1}:iam::${2}:role/${3}"
        ),
    )
    # CreateAccessKey without userName makes a key for the caller itself (the response then names the
    # caller, "Root" for the root user): only the request says whose key it is.
    user_name = _request("$.userName")
    caller_account = pl.col("principal").str.extract(r"^arn:aws[\w-]*:(?:iam|sts)::(\d+):", 1)
    links = issuing.select(
        pl.when(pl.col("action").is_in(_ASSUME))
        .then(pl.lit("assume_role"))
        .when(pl.col("action") == "GetSessionToken")
        .then(pl.lit("session_token"))
        .when(pl.col("action") == "GetFederationToken")
        .then(pl.lit("federation_token"))
        .otherwise(pl.lit("access_key"))
        .alias("kind"),
        "time",
        "event_id",
        "account",
        pl.col("principal").alias("caller"),
        pl.col("session").alias("caller_session"),
        pl.col("access_key").alias("caller_key"),
        pl.col("src_ip"),
        pl.when(pl.col("action").is_in(_ASSUME)).then(role).alias("role"),
        _json("$.assumedRoleUser.assumedRoleId").alias("issued_session"),
        pl.coalesce(_json("$.credentials.accessKeyId"), _json("$.accessKey.accessKeyId")).alias("issued_key"),
        pl.when(pl.col("action").is_in(_ASSUME))
        .then(role)
        .when(pl.col("action") == "CreateAccessKey")
        .then(
            pl.when(user_name.is_not_null())
            .then(pl.concat_str(pl.lit("arn:aws:iam::"), pl.col("account"), pl.lit(":user/"), user_name))
            .otherwise(pl.col("principal"))
        )
        .when(pl.col("action") == "GetFederationToken")
        .then(_json("$.federatedUser.arn"))
        .otherwise(pl.col("principal"))
        .alias("issued_to"),
        (
            pl.col("action").is_in(_ASSUME)
            & (role.str.extract(r"::(\d+):", 1) != pl.coalesce(caller_account, pl.col("account")))
        )
        .fill_null(False)
        .alias("cross_account"),
    )
    found = links.collect()
    console = _console_links(events, found)
    return pl.concat([found.cast(LINEAGE), console.cast(LINEAGE)]).sort("time", "event_id")


def _console_links(events: pl.LazyFrame, issued: pl.DataFrame) -> pl.DataFrame:
    """Keys first used by a principal soon after its console sign-in from the same address."""
    logins = (
        events.filter(
            (pl.col("action") == "ConsoleLogin")
            & pl.col("error_code").is_null()
            & (pl.col("response").str.json_path_match("$.ConsoleLogin") == "Success").fill_null(True)
        )
        .select("time", "event_id", "account", pl.col("principal"), "src_ip")
        .collect()
    )
    if logins.is_empty():
        return pl.DataFrame(schema=LINEAGE)
    known = issued["issued_key"].drop_nulls().implode()
    first_use = (
        events.filter(
            pl.col("access_key").str.starts_with("ASIA")
            & pl.col("principal").is_in(logins["principal"].unique().implode())
            & ~pl.col("access_key").is_in(known)
        )
        .group_by("principal", "access_key", "src_ip")
        .agg(pl.col("time").min().alias("used"))
        .collect()
        .sort("used")
    )
    joined = first_use.join_asof(
        logins.sort("time").rename({"time": "login"}),
        left_on="used",
        right_on="login",
        by=["principal", "src_ip"],
        strategy="backward",
        tolerance=timedelta(hours=_CONSOLE_KEY_HOURS),
        check_sortedness=False,  # sorted by time above; polars cannot check it within groups
    ).filter(pl.col("login").is_not_null())
    return joined.select(
        pl.lit("console").alias("kind"),
        pl.col("login").alias("time"),
        "event_id",
        "account",
        pl.col("principal").alias("caller"),
        pl.lit(None, pl.String).alias("caller_session"),
        pl.lit(None, pl.String).alias("caller_key"),
        "src_ip",
        pl.lit(None, pl.String).alias("role"),
        pl.lit(None, pl.String).alias("issued_session"),
        pl.col("access_key").alias("issued_key"),
        pl.col("principal").alias("issued_to"),
        pl.lit(False).alias("cross_account"),
    )


def with_usage(links: pl.DataFrame, events: pl.LazyFrame) -> pl.DataFrame:
    """Each link with what its credentials did: keys_used (by its session), events, first/last use."""
    if links.is_empty():
        return links.with_columns(
            pl.lit(None, pl.List(pl.String)).alias("keys_used"),
            pl.lit(0, pl.UInt32).alias("events"),
            pl.lit(None, pl.Datetime("us", "UTC")).alias("first_used"),
            pl.lit(None, pl.Datetime("us", "UTC")).alias("last_used"),
        )
    keys = links["issued_key"].drop_nulls().unique().implode()
    sessions = links["issued_session"].drop_nulls().unique().implode()
    used = (
        events.filter(pl.col("access_key").is_in(keys) | pl.col("session").is_in(sessions))
        .select("time", "access_key", "session")
        .collect()
    )
    by_key = used.group_by("access_key").agg(
        pl.len().alias("key_events"), pl.col("time").min().alias("key_first"), pl.col("time").max().alias("key_last")
    )
    by_session = (
        used.filter(pl.col("session").is_not_null())
        .group_by("session")
        .agg(
            pl.col("access_key").drop_nulls().unique().sort().alias("keys_used"),
            pl.len().alias("session_events"),
            pl.col("time").min().alias("session_first"),
            pl.col("time").max().alias("session_last"),
        )
    )
    out = links.join(by_key, left_on="issued_key", right_on="access_key", how="left").join(
        by_session, left_on="issued_session", right_on="session", how="left"
    )
    return out.select(
        *links.columns,
        pl.coalesce("keys_used", pl.when(pl.col("key_events").is_not_null()).then(pl.concat_list("issued_key"))).alias(
            "keys_used"
        ),
        pl.max_horizontal(pl.col("session_events").fill_null(0), pl.col("key_events").fill_null(0)).alias("events"),
        pl.min_horizontal("session_first", "key_first").alias("first_used"),
        pl.max_horizontal("session_last", "key_last").alias("last_used"),
    )


def chains(links: pl.DataFrame) -> list[list[dict]]:
    """Role chains: sequences of assume_role links where each caller session is the previous issued
    session, longest first. A single hop is a chain of one only when it crosses accounts."""
    assumed = [row for row in links.filter(pl.col("kind") == "assume_role").iter_rows(named=True)]
    by_session = {row["issued_session"]: row for row in assumed if row["issued_session"]}
    children = {row["caller_session"] for row in assumed if row["caller_session"] in by_session}
    result = []
    for row in assumed:
        if row["issued_session"] in children:
            continue  # not the end of a chain
        chain = [row]
        seen = {id(row)}
        while chain[0]["caller_session"] in by_session and id(by_session[chain[0]["caller_session"]]) not in seen:
            parent = by_session[chain[0]["caller_session"]]
            seen.add(id(parent))
            chain.insert(0, parent)
        if len(chain) > 1 or row["cross_account"]:
            result.append(chain)
    return sorted(result, key=lambda c: (-len(c), c[0]["time"]))


def links_for(dataset, config) -> pl.DataFrame:
    """`credential_links` of the dataset's events with their usage, cached beside a case store."""
    from sleuth.derived import cached_frames

    def compute() -> dict[str, pl.DataFrame]:
        return {"links": with_usage(credential_links(dataset.events), dataset.events)}

    return cached_frames(dataset, config, "lineage", compute)["links"]
