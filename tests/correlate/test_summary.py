"""The summary page: busiest and failing actors, flow volume, new geolocations, findings by severity."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from sleuth import schema
from sleuth.config import Config
from sleuth.correlate.summary import build_summary
from sleuth.dataset import open_dataset
from sleuth.enrich.geo import GeoResolver
from sleuth.timewindow import TimeWindow
from tests.conftest import shared
from tests.correlate.frames import ACCOUNT, at, dataset, event, flow

ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
BOB = f"arn:aws:iam::{ACCOUNT}:user/bob"
WEB = f"arn:aws:iam::{ACCOUNT}:role/web"
INSTANCE = "i-0123456789abcdef0"


@pytest.fixture(scope="module")
def geo():
    return GeoResolver()


def story():
    # fmt: off
    rows = [
        event("ListBuckets", time=at(-48), src_ip="8.8.8.8"),  # baseline: the United States
        *[event("GetObject", time=at(h / 4), src_ip="8.8.8.8") for h in range(12)],
        event("ConsoleLogin", "signin.amazonaws.com", time=at(5), principal=BOB, src_ip="92.55.146.245",
              response={"ConsoleLogin": "Failure"}),
        event("ConsoleLogin", "signin.amazonaws.com", time=at(5.1), principal=BOB, src_ip="92.55.146.245",
              response={"ConsoleLogin": "Failure"}),
        event("DeleteTrail", "cloudtrail.amazonaws.com", time=at(6), principal=ALICE, error_code="AccessDenied",
              src_ip="92.55.146.245"),
        *[event("DescribeInstances", "ec2.amazonaws.com", time=at(7), principal=WEB, session=f"AROAWEB:{INSTANCE}",
                src_ip="10.0.0.5") for _ in range(3)],
        event("RunInstances", "ec2.amazonaws.com", time=at(1), principal=ALICE, response={"instancesSet": {"items": [
            {"instanceId": "i-0aaaaaaaaaaaaaaaa",
             "networkInterfaceSet": {"items": [{"networkInterfaceId": "eni-0bbb"}]}},
        ]}}),
        event("ListUsers", time=at(30)),  # after the scope
    ]
    flows = [
        flow("10.0.0.5", "203.0.113.9", 40000, 443, 1000, time=at(2), instance_id=INSTANCE),
        flow("203.0.113.9", "10.0.0.5", 443, 40000, 5000, time=at(2), instance_id=INSTANCE),
        flow("10.0.0.7", "198.51.100.1", 1, 22, 9000, time=at(3), interface_id="eni-0bbb"),
        flow("10.0.0.7", "198.51.100.1", 1, 22, 4, time=at(3), interface_id="eni-0bbb", action="REJECT"),
        flow("10.0.0.8", "198.51.100.1", 1, 22, 7, time=at(3), interface_id="eni-0ccc"),
        flow("10.0.0.8", "198.51.100.1", 1, 22, 10**9, time=at(-30), interface_id="eni-0ccc"),  # before the scope
    ]
    # fmt: on
    data = dataset(rows, flows)
    findings = schema.conform(
        pl.DataFrame(
            {
                "finding_id": ["f1", "f2", "f3", "f4"],
                "title": ["low one", "high one", "higher one", "too old"],
                "severity": [2.0, 7.0, 8.5, 9.0],
                "severity_label": ["Low", "High", "High", "Critical"],
                "first_seen": [at(1), at(2), at(3), at(-100)],
                "last_seen": [at(1), at(2), at(3), at(-90)],
            }
        ),
        "findings",
    )
    data.frames["findings"] = findings.lazy()
    return data


@pytest.fixture(scope="module")
def summary(geo):
    return build_summary(story(), Config(), geo, (at(0), at(24)))


def test_totals(summary):
    assert summary.totals == {
        "events": 19, "failures": 3, "principals": 3, "addresses": 4, "flows": 5, "findings": 3,
    }  # fmt: skip


def test_busiest_and_failing(summary):
    busiest = [(r["type"], r["id"], r["calls"], r["failure"]) for r in summary.busiest.iter_rows(named=True)]
    assert busiest[:5] == [
        ("AwsUser", ALICE, 14, 1),
        ("AwsRoleSession", f"AROAWEB:{INSTANCE}", 3, 0),  # ties by id
        ("AwsRole", WEB, 3, 0),
        ("Ec2Instance", INSTANCE, 3, 0),
        ("AwsUser", BOB, 2, 2),
    ]
    failing = [(r["id"], r["failure"]) for r in summary.failing.iter_rows(named=True)]
    assert failing == [(BOB, 2), (ALICE, 1)]  # failed console sign-ins count, though they have no errorCode
    timeline = summary.busiest.filter(pl.col("id") == BOB)["timeline"][0]
    assert len(timeline) == 24 and timeline.strip() == "█" and timeline.index("█") == 5


def test_flow_volume(summary):
    rows = {r["id"]: r for r in summary.flow_volume.iter_rows(named=True)}
    assert list(rows) == ["i-0aaaaaaaaaaaaaaaa", INSTANCE, "eni-0ccc"]  # most bytes first
    launched = rows["i-0aaaaaaaaaaaaaaaa"]  # named by its RunInstances, the flows name only the interface
    assert (launched["interfaces"], launched["bytes_out"], launched["bytes_in"], launched["flows"]) == (
        ["eni-0bbb"], 9000, 0, 1
    )  # the rejected flow is not volume
    assert (rows[INSTANCE]["bytes_in"], rows[INSTANCE]["bytes_out"]) == (5000, 1000)
    assert rows["eni-0ccc"]["bytes_out"] == 7  # the gigabyte before the scope is not counted


def test_new_geolocations(summary):
    new = summary.new_geolocations.to_dicts()
    assert len(new) == 1
    assert (new[0]["location"], new[0]["addresses"], new[0]["principals"], new[0]["calls"]) == (
        "Romania", ["92.55.146.245"], [ALICE, BOB], 3
    )
    assert new[0]["first_seen"] == at(5)


def test_findings_by_severity(geo):
    only_given = build_summary(story(), Config(), geo, (at(0), at(24)), detect=False)  # the findings it was given
    assert only_given.findings.rows() == [("High", 2, "higher one"), ("Low", 1, "low one")]


def test_sleuth_findings_count_beside_guardduty(geo):
    from tests.conftest import INCIDENT

    data = open_dataset([str(INCIDENT)], TimeWindow(), Config())
    summary = build_summary(data, Config(), geo)
    assert summary.totals["findings"] >= 4  # the fixture holds no GuardDuty export: these are sleuth's
    assert "High" in summary.findings["severity_label"].to_list()


def test_without_geo_no_geolocations():
    assert build_summary(story(), Config(), None, (at(0), at(24))).new_geolocations.is_empty()


def test_default_scope_is_the_last_day_of_the_data(geo):
    summary = build_summary(story(), Config(), geo)
    assert summary.scope.end > at(30) and summary.scope.start == summary.scope.end - (at(24) - at(0))
    assert summary.totals["events"] == 4  # the instance's three calls at T0 + 7 h, and the last one
    assert summary.totals["flows"] == 0


def test_panther_summary():
    data = open_dataset([str(shared("panther-samples/compromised-root-creds"))], TimeWindow(), Config())
    scope = (datetime(2020, 10, 30, tzinfo=UTC), datetime(2020, 11, 2, tzinfo=UTC))
    summary = build_summary(data, Config(), GeoResolver(), scope)
    root = "arn:aws:iam::493859302102:root"
    assert summary.failing.select("id", "failure").rows() == [(root, 4)]
    new = summary.new_geolocations.to_dicts()
    assert [(n["location"], n["addresses"], n["calls"]) for n in new] == [("Romania", ["92.55.146.245"], 12)]
    assert new[0]["principals"] == [root, "arn:aws:iam::493859302102:user/tracy_stone"]
    flows = summary.flow_volume.to_dicts()
    assert [(f["id"], f["interfaces"], f["bytes_out"]) for f in flows] == [
        ("i-05261ffb46217cdc3", ["eni-0b13344793d4fde67"], 2 * 1048576 + 7119)
    ]


def test_calls_from_service_hosts_add_no_address(geo):
    """A service host (ec2.amazonaws.com) or `AWS Internal` is no address: it must not count as one."""
    rows = [
        event("GetObject", time=at(1), src_ip="8.8.8.8"),
        event("Decrypt", "kms.amazonaws.com", time=at(2), src_ip="ec2.amazonaws.com"),
        event("Decrypt", "kms.amazonaws.com", time=at(3), src_ip="AWS Internal"),
    ]
    summary = build_summary(dataset(rows, []), Config(), geo, (at(0), at(24)))
    assert (summary.totals["events"], summary.totals["addresses"]) == (3, 1)
