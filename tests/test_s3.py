"""Reading sources straight from S3, against moto's real HTTP endpoint (tests/s3_server.py)."""

from __future__ import annotations

import gzip
import os
import re
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import boto3
import botocore.exceptions
import pytest

from sleuth import s3
from sleuth.config import Config
from sleuth.errors import SourceError
from sleuth.sources import key_layout
from sleuth.timewindow import TimeWindow
from tests.conftest import INCIDENT
from tests.s3_server import free_port, s3_endpoint

__all__ = ["s3_endpoint"]  # the fixture, imported for pytest

BUCKET = "sleuth-trail"
HOSTILE = "sleuth-hostile"
ACCOUNT_A = "123456789012"
ACCOUNT_B = "210987654321"
EVERYTHING = TimeWindow()
WINDOW = TimeWindow(datetime(2026, 3, 3, tzinfo=UTC), datetime(2026, 3, 4, tzinfo=UTC))  # + 1 day of slack
CONFIG = Config(s3_max_parallel=4)
HOSTILE_KEYS = [
    "AWSLogs/../../x",
    "../../../../tmp/sleuth-evil",
    "/etc/passwd",
    "a/./b",
    "back\\slash\\..\\..\\sleuth-evil",
    "n" * 900,
    f"AWSLogs/{ACCOUNT_A}/CloudTrail/us-east-1/2026/03/03/../../../../../../../../../tmp/sleuth-evil2",
    ".hidden/..",
]


def _flow_log(account: str, day: date) -> bytes:
    header = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action "
    line = f"2 {account} eni-0a1b2c3d 203.0.113.5 10.0.0.7 44321 22 6 10 840 1772500000 1772500060 ACCEPT OK"
    return gzip.compress(f"{header}log-status\n{line}\n# {day}\n".encode())


def _objects() -> dict[str, bytes]:
    """The bucket: CloudTrail (from fixtures/incident), flow logs, GuardDuty exports, digests, two accounts."""
    objects: dict[str, bytes] = {}
    for path in sorted((INCIDENT / "AWSLogs").rglob("*.json.gz")):
        objects[path.relative_to(INCIDENT).as_posix()] = path.read_bytes()
    trail = (INCIDENT / "AWSLogs" / ACCOUNT_A / "CloudTrail" / "us-east-1" / "2026" / "03" / "02").glob("*.json.gz")
    sample = next(iter(trail)).read_bytes()
    for day in (date(2025, 12, 31), date(2026, 2, 20), date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 5)):
        for region in ("eu-west-1", "us-east-1"):
            folder = f"AWSLogs/{ACCOUNT_B}/CloudTrail/{region}/{day:%Y/%m/%d}"
            objects[f"{folder}/{ACCOUNT_B}_CloudTrail_{region}_{day:%Y%m%d}T0005Z_b{region[:2]}0000000000.json.gz"] = (
                sample
            )
        digest = f"AWSLogs/{ACCOUNT_B}/CloudTrail-Digest/us-east-1/{day:%Y/%m/%d}"
        objects[f"{digest}/{ACCOUNT_B}_CloudTrail-Digest_us-east-1_main_us-east-1_{day:%Y%m%d}T010000Z.json.gz"] = b"{}"
    for account, region in ((ACCOUNT_A, "us-east-1"), (ACCOUNT_B, "eu-west-1")):
        for offset in range(6):
            day = date(2026, 2, 28) + timedelta(days=offset)
            name = f"{account}_vpcflowlogs_{region}_fl-0123456789abcdef0_{day:%Y%m%d}T0000Z_a1b2c3d4.log.gz"
            hour = "07/" if offset % 2 else ""  # flow logs may add an hour folder under the day
            objects[f"AWSLogs/{account}/vpcflowlogs/{region}/{day:%Y/%m/%d}/{hour}{name}"] = _flow_log(account, day)
    for day in (date(2026, 3, 1), date(2026, 3, 3)):
        finding = b'{"schemaVersion":"2.0","accountId":"%s","type":"Recon:EC2/PortProbeUnprotectedPort"}\n' % (
            ACCOUNT_A.encode()
        )
        key = f"guardduty-export/AWSLogs/{ACCOUNT_A}/GuardDuty/us-east-1/{day:%Y/%m/%d}/0f1e2d3c-{day:%d}.jsonl.gz"
        objects[key] = gzip.compress(finding)
    # Outside the AWSLogs layout: cannot be pruned by key, always read.
    objects["exports/guardduty/get-findings-2026-03.json"] = b'{"Findings": []}'
    objects["misc/notes/readme-less.jsonl"] = b"{}\n"
    objects[f"misc/{ACCOUNT_A}_CloudTrail-Digest_us-east-1_main_us-east-1_20260303T010000Z.json.gz"] = b"{}"
    return objects


OBJECTS = _objects()


def _is_digest(key: str) -> bool:
    return "CloudTrail-Digest" in key


def _expected(window: TimeWindow, slack: int = 1) -> set[str]:
    """The oracle: every non-digest key outside the layout, or whose key day may hold the window."""
    keep = set()
    for key in OBJECTS:
        layout = key_layout(key)
        if not _is_digest(key) and (layout is None or window.may_hold_key_day(layout["day"], slack)):
            keep.add(key)
    return keep


@pytest.fixture(scope="module")
def endpoint(s3_endpoint: str) -> str:
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket=BUCKET)
    for key, body in OBJECTS.items():
        client.put_object(Bucket=BUCKET, Key=key, Body=body)
    client.create_bucket(Bucket=HOSTILE)
    for key in HOSTILE_KEYS:
        client.put_object(Bucket=HOSTILE, Key=key, Body=key.encode())
    return s3_endpoint


class Recorder:
    """Every S3 operation sleuth's client sends, with its parameters (a botocore event hook)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []
        self._lock = threading.Lock()

    def __call__(self, params: dict, model, **_) -> None:
        with self._lock:
            self.calls.append((model.name, dict(params)))

    def of(self, operation: str) -> list[dict]:
        return [params for name, params in self.calls if name == operation]

    @property
    def got(self) -> set[str]:
        return {p["Key"] for p in self.of("GetObject")}

    @property
    def list_prefixes(self) -> list[str]:
        return [p.get("Prefix", "") for p in self.of("ListObjectsV2")]


sent_operations: set[str] = set()  # across the module, for the read-only check


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    record = Recorder()
    original = s3.make_client

    def recording_client(*args, **kwargs):
        client = original(*args, **kwargs)
        client.meta.events.register("before-parameter-build.s3.*", record)
        return client

    monkeypatch.setattr(s3, "make_client", recording_client)
    yield record
    sent_operations.update(name for name, _ in record.calls)


class Progress:
    def __init__(self) -> None:
        self.total = None
        self.done = 0

    def start(self, files: int) -> None:
        self.total = files

    def advance(self, files: int, records: int) -> None:
        assert records == 0
        self.done += files


def _fetch(endpoint: str, url: str, window: TimeWindow, cache: Path | None, **kwargs) -> s3.FetchResult:
    return s3.fetch(url, window, kwargs.pop("config", CONFIG), cache, endpoint_url=endpoint, **kwargs)


def _keys(result: s3.FetchResult, bucket: str = BUCKET) -> set[str]:
    return {display.removeprefix(f"s3://{bucket}/") for _, display in result.files}


# ---------------------------------------------------------------------------------------------- urls


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://bucket", ("bucket", "")),
        ("s3://bucket/", ("bucket", "")),
        ("s3://my.bucket-1/AWSLogs/123456789012/", ("my.bucket-1", "AWSLogs/123456789012/")),
        ("s3://bucket/a//b", ("bucket", "a//b")),
    ],
)
def test_parse_url(url: str, expected: tuple[str, str]) -> None:
    assert s3.parse_url(url) == expected


@pytest.mark.parametrize(
    "url", ["s3://", "s3:///prefix", "https://bucket/x", "s3://Bad_Bucket/x", "s3://a/x", "s3://a..b/"]
)
def test_parse_url_rejects_malformed_urls(url: str) -> None:
    with pytest.raises(SourceError) as caught:
        s3.parse_url(url)
    assert "s3://bucket/prefix" in str(caught.value) or "bucket name" in str(caught.value)


# ------------------------------------------------------------------------------------------- fetching


def test_fetch_without_window_downloads_everything_but_digests(endpoint, recorder, tmp_path) -> None:
    progress = Progress()
    result = _fetch(endpoint, f"s3://{BUCKET}", EVERYTHING, tmp_path / "cache", progress=progress)
    assert _keys(result) == _expected(EVERYTHING)
    assert recorder.got == _expected(EVERYTHING)
    assert sorted(result.requested_keys) == sorted(_expected(EVERYTHING))
    for local, display in result.files:
        assert Path(local).read_bytes() == OBJECTS[display.removeprefix(f"s3://{BUCKET}/")]
    assert {d.removeprefix(f"s3://{BUCKET}/") for d in result.digests} == {k for k in OBJECTS if _is_digest(k)}
    assert result.pruned == 0 and result.missing == []
    assert progress.total == progress.done == len(result.files)


def test_narrow_window_lists_and_downloads_only_its_days(endpoint, recorder, tmp_path) -> None:
    result = _fetch(endpoint, f"s3://{BUCKET}/", WINDOW, tmp_path / "cache")
    expected = _expected(WINDOW)
    assert _keys(result) == expected
    assert recorder.got == expected
    assert f"AWSLogs/{ACCOUNT_B}/CloudTrail/eu-west-1/2026/03/02/" in {k.rsplit("/", 1)[0] + "/" for k in expected}
    assert all(key_layout(k) is None or date(2026, 3, 2) <= key_layout(k)["day"] <= date(2026, 3, 5) for k in expected)
    # Listing went prefix by prefix, never over the whole bucket, never into days, months or years
    # outside the window, never into digests.
    listings = recorder.of("ListObjectsV2")
    assert not [p for p in listings if not p.get("Prefix") and "Delimiter" not in p]
    for prefix in recorder.list_prefixes:
        assert "CloudTrail-Digest" not in prefix
        assert "/2025/" not in prefix and "/2026/02/" not in prefix
        day = re.search(r"/(\d{4})/(\d{2})/(\d{2})/", prefix)
        assert day is None or date(2026, 3, 2) <= date(*map(int, day.groups())) <= date(2026, 3, 5), prefix
    assert f"AWSLogs/{ACCOUNT_B}/CloudTrail/us-east-1/2026/03/03/" in recorder.list_prefixes
    assert result.pruned > 0
    assert any(d.endswith("/CloudTrail-Digest/") for d in result.digests)


def test_displays_keep_the_awslogs_layout(endpoint, tmp_path) -> None:
    result = _fetch(endpoint, f"s3://{BUCKET}/AWSLogs/", WINDOW, tmp_path / "cache")
    assert result.files
    for local, display in result.files:
        layout = key_layout(display)
        assert display.startswith(f"s3://{BUCKET}/AWSLogs/") and layout is not None
        assert layout["account"] in (ACCOUNT_A, ACCOUNT_B) and layout["day"] >= date(2026, 3, 2)
        assert Path(local).is_relative_to((tmp_path / "cache").resolve())


@pytest.mark.parametrize(
    "prefix",
    [
        f"AWSLogs/{ACCOUNT_B}/CloudTrail/",
        f"AWSLogs/{ACCOUNT_B}/CloudTrail/eu-west-1/2026/03/",
        f"AWSLogs/{ACCOUNT_B}",  # not ending in "/": the sub-folders are classified from their keys
        "AWSLogs",
    ],
)
def test_prefix_inside_the_layout_is_pruned_too(endpoint, recorder, tmp_path, prefix: str) -> None:
    result = _fetch(endpoint, f"s3://{BUCKET}/{prefix}", WINDOW, tmp_path / "cache")
    assert _keys(result) == {k for k in _expected(WINDOW) if k.startswith(prefix)}
    assert not [p for p in recorder.list_prefixes if "/2025/" in p or "/2026/02/" in p]


def test_digest_prefix_is_never_listed(endpoint, recorder, tmp_path) -> None:
    result = _fetch(endpoint, f"s3://{BUCKET}/AWSLogs/{ACCOUNT_B}/CloudTrail-Digest/", WINDOW, tmp_path / "c")
    assert result.files == [] and result.digests == [f"s3://{BUCKET}/AWSLogs/{ACCOUNT_B}/CloudTrail-Digest/"]
    assert recorder.calls == []


def test_day_outside_the_window_is_pruned_without_a_call(endpoint, recorder, tmp_path) -> None:
    result = _fetch(endpoint, f"s3://{BUCKET}/AWSLogs/{ACCOUNT_B}/CloudTrail/us-east-1/2025/", WINDOW, tmp_path / "c")
    assert result.files == [] and result.pruned == 1 and recorder.calls == []


def test_list_objects_returns_keys_sizes_and_etags(endpoint) -> None:
    client = s3.make_client(endpoint_url=endpoint)
    objects, pruned = s3.list_objects(client, BUCKET, "guardduty-export/", WINDOW, 1)
    assert [o.key for o in objects] == sorted(k for k in _expected(WINDOW) if k.startswith("guardduty-export/"))
    assert all(o.size == len(OBJECTS[o.key]) and re.fullmatch(r"[0-9a-f]{32}", o.etag) for o in objects)
    assert pruned == 1  # the 2026/03/01 day prefix


def test_second_fetch_into_the_same_cache_downloads_nothing(endpoint, recorder, tmp_path) -> None:
    cache = tmp_path / "case" / ".s3-cache"
    first = _fetch(endpoint, f"s3://{BUCKET}/", WINDOW, cache)
    downloads = len(recorder.of("GetObject"))
    second = _fetch(endpoint, f"s3://{BUCKET}/", WINDOW, cache)
    assert downloads == len(first.files) > 0
    assert len(recorder.of("GetObject")) == downloads and second.requested_keys == []
    assert second.files == first.files
    # A changed object (new ETag) is downloaded again, and its stale copy goes.
    folder = f"AWSLogs/{ACCOUNT_B}/CloudTrail/us-east-1/2026/03/03"
    key = f"{folder}/{ACCOUNT_B}_CloudTrail_us-east-1_20260303T0005Z_bus0000000000.json.gz"
    assert key in OBJECTS
    boto3.client("s3", endpoint_url=endpoint).put_object(Bucket=BUCKET, Key=key, Body=b'{"Records": []}')
    try:
        third = _fetch(endpoint, f"s3://{BUCKET}/", WINDOW, cache)
        assert third.requested_keys == [key]
        local = dict((d, p) for p, d in third.files)[f"s3://{BUCKET}/{key}"]
        assert Path(local).read_bytes() == b'{"Records": []}'
        old = dict((d, p) for p, d in first.files)[f"s3://{BUCKET}/{key}"]
        assert old != local and not Path(old).exists()
    finally:
        boto3.client("s3", endpoint_url=endpoint).put_object(Bucket=BUCKET, Key=key, Body=OBJECTS[key])


def test_temporary_cache_when_no_folder_is_given(endpoint) -> None:
    result = _fetch(endpoint, f"s3://{BUCKET}/exports/", EVERYTHING, None)
    (local, _), *_ = result.files
    assert Path(local).is_relative_to(Path(s3._temporary_cache()).resolve())


def test_endpoint_from_the_environment(endpoint, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)  # boto3 reads it itself
    result = s3.fetch(f"s3://{BUCKET}/exports/", EVERYTHING, CONFIG, tmp_path / "cache")
    assert _keys(result) == {"exports/guardduty/get-findings-2026-03.json"}


def test_too_many_files_is_an_error(endpoint, tmp_path) -> None:
    with pytest.raises(SourceError, match="more than 2 input files"):
        _fetch(endpoint, f"s3://{BUCKET}/", WINDOW, tmp_path / "c", config=Config(max_files=2))


# ------------------------------------------------------------------------------------- hostile keys


def test_hostile_keys_stay_inside_the_cache(endpoint, tmp_path) -> None:
    outside = [Path("/tmp/sleuth-evil"), Path("/tmp/sleuth-evil2"), tmp_path / "x", tmp_path / "sleuth-evil"]
    before = {path: path.exists() for path in outside}
    cache = tmp_path / "deep" / "cache"
    for window in (EVERYTHING, WINDOW):
        result = _fetch(endpoint, f"s3://{HOSTILE}", window, cache)
        assert _keys(result, HOSTILE) <= set(HOSTILE_KEYS)
        for local, display in result.files:
            path = Path(local)
            assert path.resolve().is_relative_to(cache.resolve()) and path.parent.parent == cache.resolve()
            assert path.read_bytes() == display.removeprefix(f"s3://{HOSTILE}/").encode()
            assert len(path.name) < 200
    assert _keys(_fetch(endpoint, f"s3://{HOSTILE}", EVERYTHING, cache), HOSTILE) == set(HOSTILE_KEYS)
    assert {path: path.exists() for path in outside} == before
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written and all(p.is_relative_to(cache) for p in written)


@pytest.mark.parametrize(
    "key",
    [*HOSTILE_KEYS, "a\x00b/../../c", "..", ".", "", "////", "\\\\server\\share\\x", "AWSLogs/" + "é" * 400, "\ud800"],
)
def test_local_path_is_always_one_file_inside_the_folder(tmp_path, key: str) -> None:
    path = s3.local_path(tmp_path, "bucket", key, '"abc"')
    assert path.parent.parent == tmp_path.resolve()
    assert "/" not in path.name and "\\" not in path.name and "\x00" not in path.name
    assert not path.name.startswith(".") and len(path.name) < 200
    assert s3.local_path(tmp_path, "bucket", key, "other") != path  # the ETag is part of the name
    assert s3.local_path(tmp_path, "other-bucket", key, '"abc"') != path


def test_symlinked_cache_subfolder_is_refused(tmp_path) -> None:
    key = "AWSLogs/x.json.gz"
    target = s3.local_path(tmp_path / "cache", "bucket", key, "e")
    target.parent.parent.mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", target.parent)
    with pytest.raises(SourceError, match="would leave"):
        s3.local_path(tmp_path / "cache", "bucket", key, "e")


# ------------------------------------------------------------------------------------------- errors


def test_no_such_bucket(endpoint, tmp_path) -> None:
    for window in (EVERYTHING, WINDOW):
        with pytest.raises(SourceError) as caught:
            _fetch(endpoint, "s3://sleuth-no-such-bucket/AWSLogs/", window, tmp_path / "c")
        assert "s3://sleuth-no-such-bucket" in caught.value.message and caught.value.fix == "check the bucket name"


def test_unreachable_endpoint(endpoint, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # no retries against a closed port
    with pytest.raises(SourceError) as caught:
        _fetch(f"http://127.0.0.1:{free_port()}", f"s3://{BUCKET}/AWSLogs/", WINDOW, tmp_path / "c")
    assert f"s3://{BUCKET}/AWSLogs/" in caught.value.message
    assert "check network access to S3" in caught.value.fix and "--endpoint-url" in caught.value.fix


def test_missing_credentials(endpoint, monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(SourceError) as caught:
        _fetch(endpoint, f"s3://{BUCKET}/AWSLogs/", WINDOW, tmp_path / "c")
    assert f"s3://{BUCKET}/AWSLogs/" in caught.value.message
    assert caught.value.fix.startswith("refresh your credentials: aws sso login")


def test_unknown_profile(endpoint, tmp_path) -> None:
    with pytest.raises(SourceError, match="profile 'nobody' does not exist"):
        _fetch(endpoint, f"s3://{BUCKET}/", WINDOW, tmp_path / "c", profile="nobody")


def _client_error(code: str, status: int, operation: str = "ListObjectsV2") -> botocore.exceptions.ClientError:
    response = {
        "Error": {"Code": code, "Message": f"{code} \x1b[31mhappened"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return botocore.exceptions.ClientError(response, operation)


@pytest.mark.parametrize(
    ("error", "fix"),
    [
        (_client_error("AccessDenied", 403), "the credentials need s3:ListBucket"),
        (_client_error("", 403, "HeadObject"), "the credentials need s3:ListBucket"),
        (_client_error("NoSuchBucket", 404), "check the bucket name"),
        (_client_error("ExpiredToken", 400), "refresh your credentials: aws sso login"),
        (_client_error("InvalidAccessKeyId", 403), "refresh your credentials"),
        (_client_error("SignatureDoesNotMatch", 403), "refresh your credentials"),
        (_client_error("PermanentRedirect", 301), "--region"),
        (botocore.exceptions.NoCredentialsError(), "refresh your credentials"),
        (botocore.exceptions.EndpointConnectionError(endpoint_url="https://s3.amazonaws.com"), "check network access"),
        (botocore.exceptions.ConnectTimeoutError(endpoint_url="https://s3.amazonaws.com"), "check network access"),
    ],
)
def test_error_translation(error: Exception, fix: str) -> None:
    translated = s3.translate_error(error, "trail-bucket", "AWSLogs/")
    assert isinstance(translated, SourceError)
    assert "trail-bucket" in translated.message and fix in translated.fix
    assert "\x1b" not in translated.message  # server text is shown escaped
    if "s3:ListBucket" in fix:
        assert "arn:aws:s3:::trail-bucket/AWSLogs/*" in translated.fix and "s3:GetObject" in translated.fix


# ---------------------------------------------------------------------------------------- read-only


def test_client_refuses_writes(endpoint) -> None:
    client = s3.make_client(endpoint_url=endpoint)
    with pytest.raises(SourceError, match="refusing to send S3 PutObject"):
        client.put_object(Bucket=BUCKET, Key="sleuth-was-here", Body=b"x")
    with pytest.raises(SourceError, match="refusing to send S3 DeleteObject"):
        client.delete_object(Bucket=BUCKET, Key="exports/guardduty/get-findings-2026-03.json")
    listed = boto3.client("s3", endpoint_url=endpoint).list_objects_v2(Bucket=BUCKET)
    assert {o["Key"] for o in listed["Contents"]} == set(OBJECTS)


def test_only_read_operations_were_sent(endpoint, recorder, tmp_path) -> None:
    _fetch(endpoint, f"s3://{BUCKET}/", WINDOW, tmp_path / "c")
    _fetch(endpoint, f"s3://{BUCKET}/", EVERYTHING, tmp_path / "c")
    sent_operations.update(name for name, _ in recorder.calls)
    assert sent_operations and sent_operations <= s3.READ_ONLY_OPERATIONS
    assert sent_operations == {"ListObjectsV2", "GetObject"}


def test_a_timeout_while_downloading_is_reported_as_s3s_not_the_cache_folders(tmp_path) -> None:
    from sleuth.s3 import cache

    class TimingOut:
        def get_object(self, **_: object) -> None:
            raise botocore.exceptions.ReadTimeoutError(endpoint_url="http://127.0.0.1:9")

    item = s3.S3Object(key="AWSLogs/x.json.gz", size=10, etag="abc")
    with pytest.raises(SourceError, match="cannot reach S3"):
        cache.download(TimingOut(), BUCKET, "", item, tmp_path)
