"""One input file to canonical frames: read, decompress (capped), decode, sniff, parse.

Nothing here raises for bad content: a broken input becomes an `InputReport` with a reason, so the
run goes on and the manifest records what happened (handbook §2, "accounting, not silence").
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
from isal import isal_zlib

from sleuth import parsers
from sleuth.config import Config

GZIP_MAGIC = b"\x1f\x8b"
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
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        note = f"not valid UTF-8 (first bad byte at offset {exc.start}); invalid bytes shown as U+FFFD"
        return data.decode("utf-8", "replace").encode(), note
    return data, None


def parse_file(path: str | Path, config: Config, display: str | None = None) -> tuple[InputReport, dict]:
    """Parse one input file. Returns its report and its canonical frames (name -> DataFrame)."""
    display = display or str(path)
    report = InputReport(path=display)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        report.error = f"cannot read: {exc.strerror or exc}"
        return report, {}
    report.size = len(raw)
    report.sha256 = hashlib.sha256(raw).hexdigest()
    return parse_bytes(raw, display, config, report)


def parse_bytes(raw: bytes, display: str, config: Config, report: InputReport) -> tuple[InputReport, dict]:
    data, error = _decompress(raw, config, report)
    if error:
        report.error = error
        return report, {}
    if not data.strip():
        report.error = "empty file"
        return report, {}
    data, note = decode_text(data)
    if note:
        report.warnings.append(note)
    module = parsers.detect(data[:_SNIFF_BYTES])
    if module is None:
        report.error = "not a recognised log format (expected CloudTrail JSON)"
        return report, {}
    report.format = module.NAME
    result = module.parse(data, display, config)
    report.read, report.skipped, report.ignored = result.read, result.skipped, result.ignored
    report.error = result.error
    report.warnings.extend(result.warnings)
    if result.read == 0 and not (result.ignored or result.error or report.warnings):
        report.warnings.append("no records")
    report.kept = result.kept
    _time_range(report, result.frames)
    return report, result.frames


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


def _time_range(report: InputReport, frames: dict[str, pl.DataFrame]) -> None:
    events = frames.get("events")
    if events is not None and len(events):
        report.first = events["time"].min().isoformat()  # type: ignore[union-attr]
        report.last = events["time"].max().isoformat()  # type: ignore[union-attr]
