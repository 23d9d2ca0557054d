"""sleuth's own detections: the registry, the runner, and hits merged into findings.

Every module of this package except `base`, `table` and names starting with `_` is a detection
module (see `base.py` for the contract): it defines `DETECTION` and `run(context)`, and optionally
`RULES` when its hits carry several detection ids (the mapping table). Modules are found with
pkgutil on first use, so a new module needs no registration.

    detect(dataset, config, geo, intel)     -> Detections: findings, finding_entities, counts, warnings
    with_detections(dataset, config, ...)   -> the Dataset whose findings frames hold GuardDuty's and sleuth's
    rules_listing(tactic)                   -> what `sleuth rules` shows
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import pkgutil
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from types import ModuleType
from typing import Any

import orjson
import polars as pl

from sleuth import schema
from sleuth.attack import ATTACK_TACTICS, canonical_tactic
from sleuth.config import Config
from sleuth.correlate.detect.base import Context, Detection, conform_hits, empty_hits
from sleuth.errors import UsageError
from sleuth.severity import label_expr, severity_label

NOT_DETECTIONS = frozenset({"base", "table"})
PRODUCER = "sleuth"
MAX_EVIDENCE = 1000  # event ids kept per finding; the full count is in raw.event_count
MAX_DETAILS = 20  # distinct detail lines kept per finding


# ---------------------------------------------------------------------------------------------
# The registry


@dataclass(frozen=True)
class Registry:
    modules: dict[str, ModuleType]  # DETECTION.id -> module
    detections: tuple[Detection, ...]  # every module's DETECTION
    catalog: dict[str, Detection]  # every id a hit may carry: modules' DETECTIONs and their RULES
    owner: dict[str, str]  # catalog id -> the id of the module that produces it
    import_errors: tuple[str, ...]  # modules that failed to import (reported as warnings)


def detection_module_names() -> list[str]:
    """The modules of this package that must be detections."""
    return sorted(
        info.name
        for info in pkgutil.iter_modules(__path__)
        if info.name not in NOT_DETECTIONS and not info.name.startswith("_")
    )


def build_registry(modules: list[ModuleType], import_errors: tuple[str, ...] = ()) -> Registry:
    """Validate the modules' metadata; ValueError naming the module when one breaks the contract."""
    by_id: dict[str, ModuleType] = {}
    catalog: dict[str, Detection] = {}
    owner: dict[str, str] = {}
    for module in modules:
        name = module.__name__
        detection = getattr(module, "DETECTION", None)
        if not isinstance(detection, Detection):
            raise ValueError(f"{name}: DETECTION must be a sleuth.correlate.detect.base.Detection")
        if not callable(getattr(module, "run", None)):
            raise ValueError(f"{name}: a detection module needs run(context) -> hits")
        rules = getattr(module, "RULES", ())
        if not all(isinstance(rule, Detection) for rule in rules):
            raise ValueError(f"{name}: RULES must hold Detection objects")
        if detection.id in by_id:
            raise ValueError(f"{name}: detection id {detection.id!r} is also used by {by_id[detection.id].__name__}")
        by_id[detection.id] = module
        for item in (detection, *rules):
            if item.id in catalog and owner[item.id] != detection.id:
                raise ValueError(f"{name}: detection id {item.id!r} is already used by {owner[item.id]}")
            if item.id in catalog and item is not detection:
                raise ValueError(f"{name}: detection id {item.id!r} appears twice")
            catalog[item.id] = item
            owner[item.id] = detection.id
    detections = tuple(module.DETECTION for module in by_id.values())
    return Registry(by_id, detections, catalog, owner, import_errors)


@cache
def registry() -> Registry:
    """The detection modules of this package, imported and validated on first use."""
    modules, errors = [], []
    for name in detection_module_names():
        try:
            modules.append(importlib.import_module(f"{__name__}.{name}"))
        except Exception as exc:  # a broken module must not take the others down
            errors.append(f"detection module {name} failed to import: {type(exc).__name__}: {exc}")
    return build_registry(modules, tuple(errors))


def __getattr__(name: str) -> Any:
    if name == "DETECTIONS":  # the list of every module's Detection, built on first use
        return list(registry().detections)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---------------------------------------------------------------------------------------------
# Running


@dataclass
class DetectionStat:
    id: str
    hits: int = 0
    seconds: float = 0.0
    error: str | None = None


def run_detections(context: Context, only: tuple[str, ...] = ()) -> tuple[pl.DataFrame, list[DetectionStat]]:
    """Every registered detection (or those named in `only`) over the context: their hits, one frame,
    and a stat per detection. A detection that raises is reported in its stat, never stops the run."""
    reg = registry()
    parts: list[pl.DataFrame] = []
    stats: list[DetectionStat] = []
    for detection_id, module in reg.modules.items():
        if only and detection_id not in only:
            continue
        stat = DetectionStat(detection_id)
        started = time.perf_counter()
        try:
            hits = conform_hits(module.run(context))
            unknown = set(hits["detection_id"].unique().to_list()) - {
                item for item, producer in reg.owner.items() if producer == detection_id
            }
            if unknown:
                raise ValueError(f"hits carry detection ids it does not declare: {sorted(map(str, unknown))}")
        except Exception as exc:
            stat.error = f"{type(exc).__name__}: {exc}"
            last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
            if last:
                stat.error += f" ({last[0].filename.rsplit('/', 1)[-1]}:{last[0].lineno})"
        else:
            stat.hits = len(hits)
            parts.append(hits)
        stat.seconds = time.perf_counter() - started
        stats.append(stat)
    hits = pl.concat(parts) if parts else empty_hits()
    return hits, stats


# ---------------------------------------------------------------------------------------------
# Hits to findings


def finding_type(detection: Detection) -> str:
    """sleuth:<PrimaryTactic>/<detection id>, read like GuardDuty's Purpose:Resource/Name."""
    return f"{PRODUCER}:{detection.tactic.title().replace(' ', '')}/{detection.id}"


def finding_id(detection_id: str, key_type: str, key_id: str, first_seen: Any) -> str:
    """Deterministic: the same detection, key entity and first hit give the same id on every run."""
    stamp = first_seen.isoformat() if hasattr(first_seen, "isoformat") else str(first_seen)
    text = "\x1f".join([detection_id, key_type or "", key_id or "", stamp])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _metadata(catalog: dict[str, Detection]) -> pl.DataFrame:
    items = list(catalog.values())
    return pl.DataFrame(
        {
            "detection_id": [d.id for d in items],
            "_default_severity": [d.severity for d in items],
            "type": [finding_type(d) for d in items],
            "_description": [d.description for d in items],
            "tactics": [list(d.all_tactics) for d in items],
            "techniques": [list(d.all_techniques) for d in items],
        },
        schema={"detection_id": pl.String, "_default_severity": pl.Float64, "type": pl.String,
                "_description": pl.String, "tactics": pl.List(pl.String), "techniques": pl.List(pl.String)},
    )  # fmt: skip


def findings_from_hits(
    hits: pl.DataFrame, config: Config, catalog: dict[str, Detection] | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Hits to (findings, finding_entities) in the canonical schemas.

    Hits of one detection on one key entity merge into one finding while each starts within
    `config.finding_merge_hours` of the latest end so far; the finding's count is the sum of theirs,
    its severity the highest, its evidence their event ids (at most MAX_EVIDENCE, the full number in
    raw.event_count) and its entities their union."""
    catalog = registry().catalog if catalog is None else catalog
    hits = conform_hits(hits).filter(pl.col("detection_id").is_in(list(catalog)))
    if hits.is_empty():
        return schema.empty("findings"), schema.empty("finding_entities")
    group = ["detection_id", "key_type", "key_id"]
    window = timedelta(hours=config.finding_merge_hours)
    meta = _metadata(catalog)
    ordered = (
        hits.join(meta.select("detection_id", "_default_severity"), on="detection_id", how="left")
        .with_columns(
            pl.coalesce("severity", "_default_severity").alias("severity"),
            pl.col("key_type").fill_null(""),
            pl.col("key_id").fill_null(""),
            pl.col("event_ids").list.first().alias("_first_event"),
        )
        .sort([*group, "first_seen", "last_seen", "_first_event", "title"], nulls_last=True)
    )
    previous_end = pl.col("last_seen").cum_max().shift(1).over(group)
    ordered = ordered.with_columns(
        (previous_end.is_null() | ((pl.col("first_seen") - previous_end) > window)).cast(pl.Int32).alias("_new")
    ).with_columns(pl.col("_new").cum_sum().over(group).alias("_run"))
    evidence = pl.col("event_ids").list.explode(keep_nulls=False, empty_as_null=False).unique(maintain_order=True)
    details = pl.col("details").drop_nulls().unique(maintain_order=True)
    runs = ordered.group_by([*group, "_run"], maintain_order=True).agg(
        pl.col("title").sort_by(["severity", "first_seen"], descending=[True, False]).first(),  # the worst hit's
        pl.col("severity").max(),
        pl.col("account").drop_nulls().first(),
        pl.col("region").drop_nulls().first(),
        pl.col("first_seen").min(),
        pl.col("last_seen").max(),
        pl.col("count").fill_null(1).sum().alias("count"),
        evidence.head(MAX_EVIDENCE).alias("event_ids"),
        evidence.len().alias("_event_count"),
        details.head(MAX_DETAILS).alias("_details"),
        pl.col("entities").list.explode(keep_nulls=False, empty_as_null=False).unique(maintain_order=True)
        .alias("_entities"),
    )  # fmt: skip
    ids = [
        finding_id(d, kt, ki, fs)
        for d, kt, ki, fs in runs.select("detection_id", "key_type", "key_id", "first_seen").iter_rows()
    ]
    runs = runs.with_columns(pl.Series("finding_id", ids, dtype=pl.String)).join(meta, on="detection_id", how="left")
    owners = registry().owner
    raw = [
        orjson.dumps(
            {
                "producer": PRODUCER,
                "detection": row["detection_id"],
                "module": owners.get(row["detection_id"]),
                "key": {"type": row["key_type"], "id": row["key_id"]},
                "count": row["count"],
                "event_count": row["_event_count"],
                "evidence_capped": row["_event_count"] > MAX_EVIDENCE,
                "details": row["_details"],
            }
        ).decode()
        for row in runs.select("detection_id", "key_type", "key_id", "count", "_event_count", "_details").iter_rows(
            named=True
        )
    ]
    description = pl.concat_str(
        [
            pl.col("_description"),
            pl.lit(" Seen "),
            pl.col("count").cast(pl.String),
            pl.when(pl.col("count") == 1).then(pl.lit(" time")).otherwise(pl.lit(" times")),
            pl.lit(": "),
            pl.col("_details").list.head(3).list.join("; "),
            pl.when(pl.col("_details").list.len() > 3).then(pl.lit("; ...")).otherwise(pl.lit("")),
        ]
    )
    findings = runs.with_columns(
        pl.lit(PRODUCER).alias("producer"),
        description.alias("description"),
        label_expr("severity").alias("severity_label"),
        pl.Series("raw", raw, dtype=pl.String),
        pl.col("last_seen").alias("updated_at"),
        pl.lit(PRODUCER).alias("origin"),
    )
    findings = schema.conform(findings.sort("first_seen", "finding_id"), "findings")
    entities = (
        runs.select("finding_id", "first_seen", "_entities")
        .explode("_entities")
        .filter(pl.col("_entities").is_not_null())
        .select(
            "finding_id",
            pl.col("_entities").struct.field("entity_type"),
            pl.col("_entities").struct.field("entity_id"),
            pl.col("_entities").struct.field("role"),
            "first_seen",
            pl.lit(PRODUCER).alias("origin"),
        )
        .unique(maintain_order=True)
    )
    return findings, schema.conform(entities, "finding_entities")


# ---------------------------------------------------------------------------------------------
# The library entry points


@dataclass
class Detections:
    findings: pl.DataFrame  # producer "sleuth", canonical FINDINGS
    finding_entities: pl.DataFrame
    counts: dict[str, int]  # findings per detection module id
    stats: list[DetectionStat] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class Lazy:
    """An enrichment object built on first use (the geo database is only loaded when a detection
    needs it); `Lazy(run.geo)` stands in for `run.geo()`."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._value: Any = None
        self._built = False

    def _get(self) -> Any:
        if not self._built:
            self._value, self._built = self._factory(), True
        return self._value

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(), name)

    def __len__(self) -> int:
        return len(self._get())

    def __bool__(self) -> bool:
        return bool(self._get())


def detect(dataset, config: Config, geo: Any = None, intel: Any = None, only: tuple[str, ...] = ()) -> Detections:
    """Run every detection over a `sleuth.dataset.Dataset` (its events and flows in its time window)."""
    reg = registry()
    frames_needed = {frame for detection in reg.detections for frame in detection.frames}
    events = dataset.frames["events"].collect() if "events" in frames_needed else schema.empty("events")
    flows = dataset.frames["flows"].collect() if "flows" in frames_needed else schema.empty("flows")
    context = Context(events=events, flows=flows, config=config, geo=geo, intel=intel)
    hits, stats = run_detections(context, only)
    findings, entities = findings_from_hits(hits, config)
    by_module: dict[str, int] = {stat.id: 0 for stat in stats}
    for detection_id, count in findings.group_by(pl.col("type").str.extract(r"/(.+)$")).len().iter_rows():
        owner = reg.owner.get(detection_id or "")
        if owner is not None:
            by_module[owner] = by_module.get(owner, 0) + count
    warnings = list(reg.import_errors) + [f"detection {s.id} failed: {s.error}" for s in stats if s.error]
    return Detections(findings, entities, by_module, stats, warnings)


def add_findings(dataset, detections: Detections):
    """The dataset with sleuth's findings beside the sources' own (sleuth findings already in the
    sources, from an earlier run, are replaced)."""
    frames = dict(dataset.frames)
    kept = frames["findings"].filter(pl.col("producer") != PRODUCER)
    kept_ids = kept.select("finding_id")
    frames["findings"] = pl.concat([kept, detections.findings.lazy()], how="vertical")
    frames["finding_entities"] = pl.concat(
        [
            frames["finding_entities"].join(kept_ids, on="finding_id", how="semi"),
            detections.finding_entities.lazy(),
        ],
        how="vertical",
    )
    return dataclasses.replace(dataset, frames=frames)


def cached_detect(dataset, config: Config, geo: Any = None, intel: Any = None) -> Detections:
    """`detect`, cached beside a case store (sleuth.derived): the second question about a case does
    not run the detections again. A cached answer carries no per-detection timings or warnings."""
    from sleuth.derived import cached_frames, enrichment_identity

    ran: list[Detections] = []

    def compute() -> dict[str, pl.DataFrame]:
        ran.append(detect(dataset, config, geo, intel))
        return {"findings": ran[0].findings, "entities": ran[0].finding_entities}

    frames = cached_frames(dataset, config, "detections", compute, enrichment_identity(geo, intel))
    if ran:
        return ran[0]
    counts = dict(frames["findings"].group_by(pl.col("type").str.extract(r"/(.+)$")).len().iter_rows())
    return Detections(frames["findings"], frames["entities"], counts)


def with_detections(dataset, config: Config, geo: Any = None, intel: Any = None):
    """The dataset whose frames["findings"] and ["finding_entities"] hold GuardDuty's and sleuth's findings."""
    return add_findings(dataset, cached_detect(dataset, config, geo, intel))


# ---------------------------------------------------------------------------------------------
# `sleuth rules`


@dataclass
class RulesListing:
    detections: list[dict]  # behavioural detections (modules)
    mapped: list[dict]  # rows of the mapping table
    tactic: str | None = None


def _detection_record(detection: Detection) -> dict:
    return {
        "id": detection.id,
        "severity": detection.severity,
        "severity_label": severity_label(detection.severity),
        "tactics": list(detection.all_tactics),
        "techniques": list(detection.all_techniques),
        "title": detection.title,
        "frames": list(detection.frames),
        "description": detection.description,
        "false_positives": detection.false_positives,
    }


def rules_listing(tactic: str | None = None) -> RulesListing:
    """Every behavioural detection and every mapped event, optionally only those of one tactic."""
    from sleuth.correlate.detect.table import mapped_rules

    wanted = None
    if tactic:
        wanted = canonical_tactic(tactic)
        if wanted not in ATTACK_TACTICS:
            raise UsageError(f"--tactic {tactic!r} is not an ATT&CK tactic", f"use one of: {', '.join(ATTACK_TACTICS)}")
    reg = registry()
    detections = [
        _detection_record(d)
        for module_id, d in zip(reg.modules, reg.detections, strict=True)
        if not getattr(reg.modules[module_id], "RULES", ())
    ]
    mapped = [
        {
            "id": rule.id,
            "severity": rule.severity,
            "severity_label": "Context" if rule.context_only else severity_label(rule.severity),
            "tactics": list(rule.tactics),
            "techniques": list(rule.techniques),
            "techniques_v19": list(rule.techniques_v19),
            "title": rule.title,
            "service": rule.service,
            "action": rule.action,
            "condition": rule.condition or None,
            "makes_findings": not rule.context_only,
            "rationale": rule.rationale,
        }
        for rule in mapped_rules()
    ]
    if wanted:
        detections = [d for d in detections if wanted in d["tactics"]]
        mapped = [m for m in mapped if wanted in m["tactics"]]
    return RulesListing(detections, mapped, wanted)
