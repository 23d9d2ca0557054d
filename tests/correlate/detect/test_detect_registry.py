"""The detection registry: every module is registered or excluded, metadata valid, runs isolated.

(Named test_detect_registry.py: tests/parsers/test_registry.py exists and test folders have no
__init__.py, so basenames must be unique.)
"""

from __future__ import annotations

import pkgutil
import types

import polars as pl
import pytest

import sleuth.correlate.detect as detect
from sleuth import schema
from sleuth.attack import ATTACK_TACTICS
from sleuth.config import Config
from sleuth.correlate.detect.base import HITS, Context, Detection, empty_hits
from tests.correlate.detect.synthetic import event, frame


def test_every_module_is_registered_or_explicitly_excluded():
    names = {info.name for info in pkgutil.iter_modules(detect.__path__)}
    excluded = {n for n in names if n in detect.NOT_DETECTIONS or n.startswith("_")}
    registered = {module.__name__.rsplit(".", 1)[1] for module in detect.registry().modules.values()}
    assert registered == names - excluded
    assert {"mapped"} <= registered and {"base", "table"} <= excluded
    assert detect.registry().import_errors == ()


def test_metadata_is_valid_and_ids_unique():
    reg = detect.registry()
    ids = [d.id for d in reg.detections]
    assert len(ids) == len(set(ids))
    assert len(reg.catalog) == len(set(reg.catalog))
    for item in reg.catalog.values():
        assert isinstance(item, Detection)
        assert set(item.all_tactics) <= set(ATTACK_TACTICS)
        assert item.title and item.description and item.false_positives
    assert all(isinstance(d, Detection) for d in detect.DETECTIONS)
    assert len(detect.DETECTIONS) == len(reg.modules)


def test_every_detection_runs_on_empty_frames():
    context = Context(events=schema.empty("events"), flows=schema.empty("flows"), config=Config())
    hits, stats = detect.run_detections(context)
    assert [s for s in stats if s.error] == []
    assert hits.is_empty() and hits.schema == pl.Schema(HITS)


def _module(name: str, detection_id: str, run, rules=()) -> types.ModuleType:
    module = types.ModuleType(f"sleuth.correlate.detect.{name}")
    module.DETECTION = Detection(detection_id, "t", 5.0, "Discovery", "T1580", "d", "fp")
    module.run = run
    if rules:
        module.RULES = rules
    return module


def _boom(context):
    raise RuntimeError("boom")


def _one_hit(context):
    return pl.DataFrame({"detection_id": ["fine"], "key_type": ["AwsUser"], "key_id": ["u"], "count": [1]})


def test_a_detection_that_raises_is_a_warning_not_the_end(monkeypatch):
    fake = detect.build_registry([_module("broken", "broken", _boom), _module("fine", "fine", _one_hit)])
    monkeypatch.setattr(detect, "registry", lambda: fake)
    context = Context(events=schema.empty("events"), flows=schema.empty("flows"), config=Config())
    hits, stats = detect.run_detections(context)
    assert len(hits) == 1
    broken = next(s for s in stats if s.id == "broken")
    assert broken.error.startswith("RuntimeError: boom")


def test_hits_with_undeclared_ids_are_refused(monkeypatch):
    def stray(context):
        return pl.DataFrame({"detection_id": ["someone-else"], "count": [1]})

    fake = detect.build_registry([_module("stray", "stray", stray)])
    monkeypatch.setattr(detect, "registry", lambda: fake)
    context = Context(events=schema.empty("events"), flows=schema.empty("flows"), config=Config())
    hits, stats = detect.run_detections(context)
    assert hits.is_empty() and "does not declare" in stats[0].error


def test_the_registry_refuses_broken_contracts():
    fine = _module("a", "same-id", lambda c: empty_hits())
    with pytest.raises(ValueError, match="also used by"):
        detect.build_registry([fine, _module("b", "same-id", lambda c: empty_hits())])
    no_run = _module("c", "no-run", None)
    with pytest.raises(ValueError, match="needs run"):
        detect.build_registry([no_run])
    bad = types.ModuleType("sleuth.correlate.detect.bad")
    bad.DETECTION, bad.run = {"id": "x"}, lambda c: empty_hits()
    with pytest.raises(ValueError, match="DETECTION must be"):
        detect.build_registry([bad])
    clash = _module("d", "other", lambda c: empty_hits(), rules=(fine.DETECTION,))
    with pytest.raises(ValueError, match="already used"):
        detect.build_registry([fine, clash])


def test_detection_metadata_is_validated():
    with pytest.raises(ValueError, match="unknown ATT&CK tactic 'Defence'"):
        Detection("x", "t", 5.0, "Discovery", "T1580", "d", "fp", tactics=("Defence",))
    with pytest.raises(ValueError, match="not kebab-case"):
        Detection("Not_Kebab", "t", 5.0, "Discovery", "T1580", "d", "fp")


def test_detect_over_a_dataset_reports_counts_per_module():
    events = frame(event("StopLogging", "cloudtrail"), event("DeleteTrail", "cloudtrail", event_id="x"))
    frames = {name: schema.empty(name).lazy() for name in schema.FRAMES}
    frames["events"] = events.lazy()
    from sleuth.dataset import Dataset

    result = detect.detect(Dataset(frames["events"], frames), Config())
    assert result.warnings == []
    assert result.counts["cloudtrail-mapped-events"] == 2
    assert set(result.findings["producer"]) == {"sleuth"}
    merged = detect.with_detections(Dataset(frames["events"], frames), Config())
    assert merged.frames["findings"].collect().height == 2


def test_lazy_enrichment_is_built_on_first_use_only():
    built = []
    lazy = detect.Lazy(lambda: built.append(1) or [1, 2])
    assert built == []
    assert len(lazy) == 2 and lazy.count(1) == 1 and built == [1]


def test_rules_listing():
    listing = detect.rules_listing()
    assert len(listing.mapped) >= 80 and listing.detections
    assert all(not d["id"].startswith("cloudtrail-mapped") for d in listing.detections)
    only = detect.rules_listing("defense-evasion")
    assert only.tactic == "Defense Evasion" and only.mapped
    assert all("Defense Evasion" in m["tactics"] for m in only.mapped + only.detections)
    with pytest.raises(detect.UsageError, match="not an ATT&CK tactic"):
        detect.rules_listing("lunch")
