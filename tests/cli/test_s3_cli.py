"""Commands over s3:// sources: the same answers as from disk, downloading only what the window needs."""

from __future__ import annotations

import gzip
import json
import shutil

import boto3
import polars as pl
import pytest

from sleuth import store
from tests.conftest import FIXTURES, INCIDENT, run_cli
from tests.s3_server import s3_endpoint  # noqa: F401  (a fixture)

BUCKET = "cli-trail"


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    """CloudTrail, VPC flow logs and GuardDuty exports in the AWSLogs layout: two accounts, three
    regions, several days."""
    root = tmp_path_factory.mktemp("logs")
    shutil.copytree(INCIDENT / "AWSLogs", root / "AWSLogs")
    flows = gzip.compress((FIXTURES / "vpcflow" / "default-v2.log").read_bytes())
    for day in ("03", "04"):
        folder = root / f"AWSLogs/123456789012/vpcflowlogs/us-east-1/2026/03/{day}"
        folder.mkdir(parents=True)
        (folder / f"123456789012_vpcflowlogs_us-east-1_fl-0abc_202603{day}T0000Z_1a2b3c4d.log.gz").write_bytes(flows)
    findings = gzip.compress((FIXTURES / "guardduty" / "s3-export.jsonl").read_bytes())
    folder = root / "AWSLogs/210987654321/GuardDuty/eu-west-1/2026/03/04"
    folder.mkdir(parents=True)
    (folder / "8c9f1b2e-export.jsonl.gz").write_bytes(findings)
    return root


@pytest.fixture(scope="module")
def bucket(s3_endpoint, logs):  # noqa: F811
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket=BUCKET)
    for path in logs.rglob("*.gz"):
        client.put_object(Bucket=BUCKET, Key=f"trail/{path.relative_to(logs).as_posix()}", Body=path.read_bytes())
    return s3_endpoint


def frame(case, name):
    names = store.scan(case, name).collect_schema().names()
    columns = [c for c in names if c not in ("origin", "origin_index")]
    return store.scan(case, name).select(columns).collect().sort(columns[:4], nulls_last=True)


def test_ingest_from_s3_equals_ingest_from_disk(bucket, logs, tmp_path):
    run_cli(["ingest", "-q", "-s", f"s3://{BUCKET}/trail/", "--endpoint-url", bucket, "-o", tmp_path / "remote"])
    run_cli(["ingest", "-q", "-s", logs, "-o", tmp_path / "local"])
    for name in ("events", "flows", "flow_status", "findings", "finding_entities"):
        remote, local = frame(tmp_path / "remote", name), frame(tmp_path / "local", name)
        assert len(remote) > 0, name
        assert remote.equals(local), name
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
