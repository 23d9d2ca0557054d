"""Every tunable, in one frozen dataclass with defaults; `sleuth.toml` overrides them.

A `sleuth.toml` in the working directory (or the file named by `SLEUTH_CONFIG`) may set any field
of `Config` at the top level, e.g. `max_decompressed_bytes = 2_000_000_000`, and `sources = [...]`.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from sleuth.errors import ConfigError


@dataclass(frozen=True)
class Config:
    # Limits on hostile input (handbook §6).
    max_decompressed_bytes: int = 1 << 30  # per input file; a gzip bomb stops here
    max_record_bytes: int = 4 << 20  # a single JSON record larger than this is skipped
    max_json_depth: int = 64  # deeper nesting than this is skipped
    max_files: int = 1_000_000  # per run; more is an error naming the limit
    # Ingest.
    batch_files: int = 24  # input files per unit of work in the ingest map ...
    batch_bytes: int = 16 << 20  # ... and bytes on disk (bounds a worker's memory on big flow-log files)
    workers: int = 0  # processes for ingest; 0 = one per core
    # Sources.
    sources: tuple[str, ...] = ()
    key_date_slack_days: int = 1  # AWSLogs key dates are delivery days (handbook §2)
    # VPC Flow Logs: the field list of headerless custom-format files ("version account-id ...").
    vpc_format: str | None = None
    # S3 sources.
    s3_max_parallel: int = 8  # concurrent downloads
    # Coverage.
    gap_min_hours: int = 1  # an hour without events inside the covered span is a gap
    # Output.
    table_max_cell: int = 80  # characters shown per table cell in the terminal
    extra: dict = field(default_factory=dict)


def load_config(path: str | os.PathLike | None = None) -> Config:
    """Read sleuth.toml (or `path`, or $SLEUTH_CONFIG) over the defaults."""
    candidate = Path(path or os.environ.get("SLEUTH_CONFIG") or "sleuth.toml")
    if not candidate.is_file():
        if path:
            raise ConfigError(f"config file {candidate} does not exist", "give an existing sleuth.toml")
        return Config()
    try:
        data = tomllib.loads(candidate.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {candidate}: {exc}", "fix the TOML syntax") from exc
    known = {f.name for f in dataclasses.fields(Config)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"{candidate}: unknown setting(s) {', '.join(unknown)}",
            f"use only: {', '.join(sorted(known - {'extra'}))}",
        )
    if "sources" in data:
        data["sources"] = tuple(data["sources"])
    return dataclasses.replace(Config(), **data)
