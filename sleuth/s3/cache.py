"""The local cache of downloaded objects, keyed by bucket, key and ETag.

A second run over the same objects downloads nothing. Local names come from a hash of the key plus a
sanitised tail, and every local path is checked to stay inside the cache folder (keys are written by
whoever can write to the bucket: handbook §6).
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

import botocore.exceptions

from sleuth.errors import SourceError
from sleuth.report.escape import filename, visible
from sleuth.s3.client import is_missing_object, translate_error
from sleuth.s3.listing import S3Object

_TAIL_CHARS = 80
_CHUNK = 1 << 20

_TEMP_LOCK = threading.Lock()
_TEMP_DIR: Path | None = None


def cache_folder(cache_dir: Path | None) -> Path:
    """`cache_dir`, created if needed, or this process's temporary cache when there is none."""
    folder = Path(cache_dir) if cache_dir is not None else _temporary_cache()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SourceError(f"cannot create the S3 cache folder {folder}: {exc}", "check the case folder") from exc
    return folder


def _temporary_cache() -> Path:
    """One temporary cache folder per process, removed at exit."""
    global _TEMP_DIR
    with _TEMP_LOCK:
        if _TEMP_DIR is None or not _TEMP_DIR.is_dir():
            _TEMP_DIR = Path(tempfile.mkdtemp(prefix="sleuth-s3-"))
            atexit.register(shutil.rmtree, _TEMP_DIR, True)
        return _TEMP_DIR


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


def _key_hash(bucket: str, key: str) -> str:
    return hashlib.sha256(f"{bucket}\x00{key}".encode("utf-8", "surrogatepass")).hexdigest()[:32]


def download(client: Any, bucket: str, prefix: str, item: S3Object, folder: Path) -> tuple[Path, bool] | None:
    """(cached copy, downloaded now?) for `item`, or None when it is gone since the listing.

    Raises SourceError on any other failure; `prefix` (the listed one) goes into its fix.
    """
    try:
        return _download(client, bucket, item, folder)
    except botocore.exceptions.ClientError as exc:
        if is_missing_object(exc):  # expired or deleted after the listing
            return None
        raise translate_error(exc, bucket, prefix, item.key) from exc
    except SourceError:
        raise
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.HTTPClientError) as exc:
        # timeouts and connection errors are OSErrors too: they are S3's, not the cache folder's
        raise translate_error(exc, bucket, prefix, item.key) from exc
    except OSError as exc:
        raise SourceError(
            f"cannot write the S3 cache folder {folder}: {exc}", "free disk space or check the folder"
        ) from exc
    except Exception as exc:
        raise translate_error(exc, bucket, prefix, item.key) from exc


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
