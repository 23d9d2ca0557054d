"""What the -s arguments hold, as lazy canonical frames: case stores scanned, raw files parsed."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from sleuth import schema, store
from sleuth.config import Config
from sleuth.errors import SourceError
from sleuth.ingest import KEY, Progress, load_files
from sleuth.reader import InputReport
from sleuth.sources import SourceSet, resolve
from sleuth.timewindow import TimeWindow


@dataclass
class Dataset:
    events: pl.LazyFrame
    inputs: list[InputReport] = field(default_factory=list)
    sources: SourceSet = field(default_factory=SourceSet)
    window: TimeWindow = field(default_factory=TimeWindow)
    read_now: list[InputReport] = field(default_factory=list)  # raw files parsed by this call

    @property
    def warnings(self) -> list[str]:
        """Problems with the inputs read by this call (a case's are shown by `sleuth sources`)."""
        return input_warnings(self.read_now)


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


def open_dataset(arguments: list[str], window: TimeWindow, config: Config, progress: Progress | None = None) -> Dataset:
    if not arguments:
        raise SourceError("no sources given", "pass -s FILE|FOLDER|CASE, or set SLEUTH_SOURCES")
    sources = resolve(arguments, window, config)
    frames: list[pl.LazyFrame] = []
    inputs: list[InputReport] = []
    reports: list[InputReport] = []
    for case in sources.cases:
        frames.append(store.scan(case, "events", window))
        manifest = store.load_manifest(case)
        inputs.extend(InputReport.from_json(entry) for entry in manifest["inputs"])
        sources.digests.extend(manifest.get("digests", []))
    if sources.files:
        events, reports = load_files(sources, window, config, progress)
        frames.append(events.lazy())
        inputs.extend(reports)
    if not frames:
        events_lazy = schema.empty("events").lazy()
    elif len(frames) == 1:
        events_lazy = frames[0]
    else:  # several sources may hold the same records: the duplicate rule applies across them
        events_lazy = pl.concat(frames).unique(subset=KEY, keep="first", maintain_order=True)
    return Dataset(events_lazy, inputs, sources, window, reports)
