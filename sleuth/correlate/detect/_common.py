"""What the behavioural detections share (not a detection: the registry skips `_` modules).

- Entities: a principal's entity type from `actor_type` (IAMUser and Root -> AwsUser, with the root ARN
  `arn:aws:iam::<acct>:root` as the id; role sessions -> AwsRole for the role and AwsRoleSession for the
  session; federated / SAML / web-identity / Identity Center users -> FederatedUser), and per-event
  actor entities (principal, session, access key, source address, user agent).
- Addresses: IPv4 written with leading zeros (anonymised logs) normalised as `sleuth.netaddr.parse_ip`
  does, and a vectorised internal/external split.
- Bursts: "at least N distinct items of one group within a sliding window W", exactly and in
  O(n log n) (see `bursts`).
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from sleuth.correlate.flows import interface_addresses, is_internal, orient  # noqa: F401 (the detections' c.*)

MAX_EVIDENCE = 1000  # event ids kept per hit; `count` holds the full number

_V4 = r"^\s*(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\s*$"
_SERVICE_ACTORS = ["AWSService"]


def principal_type(kind: pl.Expr | None = None, principal: pl.Expr | None = None) -> pl.Expr:
    """The Detective entity type of `principal` (an ARN), by userIdentity.type, else by the ARN's shape."""
    kind = pl.col("actor_type") if kind is None else kind
    arn = pl.col("principal") if principal is None else principal
    return (
        pl.when(kind.is_in(["IAMUser", "Root"]))
        .then(pl.lit("AwsUser"))
        .when(kind.is_in(["AssumedRole", "Role"]))
        .then(pl.lit("AwsRole"))
        .when(kind.is_in(["FederatedUser", "SAMLUser", "WebIdentityUser", "IdentityCenterUser"]))
        .then(pl.lit("FederatedUser"))
        .when(kind == "AWSAccount")
        .then(pl.lit("AwsAccount"))
        .when(arn.str.contains(":role/", literal=True))
        .then(pl.lit("AwsRole"))
        .otherwise(pl.lit("AwsUser"))
    )


def short_name(principal: pl.Expr | None = None, account: pl.Expr | None = None) -> pl.Expr:
    """What a responder calls a principal: the user or role name, "root (account N)" for root."""
    arn = pl.col("principal") if principal is None else principal
    account = pl.col("account") if account is None else account
    root = pl.concat_str([pl.lit("root (account "), arn.str.extract(r"::(\d+):root$", 1), pl.lit(")")])
    return pl.when(arn.str.ends_with(":root")).then(root).otherwise(arn.str.extract(r"([^/]+)$", 1).fill_null(arn))


def is_actor() -> pl.Expr:
    """Events made by an identity someone holds credentials for (not AWS services acting for themselves)."""
    return (
        pl.col("principal").is_not_null()
        & ~pl.col("actor_type").is_in(_SERVICE_ACTORS).fill_null(False)
        & ~pl.col("principal").str.ends_with(".amazonaws.com")
    )


def ip(expr: pl.Expr) -> pl.Expr:
    """The address in `expr` normalised (IPv4 without leading zeros, IPv6 lower-case); null for host
    names such as ec2.amazonaws.com or "AWS Internal"."""
    octets = expr.str.extract_groups(_V4)
    parts = [octets.struct.field(str(i)).cast(pl.Int32) for i in range(1, 5)]
    valid = pl.all_horizontal([(p <= 255) for p in parts])
    v4 = pl.when(valid).then(pl.concat_str([p.cast(pl.String) for p in parts], separator="."))
    v6 = pl.when(expr.str.contains(r"^[0-9A-Fa-f:.]+$") & expr.str.contains(":", literal=True)).then(
        expr.str.to_lowercase()
    )
    return pl.coalesce(v4, v6)


def entity(kind: str | pl.Expr, entity_id: pl.Expr, role: str) -> pl.Expr:
    kind = pl.lit(kind) if isinstance(kind, str) else kind
    return pl.struct(entity_type=kind, entity_id=entity_id, role=pl.lit(role))


def entity_list(*entities: pl.Expr) -> pl.Expr:
    """The entities as a list, without those whose id is null."""
    return pl.concat_list(list(entities)).list.filter(pl.element().struct.field("entity_id").is_not_null())


def actor_entities(with_agent: bool = True) -> pl.Expr:
    """Per event: who acted (principal, role session, access key), from where, with which user agent."""
    items = [
        entity(principal_type(), pl.col("principal"), "actor"),
        entity("AwsRoleSession", pl.col("session"), "actor"),
        entity("AccessKey", pl.col("access_key"), "actor"),
        entity("IpAddress", ip(pl.col("src_ip")), "actor"),
    ]
    if with_agent:
        items.append(entity("UserAgent", pl.col("user_agent"), "actor"))
    return entity_list(*items)


def gather_entities(column: str = "_entities") -> pl.Expr:
    """In an aggregation: the distinct entities of the group's rows."""
    return pl.col(column).explode().drop_nulls().unique(maintain_order=True).alias("entities")


def evidence(column: str = "event_id") -> pl.Expr:
    """In an aggregation: the distinct event ids of the group's rows, at most MAX_EVIDENCE."""
    return pl.col(column).drop_nulls().unique(maintain_order=True).head(MAX_EVIDENCE).alias("event_ids")


def finish(hits: pl.DataFrame, per_type: int = 10) -> pl.DataFrame:
    """`hits` with the HITS columns, at most `per_type` entities of each type per hit (the first ones: the
    key entity and the actors come first), ordered by time."""
    from sleuth.correlate.detect.base import conform_hits

    if hits.is_empty():
        return conform_hits(hits)
    hits = hits.with_row_index("_finish_row")
    kept = (
        hits.select("_finish_row", "entities")
        .explode("entities")
        .drop_nulls("entities")
        .filter(pl.int_range(pl.len()).over("_finish_row", pl.col("entities").struct.field("entity_type")) < per_type)
        .group_by("_finish_row", maintain_order=True)
        .agg(pl.col("entities"))
    )
    hits = hits.drop("entities").join(kept, on="_finish_row", how="left").sort("_finish_row")
    return conform_hits(hits.with_columns(pl.col("entities").fill_null([]))).sort("first_seen", "key_id")


def bursts(
    rows: pl.DataFrame, by: list[str], item: str | None, window: timedelta, threshold: int, time: str = "time"
) -> pl.DataFrame:
    """The rows of `rows` that belong to a burst: at least `threshold` distinct values of the column `item`
    (every row its own item when `item` is None) in one `by` group within `window`. Adds `_episode` (one id
    per burst: windows at the threshold whose rows overlap are one burst) and `_peak` (the most distinct
    items in one window of that burst). Rows with a null `by` or `item` value take no part. A row belongs
    to a burst when some window (t - window, t] holding it reaches the threshold.

    The statistic, exact and vectorised: an occurrence of an item at time a keeps the item "in the window"
    over [a, min(next occurrence, a + window)). The distinct count at time t is the number of such intervals
    covering t: a running sum of +1 at interval starts and -1 at interval ends (ends first on ties). Starts
    that merely continue an interval (the item's previous occurrence is less than `window` earlier) change
    nothing and are dropped, so the sweep runs over first occurrences only. Groups and items are compared
    by their 64-bit hashes, which sorts far faster than text."""
    marks = [pl.lit(None, pl.UInt32).alias("_episode"), pl.lit(None, pl.UInt32).alias("_peak")]
    if rows.is_empty():
        return rows.with_columns(marks)
    group = pl.struct(by).hash(seed=1) if len(by) > 1 else pl.col(by[0]).hash(seed=1)
    unit = pl.int_range(pl.len(), dtype=pl.UInt64) if item is None else pl.col(item).hash(seed=2)
    valid = pl.all_horizontal([pl.col(name).is_not_null() for name in [*by, *([item] if item else [])]])
    points = rows.select(_g=group, _i=unit, _t=pl.col(time), _ok=valid).filter("_ok").sort("_g", "_i", "_t")
    same = (pl.col("_g") == pl.col("_g").shift(1)) & (pl.col("_i") == pl.col("_i").shift(1))
    follows = (pl.col("_g") == pl.col("_g").shift(-1)) & (pl.col("_i") == pl.col("_i").shift(-1))
    points = points.with_columns(
        _start=~same.fill_null(False) | ((pl.col("_t") - pl.col("_t").shift(1)) > window),
        _end=~follows.fill_null(False) | ((pl.col("_t").shift(-1) - pl.col("_t")) > window),
    )
    steps = pl.concat(
        [
            points.filter("_start").select("_g", "_t", _step=pl.lit(1, pl.Int32)),
            points.filter("_end").select("_g", _t=pl.col("_t") + window, _step=pl.lit(-1, pl.Int32)),
        ]
    ).sort("_g", "_t", "_step")
    steps = steps.with_columns(_n=pl.col("_step").cum_sum().over("_g"))
    # Spans at or above the threshold: from the step that reaches it to the step that falls below it. The
    # rows in a window ending inside a span are those in (opening - window, closing).
    on = pl.col("_n") >= threshold
    steps = steps.with_columns(_open=on & ~on.shift(1).over("_g").fill_null(False), _on=on)
    if not steps.select(pl.col("_open").any()).item():
        return rows.clear().with_columns(marks)
    steps = steps.with_columns(_span=pl.col("_open").cum_sum())
    closing = ~pl.col("_on") & pl.col("_on").shift(1).over("_g").fill_null(False)
    spans = (
        steps.filter(pl.col("_on") | closing)
        .group_by("_g", "_span")
        .agg(_from=pl.col("_t").min(), _to=pl.col("_t").max(), _peak=pl.col("_n").max())
        .sort("_g", "_from")
    )
    # Spans whose evidence overlaps are one burst.
    apart = (pl.col("_g") != pl.col("_g").shift(1)).fill_null(True) | (
        pl.col("_from") - window >= pl.col("_to").shift(1)
    )
    episodes = (
        spans.with_columns(_episode=apart.cum_sum().cast(pl.UInt32))
        .group_by("_g", "_episode")
        .agg(_lo=pl.col("_from").min() - window, _hi=pl.col("_to").max(), _peak=pl.col("_peak").max().cast(pl.UInt32))
    )
    # Bursts of one group are disjoint: each row belongs to the first burst ending after it, if any.
    tagged = rows.with_columns(_g=group, _ok=valid).filter(pl.col("_g").is_in(episodes["_g"].implode()))
    members = tagged.sort(time).join_asof(
        episodes.sort("_hi"),
        left_on=time,
        right_on="_hi",
        by="_g",
        strategy="forward",
        allow_exact_matches=False,
        check_sortedness=False,
    )
    members = members.filter(pl.col("_ok") & pl.col("_hi").is_not_null() & (pl.col(time) > pl.col("_lo")))
    return members.drop("_g", "_ok", "_lo", "_hi")


def gather(events: pl.DataFrame, members: pl.DataFrame, row: str = "_row") -> pl.DataFrame:
    """The full events behind `members` (a narrow frame with the events' row numbers in `row`), with the
    members' own columns beside them."""
    full = events.select(pl.all().gather(members[row]))
    extra = members.select([name for name in members.columns if name not in full.columns])
    return pl.concat([full, extra], how="horizontal")


def flow_entities(local_role: str) -> pl.Expr:
    """Per oriented flow: the local instance and address (in `local_role`), and the peer address."""
    return entity_list(
        entity("Ec2Instance", pl.col("instance_id"), local_role),
        entity("IpAddress", pl.col("_local"), local_role),
        entity("IpAddress", pl.col("_peer"), "network peer"),
    )


def local_key() -> dict[str, pl.Expr]:
    """The key entity of a flow hit: the local instance when the flow log names it, else its address."""
    return {
        "key_type": pl.when(pl.col("instance_id").is_not_null())
        .then(pl.lit("Ec2Instance"))
        .otherwise(pl.lit("IpAddress")),
        "key_id": pl.coalesce("instance_id", "_local"),
    }


def peer_context(events: pl.DataFrame, intel: object | None, peers: pl.Series) -> pl.DataFrame:
    """For each address of `peers`: the principals that called AWS APIs from it (`_callers`, a list) and the
    reason a threat-intel list gives for it (`_intel`, `_intel_source`), when any."""
    frame = pl.DataFrame({"_peer": peers.unique().drop_nulls()})
    sources = events.select(pl.col("src_ip").unique()).with_columns(_peer=ip(pl.col("src_ip")))
    sources = sources.filter(pl.col("_peer").is_in(frame["_peer"].implode()))
    calls = (
        events.lazy()
        .filter(pl.col("src_ip").is_in(sources["src_ip"].implode()) & pl.col("principal").is_not_null())
        .join(sources.lazy(), on="src_ip")
        .group_by("_peer")
        .agg(_callers=pl.col("principal").unique().sort())
        .collect()
    )
    frame = frame.join(calls, on="_peer", how="left")
    if intel is not None and len(intel):  # type: ignore[arg-type]
        flagged = intel.frame(frame["_peer"]).select(_peer="ip", _intel="intel_reason", _intel_source="intel_source")  # type: ignore[attr-defined]
        return frame.join(flagged, on="_peer", how="left")
    return frame.with_columns(_intel=pl.lit(None, pl.String), _intel_source=pl.lit(None, pl.String))


def peer_notes() -> pl.Expr:
    """What `peer_context` found about a peer, as text for `details` ("" when nothing)."""
    callers = pl.when(pl.col("_callers").list.len() > 0).then(
        pl.format("; the peer also called AWS APIs as {}", names("_callers"))
    )
    flagged = pl.when(pl.col("_intel").is_not_null()).then(
        pl.format("; FLAGGED_IP_ADDRESS: {} ({})", "_intel", pl.col("_intel_source").fill_null("intel list"))
    )
    return callers.otherwise(pl.lit("")) + flagged.otherwise(pl.lit(""))


def flow_key() -> pl.Expr:
    """A flow record's evidence key: <interface>:<src>:<sport>-><dst>:<dport>@<start epoch>."""
    return pl.format(
        "{}:{}:{}->{}:{}@{}",
        pl.col("interface_id").fill_null("-"),
        "src_addr",
        pl.col("src_port").fill_null(0),
        "dst_addr",
        pl.col("dst_port").fill_null(0),
        pl.col("start").dt.epoch("s"),
    )


def names(principals: str, most: int = 3) -> pl.Expr:
    """A list column of principal ARNs as "alice, bob, ci-role" (the first `most`)."""
    return pl.col(principals).list.eval(pl.element().str.extract(r"([^/:]+)$", 1)).list.head(most).list.join(", ")


def principal_entities(principals: str, role: str) -> pl.Expr:
    """A list column of principal ARNs as entities in `role`."""
    kind = principal_type(pl.lit(None, pl.String), pl.element())
    return pl.col(principals).fill_null([]).list.eval(entity(kind, pl.element(), role))


def plural(count: pl.Expr, noun: str) -> pl.Expr:
    """The count with its noun: "1 event", "3 events"."""
    return pl.concat_str(
        [count.cast(pl.String), pl.lit(" "), pl.when(count == 1).then(pl.lit(noun)).otherwise(pl.lit(noun + "s"))]
    )


def minutes(span: pl.Expr) -> pl.Expr:
    """A duration as whole minutes, at least 1, as text."""
    return (span.dt.total_seconds() / 60).ceil().clip(lower_bound=1).cast(pl.Int64).cast(pl.String)
