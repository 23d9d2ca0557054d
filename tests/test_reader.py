"""One input file: decompression by magic, caps, decoding, and each broken-input case."""

from __future__ import annotations

import gzip

from sleuth.config import Config
from sleuth.reader import parse_file
from tests.conftest import BROKEN, SHAPES


def read(path, **config):
    report, frames = parse_file(path, Config(**config))
    assert report.read == report.kept + report.duplicate + sum(report.skipped.values())
    return report, frames


def test_gzip_is_detected_by_magic_not_name(tmp_path):
    disguised = tmp_path / "looks-plain.json"
    disguised.write_bytes(gzip.compress((SHAPES / "s3-delivery.json").read_bytes()))
    report, _frames = read(disguised)
    assert report.kept == 3 and report.error is None


def test_multi_member_gzip_reads_every_member(tmp_path):
    lines = (SHAPES / "json-lines.jsonl").read_bytes().splitlines(keepends=True)
    path = tmp_path / "members.gz"
    path.write_bytes(b"".join(gzip.compress(line) for line in lines))
    assert read(path)[0].kept == 3


def test_truncated_gzip_keeps_the_records_before_the_cut():
    report, _frames = read(BROKEN / "truncated.json.gz")
    assert report.error is None
    assert report.kept > 10 and report.skipped == {"invalid JSON": 1}
    assert any("truncated gzip" in w for w in report.warnings)


def test_invalid_json_is_a_skipped_input():
    report, _ = read(BROKEN / "invalid.json")
    assert report.error.startswith("invalid JSON")


def test_not_cloudtrail():
    assert read(BROKEN / "not-cloudtrail.json")[0].error.startswith("not a recognised log format")


def test_empty_file():
    assert read(BROKEN / "empty.json")[0].error == "empty file"


def test_non_utf8_keeps_records_and_warns():
    report, frames = read(BROKEN / "latin1.json")
    assert report.kept == 1
    assert "not valid UTF-8" in report.warnings[0]
    assert "caf\ufffd-cli" in frames["events"]["user_agent"][0]


def test_record_without_event_time():
    report, _ = read(BROKEN / "no-eventtime.json")
    assert (report.read, report.kept, dict(report.skipped)) == (2, 1, {"no eventTime": 1})


def test_gzip_bomb_stops_at_the_cap():
    report, frames = read(BROKEN / "bomb.json.gz", max_decompressed_bytes=1 << 20)
    assert report.error.startswith("decompresses past max_decompressed_bytes")
    assert frames == {}


def test_plain_file_over_the_cap(tmp_path):
    report, _ = read(SHAPES / "pretty-records.json", max_decompressed_bytes=100)
    assert report.error.startswith("larger than max_decompressed_bytes")


def test_record_over_the_size_limit_is_skipped():
    report, _ = read(SHAPES / "s3-delivery.json", max_record_bytes=200)
    assert report.kept == 0 and report.skipped == {"record too large": 3}


def test_report_carries_identity_and_time_range():
    report, _ = read(SHAPES / "s3-delivery.json")
    assert len(report.sha256) == 64 and report.size > 0 and report.format == "cloudtrail"
    assert report.first <= report.last
