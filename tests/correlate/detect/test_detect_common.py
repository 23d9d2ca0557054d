"""The shared pieces of the behavioural detections (sleuth/correlate/detect/_common.py): the exact
sliding-window burst statistic, address handling, and the orientation of flow records."""

from __future__ import annotations

import importlib
from datetime import timedelta

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sleuth import schema
from sleuth.correlate.detect import _common as c
from sleuth.correlate.detect.base import HITS
from tests.correlate.detect.behaviour import T0, FakeGeo, FakeIntel, at, context, flow
from tests.correlate.frames import events_frame

WINDOW = timedelta(minutes=10)


def _brute_force(rows: list[tuple[str, int, str]], threshold: int) -> tuple[dict[str, int], set[int]]:
    """Per group, the most distinct items in any window (t - W, t]; and the rows inside a window at threshold."""
    peaks: dict[str, int] = {}
    members: set[int] = set()
    for group, minute, _ in rows:
        inside = [j for j, (g, m, _) in enumerate(rows) if g == group and minute - 10 < m <= minute]
        distinct = len({rows[j][2] for j in inside})
        peaks[group] = max(peaks.get(group, 0), distinct)
        if distinct >= threshold:
            members.update(inside)
    return {g: p for g, p in peaks.items() if p >= threshold}, members


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from("ab"), st.integers(0, 40), st.sampled_from("vwxyz")), max_size=40),
    st.integers(1, 4),
)
def test_bursts_agree_with_brute_force(rows, threshold):
    frame = pl.DataFrame(
        {"g": [r[0] for r in rows], "time": [T0 + timedelta(minutes=r[1]) for r in rows], "item": [r[2] for r in rows],
         "row": list(range(len(rows)))},
        schema={"g": pl.String, "time": pl.Datetime("us", "UTC"), "item": pl.String, "row": pl.Int64},
    )  # fmt: skip
    members = c.bursts(frame, ["g"], "item", WINDOW, threshold)
    peaks, expected = _brute_force(rows, threshold)
    assert set(members["row"]) == expected
    assert dict(members.group_by("g").agg(pl.col("_peak").max()).iter_rows()) == peaks


def test_bursts_without_items_count_rows_and_skip_nulls():
    frame = pl.DataFrame({"g": ["a"] * 4 + [None], "time": [at(minutes=m) for m in (0, 1, 2, 30, 1)]})
    members = c.bursts(frame, ["g"], None, WINDOW, 3)
    assert len(members) == 3 and members["_peak"].to_list() == [3, 3, 3]
    assert c.bursts(frame.clear(), ["g"], None, WINDOW, 1).is_empty()


def test_addresses_are_normalised_and_scoped():
    values = ["035.249.253.232", "ec2.amazonaws.com", "AWS Internal", "2001:DB8::1", "300.1.1.1", None]
    frame = pl.DataFrame({"v": values}).with_columns(ip=c.ip(pl.col("v")))
    assert frame["ip"].to_list() == ["35.249.253.232", None, None, "2001:db8::1", None, None]
    internal = ["10.1.2.3", "172.16.0.1", "172.31.9.9", "192.168.10.20", "100.64.0.1", "127.0.0.1", "169.254.169.254",
                "fd00::1", "fe80::1"]  # fmt: skip
    external = ["172.32.0.1", "100.128.0.1", "203.0.113.5", "8.8.8.8", "2600:1f18::1", "250.202.242.232"]
    scoped = pl.DataFrame({"a": internal + external}).select(c.is_internal(pl.col("a")))
    assert scoped.to_series().to_list() == [True] * len(internal) + [False] * len(external)


def test_principal_types_and_names():
    rows = [
        {"principal": "arn:aws:iam::123456789012:root", "actor_type": "Root"},
        {"principal": "arn:aws:iam::123456789012:user/ops/bob", "actor_type": "IAMUser"},
        {"principal": "arn:aws:iam::123456789012:role/app", "actor_type": "AssumedRole"},
        {"principal": "arn:aws:iam::123456789012:role/app", "actor_type": None},
        {"principal": "arn:aws:sts::123456789012:federated-user/eve", "actor_type": "FederatedUser"},
    ]
    frame = events_frame(rows).select(c.principal_type().alias("type"), c.short_name().alias("name"))
    assert frame.rows() == [("AwsUser", "root (account 123456789012)"), ("AwsUser", "bob"), ("AwsRole", "app"),
                            ("AwsRole", "app"), ("FederatedUser", "eve")]  # fmt: skip


def test_flow_records_are_oriented_by_the_interface_address():
    rows = [
        flow("10.0.0.5", "198.51.100.7", 40000, 22, 100),  # sent by the interface
        flow("198.51.100.7", "10.0.0.5", 22, 40000, 100),  # received
        flow("10.0.0.5", "10.0.0.9", 40001, 443, 100),  # sent, to a neighbour
        flow("10.0.0.9", "10.0.0.5", 51000, 8080, 100),  # received from a neighbour
        flow("10.0.0.9", "10.0.0.5", 51000, 8080, 100, flow_direction="egress"),  # the direction field wins
    ]
    oriented = c.orient(schema.conform(pl.DataFrame(rows, infer_schema_length=None), "flows"))
    assert oriented.select("_outbound", "_local", "_peer", "_local_port").rows() == [
        (True, "10.0.0.5", "198.51.100.7", 40000),
        (False, "10.0.0.5", "198.51.100.7", 40000),
        (True, "10.0.0.5", "10.0.0.9", 40001),
        (False, "10.0.0.5", "10.0.0.9", 8080),
        (True, "10.0.0.9", "10.0.0.5", 51000),
    ]
    assert oriented.select(c.flow_key()).item(0, 0) == f"eni-0aaa:10.0.0.5:40000->198.51.100.7:22@{int(T0.timestamp())}"


BEHAVIOURAL = ["api_enumeration", "access_denied_burst", "denied_then_allowed", "console_brute_force",
               "root_account_use", "console_login_without_mfa", "instance_credentials_outside", "impossible_travel",
               "mass_secret_retrieval", "port_scan", "remote_login_brute_force", "large_outbound_transfer",
               "intel_traffic"]  # fmt: skip


@pytest.mark.parametrize("name", BEHAVIOURAL)
def test_empty_inputs_give_no_hits_in_the_contract_schema(name):
    module = importlib.import_module(f"sleuth.correlate.detect.{name}")
    for ctx in (context(), context(geo=FakeGeo({}), intel=FakeIntel({"198.51.100.1": "listed"}))):
        hits = module.run(ctx)
        assert dict(hits.schema) == HITS and hits.is_empty()
