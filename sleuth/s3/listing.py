"""Listing a prefix for a time window, descending the AWSLogs layout only where the window can be.

The walk lists one folder level at a time (`Delimiter="/"`) and classifies each sub-folder by where it
sits in `[PREFIX/]AWSLogs/[o-ORG/]ACCOUNT/SERVICE/REGION/YYYY/MM/DD/`: years, months and days that
cannot hold the window (with the delivery-day slack of handbook §2) are never listed, nor are
CloudTrail digest prefixes. A folder outside the layout is listed plainly, in one paginated pass.
"""

from __future__ import annotations

import concurrent.futures
import enum
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sleuth.s3.client import translate_error
from sleuth.sources import DIGEST_SERVICE, is_digest, key_layout
from sleuth.timewindow import TimeWindow

_ORG_ID = re.compile(r"^o-[a-z0-9]+$")
_ACCOUNT_ID = re.compile(r"^\d{12}$")
_SERVICE = re.compile(r"^[A-Za-z0-9-]+$")
_REGION = re.compile(r"^[a-z0-9-]+$")
_YEAR = re.compile(r"^\d{4}$")
_TWO_DIGITS = re.compile(r"^\d{2}$")
_AWSLOGS_FOLDER = "AWSLogs"
_AWSLOGS_IN_KEY = re.compile(r"(?:^|/)AWSLogs/")
# Above AWSLogs/ (a trail's own key prefix), look this many folder levels down for it; a level with
# more sub-folders than _SEARCH_FANOUT and no AWSLogs/ among them is not a trail prefix: list it plainly.
_SEARCH_DEPTH = 3
_SEARCH_FANOUT = 50


@dataclass(frozen=True)
class S3Object:
    key: str
    size: int
    etag: str  # without the surrounding quotes


@dataclass
class Listing:
    objects: list[S3Object] = field(default_factory=list)
    digests: list[str] = field(default_factory=list)  # keys and prefixes, never read
    pruned: int = 0  # date prefixes and objects skipped as outside the window

    def add(self, other: Listing) -> None:
        self.objects.extend(other.objects)
        self.digests.extend(other.digests)
        self.pruned += other.pruned


class _Level(enum.Enum):
    """What the sub-folders of a prefix are, in the walk down the AWSLogs layout."""

    SEARCH = "search"  # above AWSLogs/: look for it
    AWSLOGS = "awslogs"  # children: o-ORG or ACCOUNT
    ORG = "org"  # children: ACCOUNT
    ACCOUNT = "account"  # children: SERVICE
    SERVICE = "service"  # children: REGION
    REGION = "region"  # children: YYYY
    YEAR = "year"  # children: MM
    MONTH = "month"  # children: DD (each listed plainly: flow logs may add HH/)
    PLAIN = "plain"  # everything below, one paginated listing without a delimiter
    PARTIAL = "partial"  # a prefix not ending in "/": objects here, sub-folders classified from their own key


class _Skip(enum.Enum):
    DIGEST = "digest"  # never listed
    PRUNED = "pruned"  # outside the window: never listed


# Between AWSLogs/ and the dates: the folder names each level expects, and the level each leads to.
_NAMED_CHILDREN: dict[_Level, tuple[tuple[re.Pattern[str], _Level], ...]] = {
    _Level.AWSLOGS: ((_ORG_ID, _Level.ORG), (_ACCOUNT_ID, _Level.ACCOUNT)),
    _Level.ORG: ((_ACCOUNT_ID, _Level.ACCOUNT),),
    _Level.ACCOUNT: ((_SERVICE, _Level.SERVICE),),
    _Level.SERVICE: ((_REGION, _Level.REGION),),
}


@dataclass(frozen=True)
class _Task:
    prefix: str
    level: _Level
    depth: int = 0
    context: tuple[int, ...] = ()  # (year,) or (year, month) for the date levels


# ------------------------------------------------------------------------------------ classification


def _span_may_hold(window: TimeWindow, first: date, last: date, slack_days: int) -> bool:
    """Could any key day in [first, last] hold records inside the window? (may_hold_key_day on a span)"""
    slack = timedelta(days=slack_days)
    if window.since and last < window.since.date() - slack:
        return False
    return not (window.until and first > window.until.date() + slack)


def _child(task: _Task, name: str, window: TimeWindow, slack_days: int, fanout: int) -> _Task | _Skip:
    """What the sub-folder `name` of `task` is: a task to run, _Skip.DIGEST or _Skip.PRUNED."""
    prefix = f"{task.prefix}{name}/"
    level = task.level
    if level == _Level.SEARCH:
        if name == _AWSLOGS_FOLDER:
            return _Task(prefix, _Level.AWSLOGS)
        if task.depth < _SEARCH_DEPTH and fanout <= _SEARCH_FANOUT:
            return _Task(prefix, _Level.SEARCH, task.depth + 1)
        return _Task(prefix, _Level.PLAIN)
    if level == _Level.ACCOUNT and name == DIGEST_SERVICE:
        return _Skip.DIGEST
    if level in _NAMED_CHILDREN:
        expected = (_Task(prefix, child) for pattern, child in _NAMED_CHILDREN[level] if pattern.match(name))
        return next(expected, _Task(prefix, _Level.PLAIN))
    if level == _Level.REGION:
        return _year_folder(prefix, name, window, slack_days)
    if level == _Level.YEAR:
        return _month_folder(prefix, name, task.context, window, slack_days)
    if level == _Level.MONTH:
        return _day_folder(prefix, name, task.context, window, slack_days)
    raise AssertionError(f"no sub-folders are classified at level {level}")


def _year_folder(prefix: str, name: str, window: TimeWindow, slack_days: int) -> _Task | _Skip:
    if not _YEAR.match(name) or int(name) == 0:
        return _Task(prefix, _Level.PLAIN)
    year = int(name)
    if not _span_may_hold(window, date(year, 1, 1), date(year, 12, 31), slack_days):
        return _Skip.PRUNED
    return _Task(prefix, _Level.YEAR, context=(year,))


def _month_folder(
    prefix: str, name: str, context: tuple[int, ...], window: TimeWindow, slack_days: int
) -> _Task | _Skip:
    if not _TWO_DIGITS.match(name) or not 1 <= int(name) <= 12:
        return _Task(prefix, _Level.PLAIN)
    (year,) = context
    month = int(name)
    first = date(year, month, 1)
    last = (date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)) - timedelta(days=1)
    if not _span_may_hold(window, first, last, slack_days):
        return _Skip.PRUNED
    return _Task(prefix, _Level.MONTH, context=(year, month))


def _day_folder(prefix: str, name: str, context: tuple[int, ...], window: TimeWindow, slack_days: int) -> _Task | _Skip:
    year, month = context
    try:
        day = date(year, month, int(name)) if _TWO_DIGITS.match(name) else None
    except ValueError:
        day = None
    if day is not None and not window.may_hold_key_day(day, slack_days):
        return _Skip.PRUNED
    return _Task(prefix, _Level.PLAIN)


def _start(prefix: str, window: TimeWindow, slack_days: int) -> _Task | _Skip:
    """The task for a folder prefix (empty or ending in "/"), classified from the AWSLogs part of its key."""
    if not window.bounded:
        return _Task(prefix, _Level.PLAIN)
    ends = [m.end() for m in _AWSLOGS_IN_KEY.finditer(prefix)]
    if not ends:
        return _Task(prefix, _Level.SEARCH)
    # Replay the walk over the folders after the last AWSLogs/ so that a prefix deep in the layout is
    # treated exactly as the walk would have treated it.
    start = ends[-1]
    task: _Task | _Skip = _Task(prefix[:start], _Level.AWSLOGS)
    for name in prefix[start:].split("/")[:-1]:
        assert isinstance(task, _Task)
        if task.level == _Level.PLAIN:
            return _Task(prefix, _Level.PLAIN)
        task = _child(task, name, window, slack_days, fanout=1)
        if not isinstance(task, _Task):
            return task
    return task


# ------------------------------------------------------------------------------------------- the walk


def _pages(client: Any, bucket: str, prefix: str, delimiter: bool) -> Iterator[dict]:
    arguments: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    if delimiter:
        arguments["Delimiter"] = "/"
    yield from client.get_paginator("list_objects_v2").paginate(**arguments)


def _visit(client: Any, bucket: str, task: _Task, window: TimeWindow, slack_days: int) -> tuple[Listing, list[_Task]]:
    """List one prefix: its objects, and the sub-folder tasks still to run (none when listed plainly)."""
    listing = Listing()
    plain = task.level == _Level.PLAIN
    folders: list[str] = []
    for page in _pages(client, bucket, task.prefix, delimiter=not plain):
        for item in page.get("Contents", []) or []:
            _add_object(listing, item, window, slack_days)
        folders.extend(p["Prefix"] for p in page.get("CommonPrefixes", []) or [] if p.get("Prefix"))
    if plain:
        return listing, []
    return listing, _classify_folders(listing, task, folders, window, slack_days)


def _classify_folders(
    listing: Listing, task: _Task, folders: list[str], window: TimeWindow, slack_days: int
) -> list[_Task]:
    """The tasks for the sub-folders of `task`; digest and pruned folders are counted in `listing`."""
    children: list[_Task] = []
    for folder in folders:
        if not folder.startswith(task.prefix) or not folder.endswith("/"):
            continue  # a server answering for another prefix: ignore it
        if task.level == _Level.PARTIAL:
            child = _start(folder, window, slack_days)
        else:
            child = _child(task, folder[len(task.prefix) : -1], window, slack_days, fanout=len(folders))
        if child == _Skip.DIGEST:
            listing.digests.append(folder)
        elif child == _Skip.PRUNED:
            listing.pruned += 1
        else:
            assert isinstance(child, _Task)
            children.append(child)
    return children


def _add_object(listing: Listing, item: dict, window: TimeWindow, slack_days: int) -> None:
    key = item.get("Key")
    if not key or key.endswith("/"):
        return  # folder markers written by consoles
    layout = key_layout(key)
    if is_digest(key, layout):
        listing.digests.append(key)
        return
    if layout is not None and not window.may_hold_key_day(layout["day"], slack_days):
        listing.pruned += 1
        return
    etag = str(item.get("ETag") or "").strip('"')
    listing.objects.append(S3Object(key, int(item.get("Size") or 0), etag))


def _walk(client: Any, bucket: str, root: _Task, window: TimeWindow, slack_days: int, max_workers: int) -> Listing:
    """Run `root` and every task it leads to, `max_workers` prefixes listed at a time."""
    total = Listing()
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, max_workers)) as pool:
        pending = {pool.submit(_visit, client, bucket, root, window, slack_days)}
        try:
            while pending:
                done, pending = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
                for future in done:
                    listing, children = future.result()
                    total.add(listing)
                    pending |= {pool.submit(_visit, client, bucket, c, window, slack_days) for c in children}
        except BaseException:
            for future in pending:
                future.cancel()
            raise
    return total


def _list(client: Any, bucket: str, prefix: str, window: TimeWindow, slack_days: int, max_workers: int) -> Listing:
    if prefix and not prefix.endswith("/") and window.bounded:
        root: _Task | _Skip = _Task(prefix, _Level.PARTIAL)
    else:
        root = _start(prefix, window, slack_days)
    if root == _Skip.DIGEST:
        return Listing(digests=[prefix])
    if root == _Skip.PRUNED:
        return Listing(pruned=1)
    assert isinstance(root, _Task)
    total = _walk(client, bucket, root, window, slack_days, max_workers)
    unique = {o.key: o for o in total.objects}
    total.objects = [unique[k] for k in sorted(unique)]
    total.digests = sorted(set(total.digests))
    return total


# --------------------------------------------------------------------------------------------- api


def list_prefix(
    client: Any, bucket: str, prefix: str, window: TimeWindow, slack_days: int, max_workers: int = 8
) -> Listing:
    """What s3://bucket/prefix holds for `window`: objects sorted by key, digests, the pruned count.

    Raises SourceError on any S3 failure.
    """
    try:
        return _list(client, bucket, prefix, window, slack_days, max_workers)
    except Exception as exc:
        raise translate_error(exc, bucket, prefix) from exc


def list_objects(
    client: Any, bucket: str, prefix: str, window: TimeWindow, slack_days: int, *, max_workers: int = 8
) -> tuple[list[S3Object], int]:
    """The objects under s3://bucket/prefix that may hold records inside `window`, sorted by key.

    Returns (objects, pruned): `pruned` counts the date prefixes and objects skipped as outside the
    window. Digest files are left out. Raises SourceError on any S3 failure.
    """
    listing = list_prefix(client, bucket, prefix, window, slack_days, max_workers)
    return listing.objects, listing.pruned
