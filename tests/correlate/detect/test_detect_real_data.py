"""Detections on real attack logs (../shared/data): every Stratus technique, the Invictus dataset,
the Panther compromised-root scenario. None of the detections may raise on them.

(Named test_detect_real_data.py: tests/test_real_data.py exists and test folders have no __init__.py.)
"""

from __future__ import annotations

from functools import cache

import polars as pl
import pytest

from sleuth.attack import ATTACK_TACTICS, canonical_tactic
from sleuth.config import Config
from sleuth.correlate.detect import Detections, detect, registry
from sleuth.dataset import open_dataset
from sleuth.timewindow import TimeWindow
from tests.conftest import SHARED_DATA, shared

STRATUS = SHARED_DATA / "stratus-detonation-logs" / "docs" / "detonation-logs"
STRATUS_FILES = sorted(p.name for p in STRATUS.glob("aws.*.json")) if STRATUS.is_dir() else []

# Files no detection can catch from their own records, with the reason (none at present).
UNDETECTABLE: dict[str, str] = {}


@cache
def _detections(*paths: str) -> tuple[Detections, pl.DataFrame]:
    """Detections over the given inputs, with the events (to look up what each finding's evidence is)."""
    dataset = open_dataset(list(paths), TimeWindow(), Config())
    return detect(dataset, Config()), dataset.frames["events"].collect()


def _geo():
    try:
        from sleuth.enrich.geo import GeoResolver
    except ImportError:  # pragma: no cover - a tree without sleuth.enrich
        return None
    return GeoResolver()


def test_every_stratus_file_has_a_case():
    folder = shared("stratus-detonation-logs") / "docs" / "detonation-logs"
    assert len(STRATUS_FILES) == len(list(folder.glob("aws.*.json"))) >= 30


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.xfail(reason=UNDETECTABLE[n], strict=True)) if n in UNDETECTABLE else n
     for n in STRATUS_FILES] or ["(no stratus files)"],
)  # fmt: skip
def test_each_stratus_technique_alone_gives_a_finding_of_its_tactic(name):
    folder = shared("stratus-detonation-logs") / "docs" / "detonation-logs"
    tactic = canonical_tactic(name.split(".")[1])
    assert tactic in ATTACK_TACTICS, name
    result, _ = _detections(str(folder / name))
    assert [s for s in result.stats if s.error] == [] and result.warnings == []
    tactics = {t for row in result.findings["tactics"].to_list() for t in row}
    assert tactic in tactics, f"{name}: findings {result.findings.select('type', 'tactics').rows()}"


INVICTUS_ACTIONS = [
    "StopLogging", "DeleteTrail", "PutEventSelectors", "GetSecretValue", "GetPasswordData", "ModifySnapshotAttribute",
    "ModifyImageAttribute", "CreateLoginProfile", "UpdateAssumeRolePolicy", "LeaveOrganization", "DeleteFlowLogs",
    "CreateAccessKey",
]  # fmt: skip


@pytest.mark.parametrize("action", INVICTUS_ACTIONS)
def test_invictus_findings_name_the_actor(action):
    result, events = _detections(str(shared("invictus-aws-dataset")))
    assert [s for s in result.stats if s.error] == []
    ids = set(events.filter(pl.col("action") == action)["event_id"])
    assert ids, action
    found = result.findings.filter(pl.col("event_ids").list.eval(pl.element().is_in(list(ids))).list.any())
    if action == "GetSecretValue":  # single reads are context; the mass-retrieval detection makes the finding
        found = found.filter(pl.col("event_ids").list.len() >= 5)
    assert len(found), f"no finding has a {action} event as evidence"
    actors = result.finding_entities.filter(
        pl.col("finding_id").is_in(found["finding_id"].implode()) & (pl.col("role") == "actor")
    )["entity_id"]
    assert any(a.endswith(":user/bert-jan") or ":role/stratus-red-team-" in a for a in actors), actors.to_list()


def test_invictus_stop_logging_attempts_that_failed_are_defense_evasion():
    result, _ = _detections(str(shared("invictus-aws-dataset")))
    stop = result.findings.filter(pl.col("type") == "sleuth:DefenseEvasion/cloudtrail-stop-logging").row(0, named=True)
    assert "failed" in stop["title"] and stop["severity_label"] == "Medium" and len(stop["event_ids"]) == 3


def test_panther_compromised_root_credentials():
    result, _ = _detections(str(shared("panther-samples") / "compromised-root-creds"))
    assert [s for s in result.stats if s.error] == []
    findings = result.findings
    by_type = {row["type"].rsplit("/", 1)[1]: row for row in findings.iter_rows(named=True)}
    root_key = by_type["iam-create-root-access-key"]
    assert root_key["severity_label"] == "High" and "Persistence" in root_key["tactics"]
    stop = by_type["cloudtrail-stop-logging"]  # it failed (not the organization's master trail): still an attempt
    assert "Defense Evasion" in stop["tactics"] and "failed" in stop["title"]
    assert "Persistence" in by_type["iam-create-user"]["tactics"]
    assert "Persistence" in by_type["iam-attach-user-policy"]["tactics"]
    attacker = result.finding_entities.filter(pl.col("entity_id") == "92.55.146.245")
    assert set(attacker["finding_id"]) >= {root_key["finding_id"], stop["finding_id"]}
    # the user the attacker made is a target of the persistence findings
    assert "arn:aws:iam::493859302102:user/tracy_stone" in set(result.finding_entities["entity_id"])
    # and the keys it created are the targets of the key findings (what remediation deactivates)
    made = result.finding_entities.filter((pl.col("entity_type") == "AccessKey") & (pl.col("role") == "target"))
    keys = dict(made.select("finding_id", "entity_id").iter_rows())
    assert keys[root_key["finding_id"]] == "AKIA5ZZZK44445XXFFVB"
    assert keys[by_type["iam-create-access-key-other-user"]["finding_id"]] == "AKIASWJJJ66ZZZII4IYY"


def test_no_detection_raises_on_all_the_real_data_together():
    paths = [shared("invictus-aws-dataset"), shared("panther-samples"), shared("stratus-detonation-logs")]
    dataset = open_dataset([str(p) for p in paths], TimeWindow(), Config())
    result = detect(dataset, Config(), geo=_geo())
    assert [s for s in result.stats if s.error] == [] and result.warnings == []
    assert set(result.counts) == set(registry().modules)
    # finding ids are deterministic: the same data gives the same findings
    again = detect(open_dataset([str(p) for p in paths], TimeWindow(), Config()), Config(), geo=_geo())
    assert sorted(result.findings["finding_id"]) == sorted(again.findings["finding_id"])
