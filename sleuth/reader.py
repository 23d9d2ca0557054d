"""One input file to canonical frames: read, decompress (capped), decode, sniff, parse.

Nothing here raises for bad content: a broken input becomes an `InputReport` with a reason, so the
run goes on and the manifest records what happened (handbook §2, "accounting, not silence").
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import polars as pl
from isal import isal_zlib

from sleuth import parsers, schema
from sleuth.config import Config
from sleuth.parsers.base import ParseResult

GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
_SNIFF_BYTES = 64 * 1024
_CHUNK = 8 << 20


@dataclass
class InputReport:
    """What happened to one input: its identity, format and the fate of every record."""

    path: str
    size: int = 0
    sha256: str = ""
    format: str | None = None
    read: int = 0
    kept: int = 0
    duplicate: int = 0
    skipped: Counter = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)
    ignored: str | None = None  # a known non-data input (digest file), counted, not warned about
    error: str | None = None  # the reason the whole input was skipped
    first: str | None = None
    last: str | None = None
    window: list[str | None] | None = None  # the --since/--until it was ingested with (None: all of it)

    def to_json(self) -> dict:
        return {
            "path": self.path,
            "size": self.size,
            "sha256": self.sha256,
            "format": self.format,
            "records": {
                "read": self.read,
                "kept": self.kept,
                "duplicate": self.duplicate,
                "skipped": dict(sorted(self.skipped.items())),
            },
            "time_range": [self.first, self.last],
            "window": self.window,
            "ignored": self.ignored,
            "error": self.error,
            "warnings": self.warnings,
        }

    @classmethod
    def from_json(cls, data: dict) -> InputReport:
        records = data.get("records", {})
        first, last = (data.get("time_range") or [None, None])[:2]
        return cls(
            path=data["path"],
            size=data.get("size", 0),
            sha256=data.get("sha256", ""),
            format=data.get("format"),
            read=records.get("read", 0),
            kept=records.get("kept", 0),
            duplicate=records.get("duplicate", 0),
            skipped=Counter(records.get("skipped", {})),
            warnings=list(data.get("warnings", [])),
            ignored=data.get("ignored"),
            error=data.get("error"),
            first=first,
            last=last,
            window=data.get("window"),
        )


class InputTooLarge(Exception):
    pass


class TruncatedGzip(Exception):
    def __init__(self, partial: bytes) -> None:
        super().__init__("truncated gzip")
        self.partial = partial


def gunzip_capped(data: bytes, limit: int) -> bytes:
    """Decompress every gzip member of `data`; raise past `limit` bytes so a bomb cannot fill memory."""
    out: list[bytes] = []
    total = 0
    remaining = data
    while remaining:
        inflater = isal_zlib.decompressobj(wbits=31)
        pending = remaining
        while pending:
            chunk = inflater.decompress(pending, max(1, min(_CHUNK, limit - total + 1)))
            total += len(chunk)
            out.append(chunk)
            if total > limit:
                raise InputTooLarge
            pending = inflater.unconsumed_tail
            if inflater.eof:
                break
            if not chunk and not pending:
                break
        if not inflater.eof:
            out.append(inflater.flush())
            raise TruncatedGzip(b"".join(out))
        remaining = inflater.unused_data.lstrip(b"\x00")  # some writers pad members with NULs
        if remaining and not remaining.startswith(GZIP_MAGIC):
            break  # trailing garbage after the last member
    return b"".join(out)


def decode_text(data: bytes) -> tuple[bytes, str | None]:
    """UTF-8 content (BOM removed, UTF-16 converted); invalid bytes replaced, with a warning."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", "replace").encode(), None
    if data.isascii():  # the common case, checked without decoding
        return data, None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        note = f"not valid UTF-8 (first bad byte at offset {exc.start}); invalid bytes shown as U+FFFD"
        return data.decode("utf-8", "replace").encode(), note
    return data, None


def file_sha256(path: str | Path) -> str | None:
    """The identity of an input's content (None when it cannot be read)."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def parse_file(path: str | Path, config: Config) -> tuple[InputReport, dict[str, pl.DataFrame]]:
    """Parse one input file: its report and its canonical frames."""
    frames, (report,) = parse_inputs([(str(path), str(path))], config)
    return report, frames


def parse_inputs(items: list[tuple[str, str]], config: Config) -> tuple[dict[str, pl.DataFrame], list[InputReport]]:
    """Parse a batch of (local path, name in reports) inputs; those of one format are parsed together."""
    reports: list[InputReport] = []
    by_format: dict[str, list[tuple[bytes, str, InputReport]]] = {}
    for local, name in items:
        report, data, module = load_input(local, config, name)
        reports.append(report)
        if module is not None:
            by_format.setdefault(module.NAME, []).append((data, name, report))
    frames: dict[str, list[pl.DataFrame]] = {}
    for name, items in by_format.items():
        parsed, results = parsers.REGISTRY[name].parse_many([(data, path) for data, path, _ in items], config)
        for (_, _, report), result in zip(items, results, strict=True):
            _account(report, result)
        for frame, df in parsed.items():
            frames.setdefault(frame, []).append(df)
    merged = {frame: pl.concat(dfs) if len(dfs) > 1 else dfs[0] for frame, dfs in frames.items()}
    _time_ranges(reports, merged)
    return merged, reports


def load_input(path: str, config: Config, name: str | None = None) -> tuple[InputReport, bytes, ModuleType | None]:
    """Read, hash, decompress (capped), decode and sniff one file; the parser is None when it is skipped."""
    report = InputReport(path=name or path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        report.error = f"cannot read: {exc.strerror or exc}"
        return report, b"", None
    report.size = len(raw)
    report.sha256 = hashlib.sha256(raw).hexdigest()
    data, error = _decompress(raw, config, report)
    if not error and not data.strip():
        error = "empty file"
    if error:
        report.error = error
        return report, b"", None
    if not data.startswith(PARQUET_MAGIC):  # binary Parquet goes to its parser as it is
        data, note = decode_text(data)
        if note:
            report.warnings.append(note)
    # Parquet keeps its column names at the end of the file: its sniffer needs all of it.
    module = parsers.detect(data if data.startswith(PARQUET_MAGIC) else data[:_SNIFF_BYTES])
    if module is None:
        report.error = f"not a recognised log format (expected {parsers.describe()})"
        return report, b"", None
    report.format = module.NAME
    return report, data, module


def _account(report: InputReport, result: ParseResult) -> None:
    report.read, report.kept, report.skipped = result.read, result.kept, result.skipped
    report.ignored, report.error = result.ignored, result.error
    report.warnings.extend(result.warnings)
    if result.read == 0 and not (result.ignored or result.error or report.warnings):
        report.warnings.append("no records")


def _decompress(raw: bytes, config: Config, report: InputReport) -> tuple[bytes, str | None]:
    if not raw.startswith(GZIP_MAGIC):
        if len(raw) > config.max_decompressed_bytes:
            return b"", f"larger than max_decompressed_bytes ({config.max_decompressed_bytes} bytes)"
        return raw, None
    try:
        return gunzip_capped(raw, config.max_decompressed_bytes), None
    except InputTooLarge:
        return b"", f"decompresses past max_decompressed_bytes ({config.max_decompressed_bytes} bytes)"
    except TruncatedGzip as exc:
        report.warnings.append("truncated gzip: reading the records before the cut")
        return exc.partial, None
    except isal_zlib.error as exc:
        return b"", f"corrupt gzip: {exc}"


def _time_ranges(reports: list[InputReport], frames: dict[str, pl.DataFrame]) -> None:
    """Each input's first and last record time, over every frame of records it filled."""
    ranges = []
    for name in ("events", "flows", "flow_status", "findings"):
        df = frames.get(name)
        if df is not None and len(df):
            column = pl.col(schema.TIME_COLUMN[name])
            ranges.append(df.group_by("origin").agg(column.min().alias("first"), column.max().alias("last")))
    if not ranges:
        return
    merged = pl.concat(ranges).group_by("origin").agg(pl.col("first").min(), pl.col("last").max())
    by_origin = {origin: (first, last) for origin, first, last in merged.iter_rows()}
    for report in reports:
        first, last = by_origin.get(report.path, (None, None))
        if first is not None:
            report.first, report.last = first.isoformat(), last.isoformat()
