"""Hits to findings: merging by detection and key entity within the window, ids, evidence, schema."""

from __future__ import annotations

import dataclasses
import json
import random
from datetime import timedelta

import polars as pl

from sleuth import schema
from sleuth.config import Config
from sleuth.correlate.detect import MAX_EVIDENCE, Detections, add_findings, findings_from_hits, registry
from sleuth.correlate.detect.base import conform_hits
from sleuth.dataset import Dataset
from tests.correlate.detect.synthetic import ACCOUNT, T0

ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
BOB = f"arn:aws:iam::{ACCOUNT}:user/bob"


def hit(hours: float, key: str = ALICE, detection: str = "cloudtrail-stop-logging", **fields) -> dict:
    at = T0 + timedelta(hours=hours)
    row = {
        "detection_id": detection,
        "key_type": "AwsUser",
        "key_id": key,
        "title": f"title at {hours}",
        "severity": None,
        "account": ACCOUNT,
        "region": "us-east-1",
        "first_seen": at,
        "last_seen": at,
        "count": 1,
        "event_ids": [f"e{hours}-{key[-5:]}"],
        "entities": [{"entity_type": "AwsUser", "entity_id": key, "role": "actor"}],
        "details": f"detail {hours}",
    }
    row.update(fields)
    return row


def hits(*rows: dict) -> pl.DataFrame:
    return conform_hits(pl.DataFrame(list(rows)))


def test_hits_within_the_window_merge_into_one_finding():
    findings, entities = findings_from_hits(hits(hit(0), hit(20), hit(40), hit(70), hit(1, key=BOB)), Config())
    assert findings.schema == pl.Schema(schema.FINDINGS) and entities.schema == pl.Schema(schema.FINDING_ENTITIES)
    by_key = {}
    for row in findings.iter_rows(named=True):
        key = json.loads(row["raw"])["key"]["id"]
        by_key.setdefault(key, []).append(row)
    # 0, 20 and 40 h chain (each within 24 h of the last); 70 h is 30 h after 40 h: a second finding
    alice = sorted(by_key[ALICE], key=lambda r: r["first_seen"])
    assert [json.loads(r["raw"])["count"] for r in alice] == [3, 1]
    assert alice[0]["first_seen"] == T0 and alice[0]["last_seen"] == T0 + timedelta(hours=40)
    assert alice[0]["event_ids"] == ["e0-alice", "e20-alice", "e40-alice"]
    assert len(by_key[BOB]) == 1
    first = alice[0]
    assert first["producer"] == "sleuth"
    assert first["type"] == "sleuth:DefenseEvasion/cloudtrail-stop-logging"
    assert (first["severity"], first["severity_label"]) == (7.0, "High")  # the detection's default
    assert first["tactics"] == ["Defense Evasion"] and first["techniques"] == ["T1562.008", "T1685.002"]
    assert "Seen 3 times" in first["description"]
    assert set(entities.filter(pl.col("finding_id") == first["finding_id"])["entity_id"]) == {ALICE}


def test_the_window_is_the_configured_one():
    config = dataclasses.replace(Config(), finding_merge_hours=1)
    findings, _ = findings_from_hits(hits(hit(0), hit(0.5), hit(3)), config)
    assert len(findings) == 2


def test_finding_ids_are_stable_across_runs_and_input_order():
    rows = [hit(h, key=k) for h in (0, 5, 30, 31) for k in (ALICE, BOB)]
    first, _ = findings_from_hits(hits(*rows), Config())
    random.Random(4).shuffle(rows)
    again, _ = findings_from_hits(hits(*rows), Config())
    assert first.equals(again)
    assert len(set(first["finding_id"])) == len(first) == 4
    assert all(len(i) == 32 for i in first["finding_id"])


def test_severity_is_the_worst_hit_and_the_title_its():
    findings, _ = findings_from_hits(hits(hit(0, severity=5.0, title="failed"), hit(1, severity=7.0, title="worked")),
                                     Config())  # fmt: skip
    assert findings.select("severity", "title").row(0) == (7.0, "worked")


def test_evidence_is_capped_and_the_count_kept():
    many = hit(0, event_ids=[f"e{i}" for i in range(MAX_EVIDENCE + 250)], count=MAX_EVIDENCE + 250)
    findings, _ = findings_from_hits(hits(many), Config())
    row = findings.row(0, named=True)
    assert len(row["event_ids"]) == MAX_EVIDENCE
    raw = json.loads(row["raw"])
    assert raw["event_count"] == MAX_EVIDENCE + 250 and raw["evidence_capped"] is True


def test_entities_are_unioned_and_unknown_detections_dropped():
    a = hit(0, entities=[{"entity_type": "IpAddress", "entity_id": "203.0.113.5", "role": "actor"}])
    b = hit(1, entities=[{"entity_type": "IpAddress", "entity_id": "203.0.113.5", "role": "actor"},
                         {"entity_type": "S3Bucket", "entity_id": "data", "role": "target"}])  # fmt: skip
    stray = hit(2, detection="no-such-detection")
    findings, entities = findings_from_hits(hits(a, b, stray), Config())
    assert len(findings) == 1
    assert sorted(entities["entity_type"]) == ["IpAddress", "S3Bucket"]
    assert findings_from_hits(hits(stray), Config())[0].is_empty()


def test_every_catalog_entry_makes_a_valid_finding_type():
    catalog = registry().catalog
    findings, _ = findings_from_hits(hits(*(hit(0, detection=d) for d in catalog)), Config())
    assert len(findings) == len(catalog)
    assert all(t.startswith("sleuth:") for t in findings["type"])
    assert {t.rsplit("/", 1)[1] for t in findings["type"]} == set(catalog)


def test_add_findings_keeps_the_sources_findings_and_replaces_old_sleuth_ones():
    old, old_entities = findings_from_hits(hits(hit(0, key=BOB)), Config())
    gd = schema.conform(pl.DataFrame({"finding_id": ["gd1"], "producer": ["guardduty"], "severity": [5.0]}), "findings")
    gd_entities = schema.conform(pl.DataFrame({"finding_id": ["gd1"], "entity_type": ["AwsAccount"],
                                               "entity_id": [ACCOUNT]}), "finding_entities")  # fmt: skip
    frames = {name: schema.empty(name).lazy() for name in schema.FRAMES}
    frames["findings"] = pl.concat([gd, old]).lazy()
    frames["finding_entities"] = pl.concat([gd_entities, old_entities]).lazy()
    dataset = Dataset(frames["events"], frames)
    new, new_entities = findings_from_hits(hits(hit(0)), Config())
    merged = add_findings(dataset, Detections(new, new_entities, {}))
    ids = set(merged.frames["findings"].collect()["finding_id"])
    assert ids == {"gd1", *new["finding_id"]}
    assert set(merged.frames["finding_entities"].collect()["finding_id"]) == ids
