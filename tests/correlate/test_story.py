"""The story's tables: what an incident's calls acted on."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace

import polars as pl

from sleuth.correlate.story import resources


def incident(*calls: tuple[str, list[str] | None, dict | None, str | None]) -> SimpleNamespace:
    rows = [
        {"event_id": str(n), "action": action, "resources": arns, "request": json.dumps(request) if request else None,
         "response": None, "read_only": False, "error_code": error, "time": datetime(2026, 3, 3, tzinfo=UTC),
         "principal": "arn:aws:iam::123456789012:user/x", "session": None, "access_key": None}
        for n, (action, arns, request, error) in enumerate(calls)
    ]  # fmt: skip
    schema = {"event_id": pl.String, "action": pl.String, "resources": pl.List(pl.String), "request": pl.String,
              "response": pl.String, "read_only": pl.Boolean, "error_code": pl.String,
              "time": pl.Datetime("us", "UTC"), "principal": pl.String, "session": pl.String,
              "access_key": pl.String}  # fmt: skip
    return SimpleNamespace(events=pl.DataFrame(rows, schema=schema))


def test_request_names_count_with_the_records_arns_once():
    table = resources(
        incident(
            ("PutBucketPolicy", ["arn:aws:s3:::payroll"], {"bucketName": "payroll", "policy": "{}"}, None),
            ("StopLogging", None, {"name": "main"}, "AccessDenied"),
            ("CreateUser", None, {"userName": "tracy_stone", "path": "/"}, None),
            ("AttachUserPolicy", None, {"userName": "tracy_stone", "policyArn": "arn:aws:iam::aws:policy/X"}, None),
        )
    )
    rows = {r["resource"]: r for r in table.iter_rows(named=True)}
    policy = "policyArn: arn:aws:iam::aws:policy/X"
    assert set(rows) == {"arn:aws:s3:::payroll", "name: main", "userName: tracy_stone", policy}
    assert rows["userName: tracy_stone"]["calls"] == 2 and rows["userName: tracy_stone"]["actions"] == [
        "AttachUserPolicy", "CreateUser"]  # fmt: skip
    assert rows["name: main"]["failures"] == 1


def test_names_are_decoded_whole_and_nested_names_are_not_resources():
    hostile = "a\n| --- |\nb"
    table = resources(
        incident(
            ("PutBucketAcl", None, {"bucketName": hostile}, None),
            ("RunInstances", None, {"iamInstanceProfile": {"name": "web-profile"}, "imageId": "ami-1"}, None),
        )
    )
    assert set(table["resource"]) == {f"bucketName: {hostile}", "imageId: ami-1"}
