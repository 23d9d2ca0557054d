"""Turning `-s` arguments into inputs: files, folders (recursive), globs and case stores.

Files laid out as AWS delivers them (`AWSLogs/[o-ORG/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/...`) carry
their account, region and delivery day in the key, so whole days outside the time window are
skipped before a file is opened. The key date is the *delivery* day: records from late on one day
land under the next day's prefix, hence the slack of a day on each side (handbook §2).
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from sleuth.config import Config
from sleuth.errors import SourceError
from sleuth.store import is_case_store
from sleuth.timewindow import TimeWindow

AWSLOGS_KEY = re.compile(
    r"(?:^|/)AWSLogs/(?:(?P<org>o-[a-z0-9]+)/)?(?P<account>\d{12})/(?P<service>[A-Za-z0-9-]+)/"
    r"(?P<region>[a-z0-9-]+)/(?P<year>\d{4})/(?P<month>\d{2})/(?P<day>\d{2})/"
)
DIGEST_SERVICE = "CloudTrail-Digest"
_DIGEST_NAME = re.compile(r"_CloudTrail-Digest_")
_GLOB_CHARS = re.compile(r"[*?\[]")
_IGNORED_NAMES = {".DS_Store", "manifest.json", "_SUCCESS"}
# Documentation that ships beside log exports (datasets, archives): not logs, not worth a warning.
_DOC_NAME = re.compile(
    r"^(README|LICENSE|LICENCE|NOTICE|COPYING|CHANGELOG)([._-].*)?$|\.(md|rst|pdf|html?|py|sh)$", re.IGNORECASE
)


@dataclass(frozen=True)
class InputFile:
    path: str  # where the bytes are read from
    account: str | None = None
    region: str | None = None
    key_date: date | None = None
    display: str | None = None  # how reports name it when that differs (s3://bucket/key)

    @property
    def item(self) -> tuple[str, str]:
        """(local path, name in reports), the unit the parsers take."""
        return self.path, self.display or self.path


@dataclass
class SourceSet:
    """Everything the -s arguments named, after pruning by time."""

    files: list[InputFile] = field(default_factory=list)
    cases: list[Path] = field(default_factory=list)
    digests: list[str] = field(default_factory=list)  # CloudTrail digest files, skipped unread
    pruned: int = 0  # files whose key date lies outside the window
    ignored: list[str] = field(default_factory=list)  # documentation files beside the logs
    missing: list[str] = field(default_factory=list)  # S3 objects listed, then gone before download
    in_case: list[str] = field(default_factory=list)  # files whose content a given case already holds


def key_layout(path: str) -> dict | None:
    """Account, region, service and delivery day from an AWSLogs key, or None."""
    match = AWSLOGS_KEY.search(path.replace(os.sep, "/"))
    if not match:
        return None
    try:
        day = date(int(match["year"]), int(match["month"]), int(match["day"]))
    except ValueError:
        return None
    return {"account": match["account"], "region": match["region"], "service": match["service"], "day": day}


@dataclass(frozen=True)
class Remote:
    """How to reach s3:// sources: the boto3 session settings and where downloads are kept."""

    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    cache_dir: Path | None = None  # None: a temporary folder for this process


def resolve(
    arguments: list[str], window: TimeWindow, config: Config, remote: Remote | None = None, progress=None
) -> SourceSet:
    """Expand -s arguments into input files and case stores, pruning days outside `window`."""
    found = SourceSet()
    seen: set[str] = set()
    for argument in arguments:
        if argument.startswith("s3://"):
            _fetch(argument, window, config, remote or Remote(), progress, found)
            continue
        for path in _expand(argument, found):
            key = os.path.realpath(path)
            if key not in seen:
                seen.add(key)
                _classify(path, window, config, found)
        if len(found.files) > config.max_files:
            raise SourceError(
                f"more than {config.max_files} input files under {argument}",
                "narrow the sources or the time window, or raise max_files in sleuth.toml",
            )
    found.files.sort(key=lambda f: f.item[1])
    found.cases = list({os.path.realpath(case): case for case in found.cases}.values())  # -s case -s ./case
    return found


def _fetch(url: str, window: TimeWindow, config: Config, remote: Remote, progress, found: SourceSet) -> None:
    """Download what an s3:// prefix holds for `window` (listing only the days inside it)."""
    from sleuth import s3  # boto3 is imported only when a source is in S3

    fetched = s3.fetch(url, window, config, remote.cache_dir, progress,
                       profile=remote.profile, region=remote.region, endpoint_url=remote.endpoint_url)  # fmt: skip
    found.digests.extend(fetched.digests)
    found.pruned += fetched.pruned
    found.missing.extend(fetched.missing)
    known = {f.display for f in found.files}
    for local, display in fetched.files:
        if display in known:
            continue
        if _DOC_NAME.search(display.rsplit("/", 1)[-1]):
            found.ignored.append(display)
            continue
        layout = key_layout(display) or {}
        found.files.append(InputFile(local, layout.get("account"), layout.get("region"), layout.get("day"), display))


def _expand(argument: str, found: SourceSet) -> list[str]:
    if _GLOB_CHARS.search(argument) and not os.path.exists(argument):
        matches = sorted(glob.glob(argument, recursive=True))
        if not matches:
            raise SourceError(f"{argument}: the pattern matches no file", "check the pattern and quote it")
        return [p for m in matches for p in _walk(Path(m), found)]
    path = Path(argument)
    if not path.exists():
        raise SourceError(f"{argument}: no such file or folder", "give an existing file, folder, glob or case")
    return _walk(path, found)


def _walk(path: Path, found: SourceSet) -> list[str]:
    if path.is_file():
        return [str(path)]
    if is_case_store(path):
        found.cases.append(path)
        return []
    files: list[str] = []
    for folder, subfolders, names in os.walk(path):
        here = Path(folder)
        for sub in list(subfolders):
            if sub.startswith(".") or is_case_store(here / sub):
                subfolders.remove(sub)
                if not sub.startswith("."):
                    found.cases.append(here / sub)
        subfolders.sort()
        for name in sorted(names):
            if _ignored(name):
                found.ignored.append(str(here / name))  # said, not silently dropped
            else:
                files.append(str(here / name))
    return files


def _ignored(name: str) -> bool:
    return name.startswith(".") or name in _IGNORED_NAMES


def is_digest(path: str, layout: dict | None) -> bool:
    """A CloudTrail digest file (by its name or its AWSLogs folder): counted, never read."""
    name = path.replace(os.sep, "/").rsplit("/", 1)[-1]
    return bool(_DIGEST_NAME.search(name)) or bool(layout and layout["service"] == DIGEST_SERVICE)


def _classify(path: str, window: TimeWindow, config: Config, found: SourceSet) -> None:
    if _DOC_NAME.search(os.path.basename(path)):
        found.ignored.append(path)
        return
    layout = key_layout(path)
    if is_digest(path, layout):
        found.digests.append(path)
        return
    if layout is None:
        found.files.append(InputFile(path))
        return
    if not window.may_hold_key_day(layout["day"], config.key_date_slack_days):
        found.pruned += 1
        return
    found.files.append(InputFile(path, layout["account"], layout["region"], layout["day"]))
