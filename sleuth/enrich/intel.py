"""Threat-intel address lists (--intel): which source addresses are listed, and why.

Two formats, told apart by content:
- plain text: one IP or CIDR per line; `#` comments and blank lines are ignored, and so is anything after
  the address (`1.2.3.4  # tor exit`, Spamhaus DROP's `1.10.16.0/20 ; SBL256894`, `1.2.3.4,label`);
- CSV (comma, tab, semicolon or pipe): a header row with an address column (ip, ip_address, address,
  indicator, ioc, cidr, dst_ip, ...) and optionally a reason column (reason, description, comment, threat,
  malware, category, tags, ...). The header may itself be commented out (`# first_seen,dst_ip,malware`),
  as some feeds write it.
The reason defaults to "listed in <file name>". Lines that hold no usable address (host names, hashes,
networks broader than /8 or /16 for IPv6, junk) are counted in `skipped`, never fatal. Defanged
addresses (`1.2.3[.]4`) are read.

Matching is a longest-prefix lookup in one dict per prefix length (`sleuth.enrich.PrefixTable`): a few
dict probes per address, whatever the size of the lists.
"""

from __future__ import annotations

import csv
import ipaddress
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import polars as pl

from sleuth.enrich import PrefixTable
from sleuth.errors import SourceError
from sleuth.netaddr import Address, Network, parse_ip, parse_network

FRAME_SCHEMA: dict[str, pl.DataType] = {
    "ip": pl.String(),
    "intel_reason": pl.String(),
    "intel_source": pl.String(),
}

# Address columns, by preference; failing these, any column whose name has one of _IP_WORDS as a word.
_IP_COLUMNS = (
    "ip",
    "ip_address",
    "ipaddress",
    "ipaddr",
    "address",
    "addr",
    "indicator",
    "ioc",
    "cidr",
    "network",
    "ip_range",
    "subnet",
    "value",
)
_IP_WORDS = {"ip", "ipv4", "ipv6", "cidr", "indicator", "ioc", "address", "addr"}
_REASON_COLUMNS = (
    "reason",
    "description",
    "comment",
    "comments",
    "threat",
    "threat_type",
    "malware",
    "malware_family",
    "category",
    "classification",
    "tags",
    "tag",
    "label",
    "note",
    "notes",
)
_DELIMITERS = (",", "\t", ";", "|")
_HEADER_SCAN = 100  # lines searched for a (possibly commented) CSV header
_MAX_TOKEN = 100  # no address or CIDR is longer
_MAX_REASON = 200
_MIN_PREFIX = {4: 8, 6: 16}  # broader networks are a mistake in a list (0.0.0.0/0 would flag everything)
_FIX = "give a text file with one IP or CIDR per line, or a CSV file with an ip column"


class IntelList:
    """Listed networks with the reason and the file each came from; the first listing of a network wins."""

    def __init__(self) -> None:
        self._table: PrefixTable[tuple[str, str]] = PrefixTable()
        self.skipped: dict[str, int] = {}  # file (as given) -> lines without a usable address; only files with some
        self.loaded: dict[str, int] = {}  # file (as given) -> addresses and networks read from it

    @classmethod
    def load(cls, paths: Iterable[str | os.PathLike]) -> IntelList:
        if isinstance(paths, str | os.PathLike):
            paths = [paths]
        intel = cls()
        for path in paths:
            intel._load_file(path)
        return intel

    def __len__(self) -> int:
        return len(self._table)

    def __repr__(self) -> str:
        return f"IntelList({len(self)} networks from {len(self.loaded)} files)"

    def match(self, ip: str | None) -> str | None:
        """The reason `ip` is listed (it lies inside a listed network), or None."""
        found = self._find(ip)
        return found[0] if found else None

    def frame(self, ips: Iterable[str | None]) -> pl.DataFrame:
        """The distinct listed values of `ips` (as given, for joining back): ip, intel_reason, intel_source."""
        values = ips.unique(maintain_order=True).to_list() if isinstance(ips, pl.Series) else dict.fromkeys(ips)
        rows = []
        if len(self._table):
            for value in values:
                found = self._find(value)
                if found:
                    rows.append((value, found[0], found[1]))
        return pl.DataFrame(rows, schema=FRAME_SCHEMA, orient="row")

    def _find(self, ip: str | None) -> tuple[str, str] | None:
        if not isinstance(ip, str) or len(ip) > _MAX_TOKEN:
            return None
        address = parse_ip(ip)
        if address is None:
            return None
        return self._table.get(_plain(address))

    # Loading.

    def _load_file(self, path: str | os.PathLike) -> None:
        name = os.fspath(path)
        file = Path(name)
        try:
            data = file.read_bytes()
        except FileNotFoundError as exc:
            raise SourceError(f"threat-intel list {name} does not exist", _FIX) from exc
        except IsADirectoryError as exc:
            fix = "give the list files themselves: --intel DIR/*.txt"
            raise SourceError(f"threat-intel list {name} is a folder", fix) from exc
        except OSError as exc:
            raise SourceError(f"cannot read threat-intel list {name}: {exc.strerror or exc}", _FIX) from exc
        lines = data.decode("utf-8-sig", errors="replace").splitlines(keepends=True)
        default = f"listed in {file.name}"
        header = _find_header(lines)
        if header is None:
            entries = _text_entries(lines, default)
        else:
            at, delimiter, ip_index, reason_index = header
            entries = _csv_entries(lines[at + 1 :], delimiter, ip_index, reason_index, default)
        added = bad = 0
        for network, reason in entries:
            if network is None:
                bad += 1
                continue
            self._table.add(network, (reason, file.name))
            added += 1
        self.loaded[name] = self.loaded.get(name, 0) + added
        if bad:
            self.skipped[name] = self.skipped.get(name, 0) + bad


def _plain(address: Address) -> Address:
    """IPv4-mapped IPv6 as IPv4; an IPv6 zone (%eth0) dropped."""
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.scope_id is not None:
            return ipaddress.IPv6Address(int(address))
    return address


def _network(cell: str) -> Network | None:
    """The network a list cell names (its first word), or None when it names none usable."""
    words = cell.split(None, 1)
    if not words:
        return None
    token = words[0].strip("\"'").rstrip(",;").replace("[.]", ".").replace("[:]", ":")
    if not token or len(token) > _MAX_TOKEN:
        return None
    network = parse_network(token)
    if network is None:
        return None
    if network.version == 6:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None and network.prefixlen >= 96:
            network = ipaddress.IPv4Network((int(mapped), network.prefixlen - 96))
        elif network.network_address.scope_id is not None:
            network = ipaddress.IPv6Network((int(network.network_address), network.prefixlen))
    if network.prefixlen < _MIN_PREFIX[network.version]:
        return None
    return network


def _column_name(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _ip_column(names: list[str]) -> int | None:
    normalized = [_column_name(name) for name in names]
    for wanted in _IP_COLUMNS:
        if wanted in normalized:
            return normalized.index(wanted)
    if len(names) > 1:
        for index, name in enumerate(normalized):
            if _IP_WORDS & set(name.split("_")):
                return index
    return None


def _reason_column(names: list[str]) -> int | None:
    normalized = [_column_name(name) for name in names]
    for wanted in _REASON_COLUMNS:
        if wanted in normalized:
            return normalized.index(wanted)
    return None


def _split(line: str, delimiter: str) -> list[str]:
    try:
        return next(csv.reader([line], delimiter=delimiter), [])
    except csv.Error:
        return []


def _find_header(lines: list[str]) -> tuple[int, str, int, int | None] | None:
    """(line index, delimiter, address column, reason column) of a CSV header, or None for a plain list.

    The header is the first line that is not a comment, or a commented line before it that has at least
    two columns; it must name an address column and hold no address itself.
    """
    for at, line in enumerate(lines[:_HEADER_SCAN]):
        text = line.strip()
        if not text:
            continue
        commented = text.startswith("#")
        if commented:
            text = text.lstrip("#").strip()
        best: tuple[int, str, int, int | None] | None = None
        best_width = 0
        for delimiter in _DELIMITERS:
            names = _split(text, delimiter)
            if len(names) < (2 if commented else 1) or len(names) <= best_width:
                continue
            if any(_network(name) is not None for name in names):
                continue
            ip_index = _ip_column(names)
            if ip_index is not None:
                best, best_width = (at, delimiter, ip_index, _reason_column(names)), len(names)
        if best is not None or not commented:
            return best
    return None


def _text_entries(lines: list[str], default: str) -> Iterator[tuple[Network | None, str]]:
    for line in lines:
        text = line.strip()
        if text and not text.startswith("#"):
            yield _network(re.split(r"[\s,;|]", text, maxsplit=1)[0]), default


def _csv_entries(
    lines: list[str], delimiter: str, ip_index: int, reason_index: int | None, default: str
) -> Iterator[tuple[Network | None, str]]:
    kept = (line for line in lines if line.strip() and not line.lstrip().startswith("#"))
    reader = csv.reader(kept, delimiter=delimiter)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error:  # an over-long field, a stray quote: one bad line
            yield None, default
            continue
        if len(row) <= ip_index:
            yield None, default
            continue
        reason = default
        if reason_index is not None and reason_index < len(row):
            text = " ".join(row[reason_index].split())[:_MAX_REASON]
            reason = text or default
        yield _network(row[ip_index]), reason
