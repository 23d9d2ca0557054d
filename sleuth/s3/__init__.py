"""Reading sources straight from S3 (`-s s3://bucket/prefix`), read-only.

`fetch` lists a prefix for the time window and downloads what may hold it into a cache folder:

- `listing`: the AWSLogs-aware walk, which lists only the days inside the window (never the whole
  bucket for a narrow question) and never lists CloudTrail digests;
- `cache`: local paths keyed by bucket, key and ETag (a second run downloads nothing), and downloads;
- `client`: `s3://` urls, the client, and boto3 failures turned into SourceErrors naming the fix.

sleuth never writes to the source bucket: the client refuses every operation but List/Get/Head.
"""

from __future__ import annotations

import concurrent.futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sleuth.config import Config
from sleuth.errors import SourceError
from sleuth.s3.cache import _temporary_cache as _temporary_cache  # re-exported: tests locate the temporary cache
from sleuth.s3.cache import cache_folder, download, local_path
from sleuth.s3.client import READ_ONLY_OPERATIONS, display_name, make_client, parse_url, translate_error
from sleuth.s3.listing import S3Object, list_objects, list_prefix
from sleuth.timewindow import TimeWindow

__all__ = [
    "READ_ONLY_OPERATIONS",
    "FetchResult",
    "Progress",
    "S3Object",
    "fetch",
    "list_objects",
    "local_path",
    "make_client",
    "parse_url",
    "translate_error",
]


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
    # make_client is looked up here, in the package, so that tests can wrap it to record the calls.
    client = make_client(profile, region, endpoint_url, config.s3_max_parallel)
    listing = list_prefix(client, bucket, prefix, window, config.key_date_slack_days, config.s3_max_parallel)
    if len(listing.objects) > config.max_files:
        raise SourceError(
            f"more than {config.max_files} input files under {url}",
            "narrow the sources or the time window, or raise max_files in sleuth.toml",
        )
    folder = cache_folder(cache_dir)
    result = FetchResult(digests=[display_name(bucket, d) for d in listing.digests], pruned=listing.pruned)
    if progress is not None:
        progress.start(len(listing.objects))
    _download_all(client, bucket, prefix, listing.objects, folder, config.s3_max_parallel, progress, result)
    return result


def _download_all(
    client: Any,
    bucket: str,
    prefix: str,
    objects: list[S3Object],
    folder: Path,
    max_parallel: int,
    progress: Progress | None,
    result: FetchResult,
) -> None:
    """Download `objects` in parallel into `folder`, filling the files, requested_keys and missing of `result`."""
    downloaded: dict[str, str] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, max_parallel)) as pool:
        futures = {pool.submit(download, client, bucket, prefix, item, folder): item for item in objects}
        try:
            for future in concurrent.futures.as_completed(futures):
                key = futures[future].key
                outcome = future.result()
                if outcome is None:
                    result.missing.append(display_name(bucket, key))
                else:
                    path, fetched = outcome
                    downloaded[key] = str(path)
                    if fetched:
                        result.requested_keys.append(key)
                if progress is not None:
                    progress.advance(1, 0)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    result.files = [(downloaded[k], display_name(bucket, k)) for k in sorted(downloaded)]
    result.requested_keys.sort()
    result.missing.sort()
