"""Turning -s arguments into inputs, and pruning AWSLogs days by the time window."""

from __future__ import annotations

from datetime import date

import pytest

from sleuth.config import Config
from sleuth.errors import SourceError
from sleuth.sources import key_layout, resolve
from sleuth.timewindow import TimeWindow
from tests.conftest import INCIDENT, SHAPES


def test_key_layout_with_and_without_organization():
    plain = key_layout("b/AWSLogs/123456789012/CloudTrail/eu-west-1/2026/03/03/x.json.gz")
    assert plain == {"account": "123456789012", "region": "eu-west-1", "service": "CloudTrail", "day": date(2026, 3, 3)}
    org = key_layout("AWSLogs/o-abc123def4/123456789012/CloudTrail/us-east-1/2026/03/01/x.json.gz")
    assert org["account"] == "123456789012" and org["day"] == date(2026, 3, 1)
    assert key_layout("logs/2026/03/01/x.json") is None
    assert key_layout("AWSLogs/123456789012/CloudTrail/us-east-1/2026/02/30/x.json") is None


def test_folders_are_recursive_and_digests_counted_not_read():
    found = resolve([str(INCIDENT)], TimeWindow(), Config())
    assert len(found.files) == 6
    assert len(found.digests) == 1
    assert all(f.account == "123456789012" for f in found.files)


def window(since=None, until=None):
    return TimeWindow.from_options(since, until, None)


def test_days_outside_the_window_are_pruned_with_one_day_of_slack():
    found = resolve([str(INCIDENT)], window(since="2026-03-03T00:00:00Z"), Config())
    # key days 2026-03-02 (slack) and 03-03 are kept; 03-01 files are pruned unread
    assert sorted({f.key_date.isoformat() for f in found.files}) == ["2026-03-02", "2026-03-03"]
    assert found.pruned == 2
    found = resolve([str(INCIDENT)], window(until="2026-03-01T12:00:00Z"), Config())
    assert sorted({f.key_date.isoformat() for f in found.files}) == ["2026-03-01", "2026-03-02"]
    found = resolve([str(INCIDENT)], window(since="2026-03-03"), Config(key_date_slack_days=0))
    assert {f.key_date.isoformat() for f in found.files} == {"2026-03-03"}


def test_globs_and_duplicates_of_the_same_path(tmp_path):
    found = resolve([str(SHAPES / "*.jsonl"), str(SHAPES / "json-lines.jsonl")], TimeWindow(), Config())
    assert [f.path.rsplit("/", 1)[1] for f in found.files] == ["eventbridge.jsonl", "json-lines.jsonl"]


def test_missing_paths_and_empty_globs_are_errors():
    with pytest.raises(SourceError, match="no such file"):
        resolve(["/nonexistent"], TimeWindow(), Config())
    with pytest.raises(SourceError, match="matches no file"):
        resolve([str(SHAPES / "*.nothing")], TimeWindow(), Config())


def test_too_many_files_is_an_error():
    with pytest.raises(SourceError, match="max_files"):
        resolve([str(SHAPES)], TimeWindow(), Config(max_files=2))


def test_last_is_relative_to_now():
    from datetime import UTC, datetime

    now = datetime(2026, 3, 3, 12, tzinfo=UTC)
    assert TimeWindow.from_options(None, None, "24h", now=now).since == datetime(2026, 3, 2, 12, tzinfo=UTC)
