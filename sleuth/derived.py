"""Derived tables of a case store, cached beside it: a second question costs milliseconds.

Detections, credential lineage and the graph's hubs are computed over a whole case; when the sources
are exactly one case store, the result is written to `CASE/derived/<name>/<key>.parquet`. The key
hashes everything the result depends on: the case's manifest (any ingest changes it), the time
window, sleuth's version, every tunable, and the enrichment inputs (intel lists, the city database).
A stale or unreadable file is recomputed; a case that cannot be written to is simply not cached.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import orjson
import polars as pl

from sleuth import __version__, store

DERIVED = "derived"


def single_case(dataset) -> Path | None:
    """The case store when it is the only source (raw files beside it are not cached)."""
    sources = dataset.sources
    if len(sources.cases) == 1 and not sources.files:
        return Path(sources.cases[0])
    return None


def _file_identity(path: str | os.PathLike | None) -> list:
    if not path:
        return []
    try:
        stat = os.stat(path)
    except OSError:
        return [str(path)]
    return [str(path), stat.st_size, stat.st_mtime_ns]


def cache_key(case: Path, dataset, config, extra: Iterable = (), windowed: bool = True) -> str:
    manifest = (case / store.MANIFEST).read_bytes()
    window = dataset.window
    parts = [
        hashlib.sha256(manifest).hexdigest(),
        [str(window.since), str(window.until)] if windowed else [],
        __version__,
        pl.__version__,
        repr(sorted(dataclasses.asdict(config).items(), key=lambda item: item[0])),
        list(extra),
    ]
    return hashlib.sha256(orjson.dumps(parts, default=str)).hexdigest()[:32]


def enrichment_identity(geo=None, intel=None) -> list:
    """What the enrichment inputs are, for cache keys: the city database and the intel list files."""
    city = getattr(geo, "city_db", None)
    files = getattr(intel, "loaded", None) or {}
    return [_file_identity(city), [_file_identity(path) for path in sorted(files)]]


def cached_frames(
    dataset,
    config,
    name: str,
    compute: Callable[[], dict[str, pl.DataFrame]],
    extra: Iterable = (),
    windowed: bool = True,
) -> dict[str, pl.DataFrame]:
    """`compute()` (named frames), read from the case's cache when the key matches, else computed
    and written there. `windowed` False: the frames do not depend on the time window (its key leaves
    the window out, so questions over other windows share them)."""
    case = single_case(dataset)
    if case is None:
        return compute()
    try:
        key = cache_key(case, dataset, config, extra, windowed)
    except OSError:
        return compute()
    folder = case / DERIVED / name
    wanted = {}
    for path in sorted(folder.glob(f"{key}.*.parquet")) if folder.is_dir() else []:
        try:
            wanted[path.name.split(".")[1]] = pl.read_parquet(path)
        except (OSError, pl.exceptions.PolarsError):
            wanted = {}
            break
    if wanted:
        return wanted
    frames = compute()
    _write(folder, key, frames)
    return frames


def _write(folder: Path, key: str, frames: dict[str, pl.DataFrame]) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.parquet"):
            if not old.name.startswith(key + "."):
                old.unlink(missing_ok=True)
        for part, frame in frames.items():
            target = folder / f"{key}.{part}.parquet"
            temporary = folder / f".{key}.{part}.{os.getpid()}.tmp"
            frame.write_parquet(temporary)
            os.replace(temporary, target)
    except OSError:
        return  # a read-only case is answered, just not cached


def prepare_case(case: Path, config, geo=None, intel=None) -> None:
    """Compute and cache a case's derived tables now (`sleuth ingest --prepare`), for questions asked
    over the whole case with these tunables and enrichment inputs."""
    from sleuth.correlate.detect import cached_detect
    from sleuth.correlate.graph import hubs_for
    from sleuth.correlate.lineage import links_for
    from sleuth.dataset import open_dataset
    from sleuth.timewindow import TimeWindow

    dataset = open_dataset([str(case)], TimeWindow(), config)
    cached_detect(dataset, config, geo, intel)
    preload_geo(dataset, config, geo)
    links_for(dataset, config)
    hubs_for(dataset, config)


def preload_geo(dataset, config, geo) -> bool:
    """Give the resolver the geo data of every source address of a case, cached beside it: looking up
    a case's few thousand addresses costs about a second that every profile, summary and investigation
    would otherwise pay again. Nothing to do for raw sources or without a resolver."""
    if geo is None or single_case(dataset) is None:
        return False
    import geoip2fast

    from sleuth.enrich.geo import GEOIP2FAST_DATA

    case = single_case(dataset)

    def compute() -> dict[str, pl.DataFrame]:  # every address of the case, whatever the window asked
        events = store.scan(case, "events")
        values = events.select(pl.col("src_ip").drop_nulls().unique().sort()).collect()["src_ip"]
        return {"addresses": geo.lookups(values.to_list())}

    extra = [*enrichment_identity(geo), GEOIP2FAST_DATA, getattr(geoip2fast, "__version__", "")]
    geo.preload(cached_frames(dataset, config, "geo", compute, extra, windowed=False)["addresses"])
    return True

