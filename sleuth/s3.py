"""Reading sources straight from S3 (`-s s3://bucket/prefix`), read-only.

Listing follows the AWSLogs layout (`[PREFIX/]AWSLogs/[o-ORG/]ACCOUNT/SERVICE/REGION/YYYY/MM/DD/`) one
level at a time with `Delimiter="/"`, and descends only into the years, months and days that can hold
the time window (with the delivery-day slack of handbook §2), so a narrow question about a large trail
bucket lists a handful of day prefixes, never the whole bucket. CloudTrail digest prefixes are never
listed. Anything outside the layout (another export's own layout, Hive-style flow-log prefixes) is
listed plainly. With no time window the prefix is listed plainly in one paginated pass.

Objects are downloaded with bounded parallelism into a cache folder keyed by bucket, key and ETag:
a second run over the same objects downloads nothing. Local names come from a hash of the key plus a
sanitised tail, and every local path is checked to stay inside the cache folder (keys are written by
whoever can write to the bucket: handbook §6).

sleuth never writes to the source bucket: the client refuses every operation but List/Get/Head.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import enum
import hashlib
import os
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Protocol

import boto3
import botocore.config
import botocore.exceptions

from sleuth.config import Config
from sleuth.errors import SourceError
from sleuth.report.escape import filename, visible
from sleuth.sources import key_layout
from sleuth.timewindow import TimeWindow

# Only these operations may ever be sent: sleuth reads, it never writes (enforced by a client hook).
READ_ONLY_OPERATIONS = frozenset({"ListObjectsV2", "GetObject", "HeadObject", "HeadBucket", "GetBucketLocation"})

_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_DIGEST_SERVICE = "CloudTrail-Digest"
_DIGEST_NAME = re.compile(r"_CloudTrail-Digest_")
_ORG_ID = re.compile(r"^o-[a-z0-9]+$")
_ACCOUNT_ID = re.compile(r"^\d{12}$")
_SERVICE = re.compile(r"^[A-Za-z0-9-]+$")
_REGION = re.compile(r"^[a-z0-9-]+$")
_YEAR = re.compile(r"^\d{4}$")
_TWO_DIGITS = re.compile(r"^\d{2}$")
_AWSLOGS_FOLDER = "AWSLogs"
_AWSLOGS_IN_KEY = re.compile(r"(?:^|/)AWSLogs/")
# Above AWSLogs/ (a trail's own key prefix), look this many folder levels down for it; a level with
# more sub-folders than _SEARCH_FANOUT and no AWSLogs/ among them is not a trail prefix: list it plainly.
_SEARCH_DEPTH = 3
_SEARCH_FANOUT = 50
_TAIL_CHARS = 80
_CHUNK = 1 << 20


@dataclass(frozen=True)
class S3Object:
    key: str
    size: int
    etag: str  # without the surrounding quotes


@dataclass
class FetchResult:
    files: list[tuple[str, str]] = field(default_factory=list)  # (local path, display "s3://bucket/key")
    digests: list[str] = field(default_factory=list)  # s3:// digest prefixes and digest objects, never read
    pruned: int = 0  # date prefixes (years, months, days) and objects skipped as outside the window
    requested_keys: list[str] = field(default_factory=list)  # keys downloaded by this call (cache misses)
    missing: list[str] = field(default_factory=list)  # listed, then gone before the download (s3:// urls)


class Progress(Protocol):
    def start(self, files: int) -> None: ...

    def advance(self, files: int, records: int) -> None: ...


# --------------------------------------------------------------------------------------------- urls


def parse_url(url: str) -> tuple[str, str]:
    """`s3://bucket/prefix` -> (bucket, prefix). The prefix may be empty; it is never normalised."""
    if not url.startswith("s3://"):
        raise SourceError(f"{visible(url)}: not an S3 url", "write it as s3://bucket/prefix")
    rest = url[len("s3://") :]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise SourceError(f"{visible(url)}: the bucket name is missing", "write it as s3://bucket/prefix")
    if not _BUCKET_NAME.match(bucket) or ".." in bucket:
        raise SourceError(
            f"{visible(url)}: {visible(bucket)!r} is not a valid S3 bucket name",
            "bucket names are 3-63 lowercase letters, digits, dots and hyphens: check the url",
        )
    if "\x00" in prefix:
        raise SourceError(f"{visible(url)}: the prefix contains a NUL character", "check the url")
    return bucket, prefix


def _display(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


# ------------------------------------------------------------------------------------------ session


def make_client(
    profile: str | None = None,
    region: str | None = None,
    endpoint_url: str | None = None,
    max_parallel: int = 8,
) -> Any:
    """An S3 client from the standard credential chain, refusing every operation that is not a read.

    Without `endpoint_url`, boto3 itself honours AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL (S3-compatible
    stores); AWS_MAX_ATTEMPTS still applies on top of the standard retry mode.
    """
    try:
        session = boto3.session.Session(profile_name=profile, region_name=region)
    except botocore.exceptions.ProfileNotFound as exc:
        raise SourceError(
            f"the AWS profile {visible(profile or '')!r} does not exist",
            "check --profile against ~/.aws/config (aws configure list-profiles)",
        ) from exc
    config = botocore.config.Config(
        retries={"mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
        max_pool_connections=max(10, max_parallel + 2),
    )
    try:
        client = session.client("s3", endpoint_url=endpoint_url or None, config=config)
    except ValueError as exc:  # a malformed endpoint url
        raise SourceError(
            f"cannot use the S3 endpoint {visible(str(endpoint_url))}: {exc}", "check --endpoint-url"
        ) from exc
    client.meta.events.register("before-call.s3.*", _refuse_writes)
    return client


def _refuse_writes(model: Any, **_: Any) -> None:
    if model.name not in READ_ONLY_OPERATIONS:
        raise SourceError(
            f"refusing to send S3 {model.name}: sleuth only reads its sources",
            "this is a bug in sleuth: please report it",
        )


# ------------------------------------------------------------------------------------------- errors

_CREDENTIAL_CODES = {
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidAccessKeyId",
    "InvalidToken",
    "SignatureDoesNotMatch",
    "TokenRefreshRequired",
    "RequestExpired",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
}
_DENIED_CODES = {"AccessDenied", "AllAccessDisabled", "AccountProblem", "Forbidden", "403"}
_REFRESH = "refresh your credentials: aws sso login, or pick others with --profile / AWS_PROFILE"


def translate_error(exc: BaseException, bucket: str, prefix: str = "", key: str | None = None) -> SourceError:
    """A SourceError naming the bucket/prefix and the fix, for any boto3/botocore failure."""
    where = _display(bucket, key if key is not None else prefix)
    if isinstance(exc, SourceError):
        return exc
    if isinstance(
        exc,
        botocore.exceptions.NoCredentialsError
        | botocore.exceptions.PartialCredentialsError
        | botocore.exceptions.CredentialRetrievalError
        | botocore.exceptions.TokenRetrievalError
        | botocore.exceptions.SSOError,
    ):
        return SourceError(f"{where}: no usable AWS credentials ({visible(str(exc))})", _REFRESH)
    if isinstance(exc, botocore.exceptions.ProfileNotFound):
        return SourceError(f"{where}: {visible(str(exc))}", "check --profile against ~/.aws/config")
    if isinstance(
        exc, botocore.exceptions.ConnectionError | botocore.exceptions.HTTPClientError
    ):  # refused, DNS, timeouts, TLS
        return SourceError(
            f"{where}: cannot reach S3 ({visible(str(exc))})",
            "check network access to S3 (proxy, VPC endpoint) or --endpoint-url / AWS_ENDPOINT_URL_S3",
        )
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {}) or {}
        code = str(error.get("Code") or "")
        status = (exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
        message = visible(str(error.get("Message") or code or exc))
        if code == "NoSuchBucket":
            return SourceError(f"s3://{bucket}: no such bucket", "check the bucket name")
        if code in _CREDENTIAL_CODES:
            return SourceError(f"{where}: the AWS credentials were refused ({code}: {message})", _REFRESH)
        if code in _DENIED_CODES or status == 403:
            return SourceError(
                f"{where}: access denied ({code or status}: {message})",
                f"the credentials need s3:ListBucket on arn:aws:s3:::{bucket} and s3:GetObject on "
                f"arn:aws:s3:::{bucket}/{prefix}* (and kms:Decrypt for SSE-KMS objects)",
            )
        if code in {"PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException"} or (
            status == 301
        ):
            return SourceError(f"{where}: the bucket is in another region ({message})", "pass --region REGION")
        if code in {"NoSuchKey", "404"}:
            return SourceError(f"{where}: no such object", "the object was deleted while sleuth read it: re-run")
        return SourceError(f"{where}: S3 refused the request ({code or status}: {message})", "re-run; check the url")
    if isinstance(exc, botocore.exceptions.BotoCoreError):
        return SourceError(f"{where}: {visible(str(exc))}", "re-run; check the url, credentials and --endpoint-url")
    return SourceError(f"{where}: {visible(repr(exc))}", "re-run; if it persists, report it")


# ------------------------------------------------------------------------------------------ listing


class _Level(enum.Enum):
    """What the sub-folders of a prefix are, in the walk down the AWSLogs layout."""

    SEARCH = "search"  # above AWSLogs/: look for it
    AWSLOGS = "awslogs"  # children: o-ORG or ACCOUNT
    ORG = "org"  # children: ACCOUNT
    ACCOUNT = "account"  # children: SERVICE
    SERVICE = "service"  # children: REGION
    REGION = "region"  # children: YYYY
    YEAR = "year"  # children: MM
    MONTH = "month"  # children: DD (each listed plainly: flow logs may add HH/)
    PLAIN = "plain"  # everything below, one paginated listing without a delimiter
    PARTIAL = "partial"  # a prefix not ending in "/": objects here, sub-folders classified from their own key


class _Skip(enum.Enum):
    DIGEST = "digest"  # never listed
    PRUNED = "pruned"  # outside the window: never listed


@dataclass
class _Listing:
    objects: list[S3Object] = field(default_factory=list)
    digests: list[str] = field(default_factory=list)  # keys and prefixes
    pruned: int = 0


@dataclass(frozen=True)
class _Task:
    prefix: str
    level: _Level
    depth: int = 0
    context: tuple = ()  # (year,) or (year, month) for the date levels


def _span_may_hold(window: TimeWindow, first: date, last: date, slack_days: int) -> bool:
    """Could any key day in [first, last] hold records inside the window? (may_hold_key_day on a span)"""
    slack = timedelta(days=slack_days)
    if window.since and last < window.since.date() - slack:
        return False
    return not (window.until and first > window.until.date() + slack)


def _child(task: _Task, name: str, window: TimeWindow, slack_days: int, fanout: int) -> _Task | _Skip:
    """What the sub-folder `name` of `task` is: a task to run, _Skip.DIGEST or _Skip.PRUNED."""
    prefix = f"{task.prefix}{name}/"
    level = task.level
    if level == _Level.SEARCH:
        if name == _AWSLOGS_FOLDER:
            return _Task(prefix, _Level.AWSLOGS)
        if task.depth < _SEARCH_DEPTH and fanout <= _SEARCH_FANOUT:
            return _Task(prefix, _Level.SEARCH, task.depth + 1)
        return _Task(prefix, _Level.PLAIN)
    if level == _Level.AWSLOGS:
        if _ORG_ID.match(name):
            return _Task(prefix, _Level.ORG)
        return _Task(prefix, _Level.ACCOUNT) if _ACCOUNT_ID.match(name) else _Task(prefix, _Level.PLAIN)
    if level == _Level.ORG:
        return _Task(prefix, _Level.ACCOUNT) if _ACCOUNT_ID.match(name) else _Task(prefix, _Level.PLAIN)
    if level == _Level.ACCOUNT:
        if name == _DIGEST_SERVICE:
            return _Skip.DIGEST
        return _Task(prefix, _Level.SERVICE) if _SERVICE.match(name) else _Task(prefix, _Level.PLAIN)
    if level == _Level.SERVICE:
        return _Task(prefix, _Level.REGION) if _REGION.match(name) else _Task(prefix, _Level.PLAIN)
    if level == _Level.REGION:
        if not _YEAR.match(name) or int(name) == 0:
            return _Task(prefix, _Level.PLAIN)
        year = int(name)
        if not _span_may_hold(window, date(year, 1, 1), date(year, 12, 31), slack_days):
            return _Skip.PRUNED
        return _Task(prefix, _Level.YEAR, context=(year,))
    if level == _Level.YEAR:
        if not _TWO_DIGITS.match(name) or not 1 <= int(name) <= 12:
            return _Task(prefix, _Level.PLAIN)
        (year,) = task.context
        month = int(name)
        first = date(year, month, 1)
        last = (date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)) - timedelta(days=1)
        if not _span_may_hold(window, first, last, slack_days):
            return _Skip.PRUNED
        return _Task(prefix, _Level.MONTH, context=(year, month))
    if level == _Level.MONTH:
        year, month = task.context
        try:
            day = date(year, month, int(name)) if _TWO_DIGITS.match(name) else None
        except ValueError:
            day = None
        if day is not None and not window.may_hold_key_day(day, slack_days):
            return _Skip.PRUNED
        return _Task(prefix, _Level.PLAIN)
    raise AssertionError(f"no sub-folders are classified at level {level}")


def _start(prefix: str, window: TimeWindow, slack_days: int) -> _Task | _Skip:
    """The task for a folder prefix (empty or ending in "/"), classified from the AWSLogs part of its key."""
    if not window.bounded:
        return _Task(prefix, _Level.PLAIN)
    ends = [m.end() for m in _AWSLOGS_IN_KEY.finditer(prefix)]
    if not ends:
        return _Task(prefix, _Level.SEARCH)
    # Replay the walk over the folders after the last AWSLogs/ so that a prefix deep in the layout is
    # treated exactly as the walk would have treated it.
    start = ends[-1]
    task: _Task | _Skip = _Task(prefix[:start], _Level.AWSLOGS)
    for name in prefix[start:].split("/")[:-1]:
        assert isinstance(task, _Task)
        if task.level == _Level.PLAIN:
            return _Task(prefix, _Level.PLAIN)
        task = _child(task, name, window, slack_days, fanout=1)
        if not isinstance(task, _Task):
            return task
    return task


def _pages(client: Any, bucket: str, prefix: str, delimiter: bool) -> Iterator[dict]:
    arguments: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    if delimiter:
        arguments["Delimiter"] = "/"
    yield from client.get_paginator("list_objects_v2").paginate(**arguments)


def _visit(client: Any, bucket: str, task: _Task, window: TimeWindow, slack_days: int) -> tuple[_Listing, list[_Task]]:
    listing = _Listing()
    children: list[_Task] = []
    plain = task.level == _Level.PLAIN
    folders: list[str] = []
    for page in _pages(client, bucket, task.prefix, delimiter=not plain):
        for item in page.get("Contents", []) or []:
            _add_object(listing, item, window, slack_days)
        folders.extend(p["Prefix"] for p in page.get("CommonPrefixes", []) or [] if p.get("Prefix"))
    if plain:
        return listing, children
    for folder in folders:
        if not folder.startswith(task.prefix) or not folder.endswith("/"):
            continue  # a server answering for another prefix: ignore it
        if task.level == _Level.PARTIAL:
            child = _start(folder, window, slack_days)
        else:
            child = _child(task, folder[len(task.prefix) : -1], window, slack_days, fanout=len(folders))
        if child == _Skip.DIGEST:
            listing.digests.append(folder)
        elif child == _Skip.PRUNED:
            listing.pruned += 1
        else:
            assert isinstance(child, _Task)
            children.append(child)
    return listing, children


def _add_object(listing: _Listing, item: dict, window: TimeWindow, slack_days: int) -> None:
    key = item.get("Key")
    if not key or key.endswith("/"):
        return  # folder markers written by consoles
    layout = key_layout(key)
    if _DIGEST_NAME.search(key.rsplit("/", 1)[-1]) or (layout and layout["service"] == _DIGEST_SERVICE):
        listing.digests.append(key)
        return
    if layout is not None and not window.may_hold_key_day(layout["day"], slack_days):
        listing.pruned += 1
        return
    etag = str(item.get("ETag") or "").strip('"')
    listing.objects.append(S3Object(key, int(item.get("Size") or 0), etag))


def _list(client: Any, bucket: str, prefix: str, window: TimeWindow, slack_days: int, max_workers: int = 8) -> _Listing:
    if prefix and not prefix.endswith("/") and window.bounded:
        root: _Task | _Skip = _Task(prefix, _Level.PARTIAL)
    else:
        root = _start(prefix, window, slack_days)
    total = _Listing()
    if root == _Skip.DIGEST:
        total.digests.append(prefix)
        return total
    if root == _Skip.PRUNED:
        total.pruned += 1
        return total
    assert isinstance(root, _Task)
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, max_workers)) as pool:
        pending = {pool.submit(_visit, client, bucket, root, window, slack_days)}
        try:
            while pending:
                done, pending = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
                for future in done:
                    listing, children = future.result()
                    total.objects.extend(listing.objects)
                    total.digests.extend(listing.digests)
                    total.pruned += listing.pruned
                    pending |= {pool.submit(_visit, client, bucket, c, window, slack_days) for c in children}
        except BaseException:
            for future in pending:
                future.cancel()
            raise
    unique = {o.key: o for o in total.objects}
    total.objects = [unique[k] for k in sorted(unique)]
    total.digests = sorted(set(total.digests))
    return total


def list_objects(
    client: Any, bucket: str, prefix: str, window: TimeWindow, slack_days: int, *, max_workers: int = 8
) -> tuple[list[S3Object], int]:
    """The objects under s3://bucket/prefix that may hold records inside `window`, sorted by key.

    Returns (objects, pruned): `pruned` counts the date prefixes and objects skipped as outside the
    window. Digest files are left out. Raises SourceError on any S3 failure.
    """
    try:
        listing = _list(client, bucket, prefix, window, slack_days, max_workers)
    except Exception as exc:
        raise translate_error(exc, bucket, prefix) from exc
    return listing.objects, listing.pruned


# ------------------------------------------------------------------------------------------- cache

_TEMP_LOCK = threading.Lock()
_TEMP_DIR: Path | None = None


def _temporary_cache() -> Path:
    """One temporary cache folder per process, removed at exit."""
    global _TEMP_DIR
    with _TEMP_LOCK:
        if _TEMP_DIR is None or not _TEMP_DIR.is_dir():
            _TEMP_DIR = Path(tempfile.mkdtemp(prefix="sleuth-s3-"))
            atexit.register(shutil.rmtree, _TEMP_DIR, True)
        return _TEMP_DIR


def _key_hash(bucket: str, key: str) -> str:
    return hashlib.sha256(f"{bucket}\x00{key}".encode("utf-8", "surrogatepass")).hexdigest()[:32]


def local_path(folder: Path, bucket: str, key: str, etag: str) -> Path:
    """Where the object version (bucket, key, etag) is cached: always a file inside `folder`.

    `<folder>/<h[:2]>/<h>-<etag hash>-<sanitised last name of the key>`, where h hashes bucket and key:
    no part of the key can add a separator, a dot-dot or an absolute path.
    """
    digest = _key_hash(bucket, key)
    tag = hashlib.sha256(etag.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    tail = filename(key.replace("\\", "/").rsplit("/", 1)[-1], default="object")[-_TAIL_CHARS:].lstrip("._-")
    name = f"{digest}-{tag}-{tail or 'object'}"
    base = folder.resolve()
    path = (base / digest[:2] / name).resolve()
    if not path.is_relative_to(base) or path.parent.parent != base:
        raise SourceError(
            f"s3://{bucket}/{visible(key)}: the local cache path would leave {base}",
            f"something inside {base} links elsewhere: remove the cache folder and re-run",
        )
    return path


def _download(client: Any, bucket: str, item: S3Object, folder: Path) -> tuple[Path, bool]:
    """The cached copy of `item`, downloading it unless the same ETag is already there."""
    path = local_path(folder, bucket, item.key, item.etag)
    if path.is_file() and path.stat().st_size == item.size:
        return path, False
    response = client.get_object(Bucket=bucket, Key=item.key)
    etag = str(response.get("ETag") or item.etag).strip('"')
    if etag != item.etag:  # replaced since the listing: cache what was read under its own ETag
        path = local_path(folder, bucket, item.key, etag)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name[:40]}.{uuid.uuid4().hex}.part")
    body = response["Body"]
    try:
        with open(partial, "xb") as out:
            for chunk in body.iter_chunks(_CHUNK):
                out.write(chunk)
        os.replace(partial, path)
    finally:
        body.close()
        partial.unlink(missing_ok=True)
    # Older versions of the same key are stale: drop them.
    for stale in path.parent.glob(f"{path.name[:32]}-*"):
        if stale != path:
            stale.unlink(missing_ok=True)
    return path, True


# ------------------------------------------------------------------------------------------- fetch


def fetch(
    url: str,
    window: TimeWindow,
    config: Config,
    cache_dir: Path | None,
    progress: Progress | None = None,
    *,
    profile: str | None = None,
    region: str | None = None,
    endpoint_url: str | None = None,
) -> FetchResult:
    """List s3://bucket/prefix for `window` and download what may hold it into the cache folder.

    `files` pairs each local copy with its display name `s3://bucket/key` (the input's path in
    reports and the case manifest; `sources.key_layout` reads the AWSLogs part from it). Raises
    SourceError naming the bucket/prefix and the fix on any failure.
    """
    bucket, prefix = parse_url(url)
    client = make_client(profile, region, endpoint_url, config.s3_max_parallel)
    try:
        listing = _list(client, bucket, prefix, window, config.key_date_slack_days, config.s3_max_parallel)
    except Exception as exc:
        raise translate_error(exc, bucket, prefix) from exc
    if len(listing.objects) > config.max_files:
        raise SourceError(
            f"more than {config.max_files} input files under {url}",
            "narrow the sources or the time window, or raise max_files in sleuth.toml",
        )
    folder = Path(cache_dir) if cache_dir is not None else _temporary_cache()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SourceError(f"cannot create the S3 cache folder {folder}: {exc}", "check the case folder") from exc
    result = FetchResult(
        digests=[_display(bucket, d) for d in listing.digests],
        pruned=listing.pruned,
    )
    if progress is not None:
        progress.start(len(listing.objects))
    downloaded: dict[str, str] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, config.s3_max_parallel)) as pool:
        futures = {pool.submit(_download, client, bucket, item, folder): item for item in listing.objects}
        try:
            for future in concurrent.futures.as_completed(futures):
                item = futures[future]
                try:
                    path, fetched = future.result()
                except botocore.exceptions.ClientError as exc:
                    code = str((exc.response.get("Error") or {}).get("Code") or "")
                    if code in {"NoSuchKey", "404"}:  # expired or deleted after the listing
                        result.missing.append(_display(bucket, item.key))
                        if progress is not None:
                            progress.advance(1, 0)
                        continue
                    raise translate_error(exc, bucket, prefix, item.key) from exc
                except SourceError:
                    raise
                except OSError as exc:
                    raise SourceError(
                        f"cannot write the S3 cache folder {folder}: {exc}", "free disk space or check the folder"
                    ) from exc
                except Exception as exc:
                    raise translate_error(exc, bucket, prefix, item.key) from exc
                downloaded[item.key] = str(path)
                if fetched:
                    result.requested_keys.append(item.key)
                if progress is not None:
                    progress.advance(1, 0)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    result.files = [(downloaded[k], _display(bucket, k)) for k in sorted(downloaded)]
    result.requested_keys.sort()
    result.missing.sort()
    return result
