"""The case store: Parquet partitioned by day plus manifest.json (handbook §4).

    CASE/manifest.json
    CASE/events/day=2023-07-10/part-<batch>.parquet
    CASE/flows/...  CASE/findings/...  CASE/finding_entities/...

A case folder is itself a source: frames are scanned lazily with the days outside the window never
opened, so a second question about the same data costs milliseconds, not a re-parse.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from pathlib import Path

import orjson
import polars as pl

from sleuth import __version__, schema
from sleuth.errors import CaseStoreError
from sleuth.timewindow import TimeWindow

MANIFEST = "manifest.json"
MANIFEST_SCHEMA = "sleuth/manifest/v1"
_DAY_PREFIX = "day="
UNDATED = "undated"


def is_case_store(path: Path) -> bool:
    manifest = path / MANIFEST
    if not manifest.is_file():
        return False
    try:
        head = manifest.read_bytes()[:4096]
    except OSError:
        return False
    return MANIFEST_SCHEMA.encode() in head


def new_manifest() -> dict:
    now = _now()
    return {
        "schema": MANIFEST_SCHEMA,
        "sleuth_version": __version__,
        "created": now,
        "updated": now,
        "inputs": [],
        "digests": [],
        "content_hash": schema.HASH_VERSION,
        "totals": {},
        "time_range": [None, None],
    }


def load_manifest(case: Path) -> dict:
    try:
        data = orjson.loads((case / MANIFEST).read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise CaseStoreError(
            f"{case}: cannot read {MANIFEST}: {exc}", "re-create the case with sleuth ingest -o a new folder"
        ) from exc
    if data.get("schema") != MANIFEST_SCHEMA:
        raise CaseStoreError(f"{case}: {MANIFEST} is not a sleuth manifest", "point -s at a sleuth case folder")
    return data


def save_manifest(case: Path, manifest: dict) -> None:
    manifest["updated"] = _now()
    manifest["sleuth_version"] = __version__
    # "schema" stays the first key: is_case_store() recognises a case by the head of the file.
    ordered = {"schema": MANIFEST_SCHEMA, **{k: v for k, v in manifest.items() if k != "schema"}}
    _atomic_write(case / MANIFEST, orjson.dumps(ordered, option=orjson.OPT_INDENT_2))


def prepare_case(case: Path) -> dict:
    """Open an existing case for extension, or make a new one; refuse a folder that is something else."""
    if is_case_store(case):
        return load_manifest(case)
    # Hidden entries (the .s3-cache that an ingest from S3 fills first) do not make a folder foreign.
    if case.exists() and (not case.is_dir() or any(not p.name.startswith(".") for p in case.iterdir())):
        raise CaseStoreError(
            f"{case} exists and is not a sleuth case", "give -o a new or empty folder, or an existing case"
        )
    case.mkdir(parents=True, exist_ok=True)
    return new_manifest()


def write_partitions(case: Path, frame: str, df: pl.DataFrame, batch_id: str) -> dict[str, str]:
    """Write `df` as one Parquet file per day under CASE/frame/; returns day -> file (relative)."""
    time_column = schema.TIME_COLUMN[frame]
    written: dict[str, str] = {}
    if df.is_empty():
        return written
    days = df.get_column(time_column).dt.date()
    for (day,), part in df.with_columns(days.alias("_day")).partition_by("_day", as_dict=True).items():
        label = day.isoformat() if day is not None else UNDATED
        folder = case / frame / f"{_DAY_PREFIX}{label}"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"part-{batch_id}.parquet"
        tmp = target.with_suffix(".parquet.tmp")
        part.drop("_day").write_parquet(tmp, compression="zstd", compression_level=1)
        os.replace(tmp, target)
        written[label] = str(target.relative_to(case))
    return written


def partition_files(case: Path, frame: str, window: TimeWindow | None = None) -> list[Path]:
    root = case / frame
    if not root.is_dir():
        return []
    files: list[Path] = []
    for folder in sorted(root.iterdir()):
        if not folder.name.startswith(_DAY_PREFIX):
            continue
        label = folder.name[len(_DAY_PREFIX) :]
        if label == UNDATED:  # rows without a time (flow formats without start): only unbounded questions
            if window is None or not window.bounded:
                files.extend(sorted(folder.glob("part-*.parquet")))
            continue
        try:
            day = date.fromisoformat(label)
        except ValueError:
            continue
        if window is None or window.may_hold_day(day):
            files.extend(sorted(folder.glob("part-*.parquet")))
    return files


def delete_origins(case: Path, origins: list[str]) -> None:
    """Remove every row that came from these inputs, in every frame (an input read again replaces them)."""
    for frame in schema.FRAMES:
        for part in partition_files(case, frame):
            table = pl.read_parquet(part)
            if "origin" not in table.columns:
                continue
            kept = table.filter(~pl.col("origin").is_in(origins))
            if len(kept) == len(table):
                continue
            if kept.is_empty():
                part.unlink()
            else:
                tmp = part.with_suffix(".parquet.tmp")
                kept.write_parquet(tmp, compression="zstd", compression_level=1)
                os.replace(tmp, part)


def hashes_current(manifest: dict) -> bool:
    return manifest.get("content_hash") == schema.HASH_VERSION


def rehash_events(case: Path, manifest: dict) -> None:
    """Re-make the content hashes of a case written by another polars version (see schema.content_hash)."""
    for part in partition_files(case, "events"):
        tmp = part.with_suffix(".parquet.tmp")
        pl.read_parquet(part).with_columns(schema.content_hash()).write_parquet(tmp, compression="zstd")
        os.replace(tmp, part)
    manifest["content_hash"] = schema.HASH_VERSION


def scan(case: Path, frame: str, window: TimeWindow | None = None, rehash: bool = False) -> pl.LazyFrame:
    """The frame's rows inside `window`, lazily; days outside it are never opened."""
    files = partition_files(case, frame, window)
    if not files:
        return schema.empty(frame).lazy()
    lazy = pl.scan_parquet(files, schema=schema.FRAMES[frame], hive_partitioning=False)
    if rehash and frame == "events":
        lazy = lazy.with_columns(schema.content_hash())
    if window is not None and window.bounded:
        lazy = lazy.filter(window.expr(schema.TIME_COLUMN[frame]))
    return lazy


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
