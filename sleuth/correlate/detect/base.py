"""The contract of a detection: validated metadata, a run over the canonical frames, hits as a frame.

A detection module in this package defines `DETECTION` (a `Detection`) and
`run(context: Context) -> pl.DataFrame` returning hits with the `HITS` schema. Hits are merged into
findings (`producer` = "sleuth") by `sleuth.correlate.detect.findings_from_hits`: repeated hits of
one detection on one key entity within `Config.finding_merge_hours` become one finding with a count.

A module whose hits carry several detection ids (the table-driven `mapped` module: one id per row of
the mapping table) also defines `RULES`, a tuple of `Detection`s, one for each id its hits may carry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import polars as pl

from sleuth import schema
from sleuth.attack import ATTACK_TACTICS
from sleuth.config import Config

_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_TECHNIQUE = re.compile(r"^T\d{4}(?:\.\d{3})?$")

# Entities of principals, by userIdentity.type (`_common.principal_type`): IAMUser and Root -> AwsUser with
# events.principal as the id (root: arn:aws:iam::<account>:root); AssumedRole -> AwsRole (the role ARN)
# plus AwsRoleSession (events.session); FederatedUser, SAML, web-identity and Identity Center users ->
# FederatedUser; AWSAccount -> AwsAccount. Addresses are IpAddress with the normalised address.
ENTITY = pl.Struct({"entity_type": pl.String(), "entity_id": pl.String(), "role": pl.String()})

# One row per hit: one occurrence of the behaviour, with its evidence.
HITS: dict[str, pl.DataType] = {
    "detection_id": pl.String(),
    "key_type": pl.String(),  # the entity the hit is about (merging key): AwsUser, AwsRole, IpAddress, ...
    "key_id": pl.String(),
    "title": pl.String(),  # what a responder reads, e.g. "Console login without MFA by alice"
    "severity": pl.Float64(),  # null: the detection's default
    "account": pl.String(),
    "region": pl.String(),
    "first_seen": schema.TIME,
    "last_seen": schema.TIME,
    "count": pl.Int64(),  # occurrences behind this hit (events, flows, failures ...)
    "event_ids": pl.List(pl.String()),  # evidence: CloudTrail event ids, or flow keys for flow detections
    "entities": pl.List(ENTITY),  # every entity involved, with its role: actor, target, network peer
    "details": pl.String(),  # one line of facts: "27 distinct List*/Describe* calls in 4 min"
}


@dataclass(frozen=True)
class Detection:
    """What a detection finds, and how a responder should read it."""

    id: str  # kebab-case, unique: "console-login-without-mfa"
    title: str
    severity: float  # 0-10, GuardDuty's scale
    tactic: str  # an ATT&CK tactic name from sleuth.attack.ATTACK_TACTICS
    technique: str  # ATT&CK technique id, e.g. T1078.004
    description: str
    false_positives: str  # when it fires on benign activity, and how to tell
    frames: tuple[str, ...] = ("events",)  # the canonical frames it reads
    techniques: tuple[str, ...] = field(default=())  # further technique ids (e.g. ATT&CK v19 renumbering)
    tactics: tuple[str, ...] = field(default=())  # further ATT&CK tactics, after the primary `tactic`

    def __post_init__(self) -> None:
        problems = []
        if not _ID.match(self.id):
            problems.append(f"id {self.id!r} is not kebab-case")
        if not 0 <= self.severity <= 10:
            problems.append(f"severity {self.severity} is outside 0-10")
        for tactic in (self.tactic, *self.tactics):
            if tactic not in ATTACK_TACTICS:
                problems.append(f"unknown ATT&CK tactic {tactic!r}")
        for technique in (self.technique, *self.techniques):
            if not _TECHNIQUE.match(technique):
                problems.append(f"bad technique id {technique!r}")
        for name in ("title", "description", "false_positives"):
            if not getattr(self, name).strip():
                problems.append(f"{name} is empty")
        unknown = set(self.frames) - set(schema.FRAMES)
        if unknown:
            problems.append(f"unknown frames {sorted(unknown)}")
        if problems:
            raise ValueError(f"detection {self.id}: " + "; ".join(problems))

    @property
    def all_tactics(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.tactic, *self.tactics)))

    @property
    def all_techniques(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.technique, *self.techniques)))


@dataclass
class Context:
    """What a detection reads: the frames (already limited to the time window), the tunables, and
    the offline enrichment (geo for travel, threat-intel lists for flagged addresses)."""

    events: pl.DataFrame
    flows: pl.DataFrame
    config: Config
    geo: object | None = None  # sleuth.enrich.geo.GeoResolver
    intel: object | None = None  # sleuth.enrich.intel.IntelList


def empty_hits() -> pl.DataFrame:
    return pl.DataFrame(schema=HITS)


def conform_hits(df: pl.DataFrame) -> pl.DataFrame:
    """`df` with exactly the HITS columns and dtypes, missing ones as nulls."""
    return df.select(
        [(pl.col(name) if name in df.columns else pl.lit(None)).cast(dtype).alias(name) for name, dtype in HITS.items()]
    )
