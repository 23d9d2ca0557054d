"""Impossible travel: one identity calling from two places further apart than anyone can travel between
its consecutive calls.

For each identity (the role session for role sessions, else the principal), calls are ordered by time and
consecutive calls from two different public addresses are compared: the great-circle (haversine) distance
between their geolocations over the time between the calls. A hit is a hop faster than `travel_speed_kmh`
(a commercial flight) and longer than `travel_min_km`.

Why the minimum distance: coordinates are country centroids unless a city database is given, and even
city-level geolocation of an address is often off by tens to hundreds of kilometres (mobile carriers,
corporate egress, VPN exits). Two addresses in neighbouring countries can be a few hundred kilometres
apart on the map while the person has not moved; below `travel_min_km` the distance is within the error.

Left out: AWS service hosts, private and reserved addresses (no location), and addresses of Amazon's own
networks (calls relayed by AWS infrastructure locate a region, not a person). Without geolocation
(`Context.geo` None) there are no hits.

One hit per identity and pair of places (the first hop between them, with the number of hops). Severity:
Medium for a hop to a place new for an established identity (its first call from there, the identity
seen at least `history_hours` earlier) in a country new for the account (no call of any identity
of the account came from it before): a second party showing up. Low otherwise: hops between places
the identity or its colleagues already use (VPN exits, split tunnels, a distributed team), or an
identity without history in the data.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from sleuth.correlate.detect import _common as c
from sleuth.correlate.detect.base import Context, Detection, empty_hits

DETECTION = Detection(
    id="impossible-travel",
    title="Impossible travel",
    severity=5.0,
    tactic="Initial Access",
    technique="T1078.004",
    description=(
        "One identity made consecutive calls from two places so far apart that nobody could travel between "
        "them in the time between the calls: the credentials are used by two parties."
    ),
    false_positives=(
        "VPNs and proxies switching exits, mobile carriers, corporate egress in another country, and "
        "geolocation errors (coordinates are country centroids without a city database). A hop between "
        "places the identity had both used before is scored Low."
    ),
)

_EARTH_KM = 6371.0


def _haversine(lat1: pl.Expr, lon1: pl.Expr, lat2: pl.Expr, lon2: pl.Expr) -> pl.Expr:
    p1, p2 = lat1.radians(), lat2.radians()
    dp, dl = (lat2 - lat1).radians(), (lon2 - lon1).radians()
    a = (dp / 2).sin().pow(2) + p1.cos() * p2.cos() * (dl / 2).sin().pow(2)
    return 2 * _EARTH_KM * a.sqrt().clip(upper_bound=1.0).arcsin()


def run(context: Context) -> pl.DataFrame:
    if context.geo is None:
        return empty_hits()
    config = context.config
    calls = (
        context.events.lazy()
        .with_row_index("_row")
        .filter(c.is_actor() & pl.col("src_ip").is_not_null())
        .select("_row", "time", "account", _who=pl.coalesce("session", "principal").hash(seed=3), src_ip="src_ip")
        .collect()
    )
    addresses = calls.select(pl.col("src_ip").unique()).with_columns(_ip=c.ip(pl.col("src_ip"))).drop_nulls("_ip")
    addresses = addresses.filter(~c.is_internal(pl.col("_ip")))
    geo = context.geo.frame(addresses["_ip"].unique()).filter(
        (pl.col("ip_kind") == "public")
        & pl.col("latitude").is_not_null()
        & ~pl.col("aso").str.contains("(?i)amazon").fill_null(False)
    )
    geo = geo.select(
        _ip="ip",
        _lat="latitude",
        _lon="longitude",
        _cc="country_code",
        _where=pl.coalesce("location", "country_code", "ip"),
    )
    calls = calls.join(addresses.join(geo, on="_ip"), on="src_ip", how="inner").sort("_who", "time")
    if calls.is_empty():
        return empty_hits()
    # New: the identity's first call from the place, the identity then seen for history_hours; and
    # the country's first appearance in the account's calls, the account then seen as long.
    history = timedelta(hours=config.history_hours)
    first_here = pl.col("time") == pl.col("time").min().over("_who", "_where")
    established = pl.col("time") - pl.col("time").min().over("_who") >= history
    new_country = (pl.col("time") == pl.col("time").min().over("account", "_cc")) & (
        pl.col("time") - pl.col("time").min().over("account") >= history
    )
    calls = calls.with_columns(
        _first=first_here, _new=first_here & established, _new_country=new_country.fill_null(False)
    )
    # Only the first and the last call of each run from one address matter.
    same = (pl.col("_who") == pl.col("_who").shift(1)) & (pl.col("_ip") == pl.col("_ip").shift(1))
    then = (pl.col("_who") == pl.col("_who").shift(-1)) & (pl.col("_ip") == pl.col("_ip").shift(-1))
    edges = calls.filter(~(same.fill_null(False) & then.fill_null(False)))
    prev = {name: pl.col(name).shift(1) for name in ("_ip", "_lat", "_lon", "time", "_row", "_where")}
    hops = edges.with_columns(
        _from=prev["_ip"],
        _from_where=prev["_where"],
        _t0=prev["time"],
        _r0=prev["_row"],
        _km=_haversine(prev["_lat"], prev["_lon"], pl.col("_lat"), pl.col("_lon")),
        _hours=(pl.col("time") - prev["time"]).dt.total_seconds() / 3600.0,
    ).filter((pl.col("_who") == pl.col("_who").shift(1)) & (pl.col("_ip") != pl.col("_from")))
    speed = pl.col("_km") / pl.col("_hours").clip(lower_bound=1 / 3600)
    hops = hops.filter((pl.col("_km") >= config.travel_min_km) & (speed > config.travel_speed_kmh))
    # One hit per identity and pair of places: the first hop between them, with the number of hops.
    hops = (
        hops.with_columns(
            _kmh=speed, _a=pl.min_horizontal("_where", "_from_where"), _b=pl.max_horizontal("_where", "_from_where")
        )
        .sort("time")
        .group_by("_who", "_a", "_b")
        .agg(
            pl.all().exclude("_first", "_new", "_new_country").first(),
            _first=pl.col("_first").any(),
            _hops=pl.len(),
            _new=pl.col("_new").any(),
            _new_country=pl.col("_new_country").any(),
        )
    )
    if hops.is_empty():
        return empty_hits()
    hops = hops.with_row_index("_hit")
    rows = c.gather(context.events, hops.select("_hit", _row=pl.concat_list("_r0", "_row")).explode("_row"))
    rows = rows.with_columns(_entities=c.actor_entities(with_agent=False))
    hits = hops.select(
        "_hit", "_ip", "_from", "_where", "_from_where", "_km", "_kmh", "_t0", "_first", "_new", "_new_country", "_hops"
    ).join(
        rows.group_by("_hit").agg(
            pl.col("principal", "actor_type", "account", "region").drop_nulls().first(),
            pl.col("time").max().alias("last_seen"),
            c.evidence(),
            c.gather_entities(),
        ),
        on="_hit",
    )
    gap = c.minutes(pl.col("last_seen") - pl.col("_t0"))
    here, there = pl.coalesce("_from_where", "_from"), pl.coalesce("_where", "_ip")
    novelty = (
        pl.when("_new")
        .then(pl.lit("a new place for this identity"))
        .when("_first")
        .then(pl.lit("a new place, but the identity has no history before it"))
        .otherwise(pl.lit("a place the identity used before"))
    )
    novelty = novelty + pl.when("_new_country").then(pl.lit(", in a country new for the account")).otherwise(pl.lit(""))
    repeats = (
        pl.when(pl.col("_hops") > 1).then(pl.format("; {} hops between these places", "_hops")).otherwise(pl.lit(""))
    )
    km, kmh = (pl.col(name).round(0).cast(pl.Int64) for name in ("_km", "_kmh"))
    return c.finish(
        hits.with_columns(
            detection_id=pl.lit(DETECTION.id),
            key_type=c.principal_type(),
            key_id=pl.col("principal"),
            first_seen=pl.col("_t0"),
            count=pl.col("_hops").cast(pl.Int64),
            severity=pl.when(pl.col("_new") & pl.col("_new_country")).then(DETECTION.severity).otherwise(3.0),
            title=pl.format("Impossible travel by {}: {} to {} in {} min", c.short_name(), here, there, gap),
            details=pl.format(
                "{} ({}) then {} ({}): {} km in {} min ({} km/h); {}{}",
                here,
                "_from",
                there,
                "_ip",
                km,
                gap,
                kmh,
                novelty,
                repeats,
            ),
        )
    )
