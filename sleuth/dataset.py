"""What the -s arguments hold, as lazy canonical frames: case stores scanned, raw files parsed."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from sleuth import schema, store
from sleuth.config import Config
from sleuth.errors import SourceError
from sleuth.ingest import KEY, Progress, load_files
from sleuth.reader import InputReport, file_sha256
from sleuth.sources import Remote, SourceSet, resolve
from sleuth.timewindow import TimeWindow


def _empty_frames() -> dict[str, pl.LazyFrame]:
    return {name: schema.empty(name).lazy() for name in schema.FRAMES}


@dataclass
class Dataset:
    events: pl.LazyFrame
    frames: dict[str, pl.LazyFrame] = field(default_factory=_empty_frames)  # every canonical frame
    inputs: list[InputReport] = field(default_factory=list)
    sources: SourceSet = field(default_factory=SourceSet)
    window: TimeWindow = field(default_factory=TimeWindow)
    read_now: list[InputReport] = field(default_factory=list)  # raw files parsed by this call

    @property
    def warnings(self) -> list[str]:
        """Problems with the inputs read by this call (a case's are shown by `sleuth sources`)."""
        gone = [f"{name}: listed, then gone before it could be downloaded" for name in self.sources.missing]
        return gone + input_warnings(self.read_now)


def input_warnings(inputs: list[InputReport]) -> list[str]:
    lines: list[str] = []
    for report in inputs:
        if report.error:
            lines.append(f"{report.path}: skipped: {report.error}")
        for note in report.warnings:
            lines.append(f"{report.path}: {note}")
        lost = {reason: n for reason, n in report.skipped.items() if reason != "outside the time window"}
        if lost:
            detail = ", ".join(f"{n} {reason}" for reason, n in sorted(lost.items()))
            lines.append(f"{report.path}: records skipped: {detail}")
    return lines


def open_dataset(
    arguments: list[str],
    window: TimeWindow,
    config: Config,
    progress: Progress | None = None,
    remote: Remote | None = None,
) -> Dataset:
    if not arguments:
        raise SourceError("no sources given", "pass -s FILE|FOLDER|CASE|s3://..., or set SLEUTH_SOURCES")
    sources = resolve(arguments, window, config, remote, progress)
    parts: dict[str, list[pl.LazyFrame]] = {name: [] for name in schema.FRAMES}
    inputs: list[InputReport] = []
    reports: list[InputReport] = []
    for case in sources.cases:
        manifest = store.load_manifest(case)
        rehash = not store.hashes_current(manifest)
        for name in schema.FRAMES:
            parts[name].append(store.scan(case, name, window, rehash))
        inputs.extend(InputReport.from_json(entry) for entry in manifest["inputs"])
        sources.digests = sorted(set(sources.digests) | set(manifest.get("digests", [])))
    if sources.cases and sources.files:
        _drop_files_in_cases(sources, inputs)
    if sources.files:
        frames, reports = load_files(sources, window, config, progress)
        for name, df in frames.items():
            parts[name].append(df.lazy())
        inputs.extend(reports)
    lazies = {name: _combine(name, frames) for name, frames in parts.items()}
    return Dataset(lazies["events"], lazies, inputs, sources, window, reports)


def _drop_files_in_cases(sources: SourceSet, case_inputs: list[InputReport]) -> None:
    """Raw files whose content a given case already holds are not read again (nor counted twice)."""
    held = {report.sha256 for report in case_inputs if report.sha256}
    kept = []
    for item in sources.files:
        if file_sha256(item.path) in held:
            sources.in_case.append(item.item[1])
        else:
            kept.append(item)
    sources.files = kept


def _combine(name: str, frames: list[pl.LazyFrame]) -> pl.LazyFrame:
    """One lazy frame from several sources; the duplicate rules apply across them."""
    if not frames:
        return schema.empty(name).lazy()
    lazy = frames[0] if len(frames) == 1 else pl.concat(frames)
    if name == "events" and len(frames) > 1:
        return lazy.unique(subset=KEY, keep="first", maintain_order=True)
    if name == "findings":  # an export holds every version of a finding: keep the latest
        return lazy.sort("updated_at", nulls_last=False).unique(subset="finding_id", keep="last", maintain_order=True)
    if name == "finding_entities" and len(frames) > 1:
        return lazy.unique(maintain_order=True)
    return lazy
