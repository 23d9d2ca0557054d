"""Commands over s3:// sources: the same answers as from disk, downloading only what the window needs."""

from __future__ import annotations

import json

import boto3
import polars as pl
import pytest

from sleuth import store
from tests.conftest import INCIDENT, run_cli
from tests.s3_server import s3_endpoint  # noqa: F401  (a fixture)

BUCKET = "cli-trail"


@pytest.fixture(scope="module")
def bucket(s3_endpoint):  # noqa: F811
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket=BUCKET)
    for path in INCIDENT.rglob("*.gz"):
        client.put_object(Bucket=BUCKET, Key=f"trail/{path.relative_to(INCIDENT).as_posix()}", Body=path.read_bytes())
    return s3_endpoint


def events(case):
    columns = [c for c in store.scan(case, "events").collect_schema().names() if c not in ("origin", "origin_index")]
    return store.scan(case, "events").select(columns).collect().sort("event_id", "content_hash")


def test_ingest_from_s3_equals_ingest_from_disk(bucket, tmp_path):
    run_cli(["ingest", "-q", "-s", f"s3://{BUCKET}/trail/", "--endpoint-url", bucket, "-o", tmp_path / "remote"])
    run_cli(["ingest", "-q", "-s", INCIDENT, "-o", tmp_path / "local"])
    assert events(tmp_path / "remote").equals(events(tmp_path / "local"))
    manifest = json.loads((tmp_path / "remote" / "manifest.json").read_text())
    assert all(entry["path"].startswith(f"s3://{BUCKET}/trail/AWSLogs/") for entry in manifest["inputs"])
    assert manifest["totals"]["duplicate"] == 33 and manifest["digests"]
    assert (tmp_path / "remote" / ".s3-cache").is_dir()


def test_search_from_s3_with_a_narrow_window(bucket):
    out = run_cli(["search", "-s", f"s3://{BUCKET}/trail", "--endpoint-url", bucket, "--since", "2026-03-03",
                   "--action", "StopLogging", "-f", "json"]).stdout  # fmt: skip
    [event] = json.loads(out)["events"]
    assert event["origin"].startswith(f"s3://{BUCKET}/trail/AWSLogs/")
    sources = json.loads(run_cli(["sources", "-s", f"s3://{BUCKET}/trail", "--endpoint-url", bucket,
                                  "--since", "2026-03-03", "-f", "json"]).stdout)  # fmt: skip
    assert {c["day"] for c in sources["coverage"]} == {"2026-03-03"}
    assert sources["pruned_by_key_date"] > 0


def test_missing_bucket_exits_1_with_the_fix(bucket):
    result = run_cli(["search", "-s", "s3://no-such-bucket-here/x", "--endpoint-url", bucket], exit_code=1)
    assert "no-such-bucket-here" in result.stderr and "fix:" in result.stderr


def test_s3_events_frame_has_every_column(bucket, tmp_path):
    run_cli(["ingest", "-q", "-s", f"s3://{BUCKET}/trail/", "--endpoint-url", bucket, "-o", tmp_path / "c"])
    assert store.scan(tmp_path / "c", "events").select(pl.len()).collect().item() == 123
