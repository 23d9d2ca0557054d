"""EC2 instance credentials used from somewhere else: the model is GuardDuty's
UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS.

An instance profile's role sessions are named after the instance (`i-` + 8 or 17 hex digits). Those
credentials are fetched from the instance metadata service and belong on that instance; an attacker who
reads them (SSRF, a shell, SSM) replays them from their own machine. Instance calls reach AWS from the
instance's address, its NAT gateway or a VPC endpoint, so "an address the session has not used before"
is not robust (stop/start, NAT and endpoints change it). Three signals are, and one is enough:

1. Shared with a person: the address is also the source of calls by an IAM user, root or a federated /
   SSO identity, and no other instance uses it (a NAT shared by instances is not evidence). The intruder
   uses the stolen session from the machine where they use their own identity.
2. Outside AWS: with geolocation, the address belongs to an AS that is not Amazon's. Instances reach AWS
   APIs only from Amazon addresses (their public IP, a NAT gateway) or private ones.
3. Another host inside the VPC: with flow logs for the instance, a private source address that is none
   of its interfaces' addresses.

Service hosts (ec2.amazonaws.com) and "AWS Internal" never count. One hit per session and address.
"""

from __future__ import annotations

import polars as pl

from sleuth.correlate.detect import _common as c
from sleuth.correlate.detect.base import Context, Detection, empty_hits

DETECTION = Detection(
    id="instance-credentials-outside",
    title="Instance credentials used outside the instance",
    severity=8.0,
    tactic="Credential Access",
    technique="T1552.005",
    techniques=("T1078.004",),
    description=(
        "Temporary credentials of an EC2 instance role (a session named after the instance) were used "
        "from an address that is not the instance's: from outside AWS, from another host in the VPC, or "
        "from the same address as a person's own calls. Someone copied the credentials off the instance."
    ),
    false_positives=(
        "A person working on the instance itself with their own keys as well (a bastion, a Cloud9-like "
        "workstation): the shared address is then the instance's; check it against the instance's public "
        "IP. On-premises egress through a proxy for hybrid workloads; a geolocation database that does not "
        "know a new Amazon range."
    ),
    frames=("events", "flows"),
)

_INSTANCE = r":(i-(?:[0-9a-fA-F]{17}|[0-9a-fA-F]{8}))$"
_PEOPLE = ["IAMUser", "Root", "FederatedUser", "IdentityCenterUser", "SAMLUser"]


def run(context: Context) -> pl.DataFrame:
    events = context.events
    sessions = (
        events.lazy()
        .with_row_index("_row")
        .filter(pl.col("session").str.contains(_INSTANCE) & pl.col("src_ip").is_not_null())
        .select(
            "_row", "session", "time", _instance=pl.col("session").str.extract(_INSTANCE, 1), _ip=c.ip(pl.col("src_ip"))
        )
        .drop_nulls("_ip")
        .collect()
    )
    if sessions.is_empty():
        return empty_hits()
    pairs = sessions.group_by("session", "_instance", "_ip").agg(pl.col("_row"), _n=pl.len())
    # 1. Addresses people use, and how many instances use each.
    person = pl.col("actor_type").is_in(_PEOPLE) | pl.col("principal").str.contains("/aws-reserved/sso.amazonaws.com/")
    people = (
        events.lazy()
        .filter(person.fill_null(False))
        .select("src_ip", "principal")
        .unique()
        .collect()
        .with_columns(_ip=c.ip(pl.col("src_ip")))
        .group_by("_ip")
        .agg(_people=pl.col("principal").unique().sort())
    )
    instances = pairs.group_by("_ip").agg(_instances=pl.col("_instance").n_unique())
    pairs = pairs.join(people, on="_ip", how="left", maintain_order="left")
    pairs = pairs.join(instances, on="_ip", how="left", maintain_order="left")
    shared = pl.col("_people").list.len().fill_null(0) > 0
    shared = shared & (pl.col("_instances") <= 1)
    # 2. Autonomous systems, from geolocation.
    outside = pl.lit(False)
    if context.geo is not None:
        geo = context.geo.frame(pairs["_ip"].unique()).select(_ip="ip", _kind="ip_kind", _aso="aso", _where="location")
        pairs = pairs.join(geo, on="_ip", how="left", maintain_order="left")
        outside = (
            (pl.col("_kind") == "public") & pl.col("_aso").is_not_null() & ~pl.col("_aso").str.contains("(?i)amazon")
        )
    else:
        pairs = pairs.with_columns(_aso=pl.lit(None, pl.String), _where=pl.lit(None, pl.String))
    # 3. Private addresses that are none of the instance's own (only for instances the flow logs name).
    elsewhere = pl.lit(False)
    covered = context.flows.filter(pl.col("instance_id").is_in(pairs["_instance"].unique().implode()))
    if not covered.is_empty():
        own = c.interface_addresses(covered).drop_nulls("_eni_instance")
        own = own.group_by(_instance="_eni_instance").agg(_own=pl.col("_eni_addr").unique())
        pairs = pairs.join(own, on="_instance", how="left", maintain_order="left")
        elsewhere = c.is_internal(pl.col("_ip")) & pl.col("_own").is_not_null() & ~pl.col("_ip").is_in(pl.col("_own"))
    pairs = pairs.with_columns(_shared=shared, _outside=outside.fill_null(False), _elsewhere=elsewhere.fill_null(False))
    pairs = pairs.filter(pl.col("_shared") | pl.col("_outside") | pl.col("_elsewhere")).with_row_index("_hit")
    if pairs.is_empty():
        return empty_hits()
    rows = c.gather(events, pairs.select("_hit", "_row").explode("_row")).with_columns(_entities=c.actor_entities())
    hits = pairs.drop("_row").join(
        rows.group_by("_hit").agg(
            pl.col("principal", "account", "region").drop_nulls().first(),
            pl.col("actor_type").drop_nulls().first(),
            pl.col("time").min().alias("first_seen"),
            pl.col("time").max().alias("last_seen"),
            pl.col("action").drop_nulls().unique(maintain_order=True).head(4).str.join(", ").alias("_actions"),
            c.evidence(),
            c.gather_entities(),
        ),
        on="_hit",
    )
    reasons = pl.concat_list(
        pl.when("_shared").then(pl.format("also used by {}", c.names("_people"))),
        pl.when("_outside").then(pl.format("outside AWS ({})", "_aso")),
        pl.when("_elsewhere").then(pl.lit("another host in the VPC")),
    ).list.drop_nulls()
    where = pl.when(pl.col("_where").is_not_null()).then(pl.format(" ({})", "_where")).otherwise(pl.lit(""))
    return c.finish(
        hits.with_columns(
            detection_id=pl.lit(DETECTION.id),
            key_type=pl.lit("AwsRoleSession"),
            key_id=pl.col("session"),
            count=pl.col("_n").cast(pl.Int64),
            severity=(7.0 + reasons.list.len().cast(pl.Float64) * 0.75).clip(upper_bound=9.0),
            title=pl.format(
                "Credentials of instance {} ({}) used from {}{}", "_instance", c.short_name(), "_ip", where
            ),
            details=pl.format(
                "{} ({}) with the instance's role session from {}: {}",
                c.plural(pl.col("_n"), "call"),
                "_actions",
                "_ip",
                reasons.list.join("; "),
            ),
            entities=pl.concat_list(
                pl.concat_list(
                    c.entity("AwsRoleSession", pl.col("session"), "actor"),
                    c.entity("Ec2Instance", pl.col("_instance"), "target"),
                    c.entity("IpAddress", pl.col("_ip"), "actor"),
                ),
                "entities",
                c.principal_entities("_people", "actor"),
            ),
        )
    )
