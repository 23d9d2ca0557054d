"""Offline geolocation of source addresses: country and AS organization from geoip2fast's shipped data,
city and coordinates from a user's MaxMind City database, or a country centroid without one.

CloudTrail's sourceIPAddress is often not an address at all: a service host (`ec2.amazonaws.com`), the
literal "AWS Internal", or anything an attacker managed to put there. Every value gets a `kind`; only
public addresses are looked up, and nothing here raises on hostile input.

geoip2fast's data (GeoLite2 country + ASN, IPv4 and IPv6) is loaded once per process, on the first
public lookup (~0.2 s, ~100 MiB). It names the AS organization but carries no AS numbers: `asn` is only
filled from a MaxMind database that has them (GeoIP2 Enterprise/ISP, GeoLite2-ASN).
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import ipaddress
import os
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import polars as pl

from sleuth.enrich import PrefixTable
from sleuth.errors import SourceError
from sleuth.netaddr import Address, parse_ip

KINDS = (
    "public",
    "private",
    "loopback",
    "link-local",
    "reserved",
    "aws-service",
    "aws-internal",
    "invalid",
    "missing",
)

FRAME_SCHEMA: dict[str, pl.DataType] = {
    "ip": pl.String(),
    "ip_kind": pl.String(),
    "country_code": pl.String(),
    "country": pl.String(),
    "asn": pl.Int64(),
    "aso": pl.String(),
    "city": pl.String(),
    "latitude": pl.Float64(),
    "longitude": pl.Float64(),
    "location": pl.String(),
}

# GeoResolver.lookups: a value as given, then every GeoInfo field (what a cache needs to give it back).
LOOKUP_SCHEMA: dict[str, pl.DataType] = {
    "value": pl.String(),
    "ip": pl.String(),
    "kind": pl.String(),
    **{name: FRAME_SCHEMA[name] for name in ("country_code", "country", "asn", "aso", "city", "latitude", "longitude")},
    "location_source": pl.String(),
    "address": pl.String(),
}

# The geoip2fast data file with ASN names and IPv6 (the package also ships country-only and IPv4-only ones).
GEOIP2FAST_DATA = "geoip2fast-asn-ipv6.dat.gz"

# Longer values are neither addresses nor host names (a DNS name is at most 253 characters).
_MAX_TEXT = 256

# AWS service principals as CloudTrail writes them in sourceIPAddress (ec2.amazonaws.com,
# s3.amazonaws.com.cn, ...).
_AWS_SERVICE = re.compile(r"^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+amazonaws\.com(?:\.cn)?$", re.IGNORECASE)

# Special-purpose ranges (RFC 6890 and its IANA registries), most specific first wins; an address in
# none of them is public. Documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
# 2001:db8::/32) are "reserved": the fixtures use them.
_SPECIAL_RANGES = {
    "0.0.0.0/8": "reserved",
    "10.0.0.0/8": "private",
    "100.64.0.0/10": "private",  # carrier-grade NAT
    "127.0.0.0/8": "loopback",
    "169.254.0.0/16": "link-local",
    "172.16.0.0/12": "private",
    "192.0.0.0/24": "reserved",
    "192.0.2.0/24": "reserved",
    "192.88.99.0/24": "reserved",  # 6to4 relay anycast
    "192.168.0.0/16": "private",
    "198.18.0.0/15": "reserved",  # benchmarking
    "198.51.100.0/24": "reserved",
    "203.0.113.0/24": "reserved",
    "224.0.0.0/4": "reserved",  # multicast
    "240.0.0.0/4": "reserved",  # future use and broadcast
    "::/0": "reserved",  # IPv6: only 2000::/3 is global unicast
    "2000::/3": "public",
    "2001::/23": "reserved",  # IETF protocol assignments (Teredo, ORCHID, ...)
    "2001:db8::/32": "reserved",
    "3fff::/20": "reserved",  # documentation (RFC 9637)
    "::1/128": "loopback",
    "fc00::/7": "private",  # unique local
    "fe80::/10": "link-local",
    "ff00::/8": "reserved",  # multicast
}
_SPECIAL: PrefixTable[str] = PrefixTable()
for _network, _kind in _SPECIAL_RANGES.items():
    _SPECIAL.add(ipaddress.ip_network(_network), _kind)

# geoip2fast's placeholders for "no organization".
_NO_ASO = {"", "<unknown>", "IANA.ORG"}


@dataclass(frozen=True)
class GeoInfo:
    ip: str  # as given (stripped)
    kind: str  # one of KINDS
    country_code: str | None = None
    country: str | None = None
    asn: int | None = None
    aso: str | None = None  # autonomous system organization name
    city: str | None = None
    latitude: float | None = None  # rounded to 1 decimal, as Detective does
    longitude: float | None = None
    location_source: str | None = None  # "city-db" | "country-centroid" | None
    address: str | None = None  # the normalized address (035.249.253.232 -> 35.249.253.232); None if not an IP

    @property
    def location(self) -> str | None:
        """ "City, Country", or "Country", or None."""
        if self.city and self.country:
            return f"{self.city}, {self.country}"
        return self.country or self.city or None


@functools.cache
def country_centroids() -> dict[str, tuple[float, float, str]]:
    """ISO 3166-1 alpha-2 code -> (latitude, longitude, name), from sleuth/data/country_centroids.csv."""
    text = resources.files("sleuth").joinpath("data/country_centroids.csv").read_text(encoding="utf-8")
    table: dict[str, tuple[float, float, str]] = {}
    for row in csv.DictReader(io.StringIO(text)):
        table[row["country_code"]] = (float(row["latitude"]), float(row["longitude"]), row["name"])
    return table


_geoip2fast_lock = threading.Lock()
_geoip2fast_instance: Any = None


def geoip2fast_reader() -> Any:
    """The process-wide geoip2fast reader, loaded on first use.

    geoip2fast keeps its tables in module globals, so there can only be one data file per process:
    this is the only place sleuth creates a GeoIP2Fast.
    """
    global _geoip2fast_instance
    if _geoip2fast_instance is None:
        with _geoip2fast_lock:
            if _geoip2fast_instance is None:
                import geoip2fast

                path = Path(geoip2fast.__file__).with_name(GEOIP2FAST_DATA)
                try:
                    _geoip2fast_instance = geoip2fast.GeoIP2Fast(geoip2fast_data_file=str(path))
                except Exception as exc:  # geoip2fast wraps every failure in its own GeoIPError
                    raise SourceError(
                        f"cannot load geoip2fast's data file {path}: {exc}",
                        "reinstall it: pip install --force-reinstall geoip2fast",
                    ) from exc
    return _geoip2fast_instance


def classify(text: str | None) -> tuple[str, Address | None]:
    """The kind of a sourceIPAddress-like value, and its address when it is one."""
    if text is None or not isinstance(text, str):
        return ("missing", None) if text is None else ("invalid", None)
    text = text.strip()
    if not text:
        return "missing", None
    if len(text) > _MAX_TEXT:
        return "invalid", None
    if text.lower() == "aws internal":
        return "aws-internal", None
    address = parse_ip(text)
    if address is None:
        return ("aws-service" if _AWS_SERVICE.match(text) else "invalid"), None
    if address.version == 6:
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        elif address.scope_id is not None:  # fe80::1%eth0: the zone names a local interface, drop it
            address = ipaddress.IPv6Address(int(address))
    return address_kind(address), address


def address_kind(address: Address) -> str:
    """ "public", or the special-purpose range `address` is in (private, loopback, link-local, reserved)."""
    return _SPECIAL.get(address) or "public"


class GeoResolver:
    """Geolocation of addresses, offline; one lookup per distinct value (cached)."""

    def __init__(self, city_db: str | os.PathLike | None = None) -> None:
        self.city_db = os.fspath(city_db) if city_db is not None else None
        self._reader: Any = None
        self._db_ip_version = 6
        self.db_errors = 0  # addresses the city database failed to answer for (a damaged file)
        self._cache: dict[str, GeoInfo] = {}
        if self.city_db is not None:
            self._reader, self._db_ip_version = self._open_city_db(self.city_db)

    @staticmethod
    def _open_city_db(path: str) -> tuple[Any, int]:
        import maxminddb

        fix = "give a MaxMind GeoLite2/GeoIP2 City database (.mmdb, e.g. GeoLite2-City.mmdb), or leave out --geoip-db"
        if not Path(path).is_file():
            what = "is a folder" if Path(path).is_dir() else "does not exist"
            raise SourceError(f"GeoIP database {path} {what}", fix)
        try:
            reader = maxminddb.open_database(path)
            return reader, int(reader.metadata().ip_version)
        except (OSError, ValueError, TypeError, RuntimeError) as exc:  # InvalidDatabaseError is a RuntimeError
            raise SourceError(f"GeoIP database {path} is not a readable MaxMind DB: {exc}", fix) from exc

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def lookup(self, ip: str | None) -> GeoInfo:
        """What is known offline about one sourceIPAddress-like value; never raises."""
        key = ip if isinstance(ip, str) else None
        if key is not None and len(key) > _MAX_TEXT:
            return GeoInfo(ip=key[:_MAX_TEXT] + "...", kind="invalid")
        cached = self._cache.get(key) if key is not None else None
        if cached is None:
            cached = self._resolve(ip)
            if key is not None:
                self._cache[key] = cached
        return cached

    def _resolve(self, ip: str | None) -> GeoInfo:
        kind, address = classify(ip)
        text = ip.strip() if isinstance(ip, str) else ("" if ip is None else str(ip)[:_MAX_TEXT])
        if address is None:
            return GeoInfo(ip=text, kind=kind)
        normalized = str(address)
        if kind != "public":
            return GeoInfo(ip=text, kind=kind, address=normalized)
        found = geoip2fast_reader().lookup(normalized)
        country_code = country = aso = city = None
        asn = latitude = longitude = None
        source = None
        if found.is_private:  # a special-purpose range that geoip2fast lists and _SPECIAL_RANGES does not
            return GeoInfo(ip=text, kind="reserved", address=normalized)
        if found.country_code and found.country_code != "--":
            country_code, country = found.country_code, found.country_name or None
        if found.asn_name not in _NO_ASO:
            aso = found.asn_name
        record = self._city_record(address)
        if record:
            db_country = record.get("country") or record.get("registered_country") or {}
            db_code = db_country.get("iso_code") if isinstance(db_country, dict) else None
            if isinstance(db_code, str) and db_code:
                same = db_code == country_code
                country_code = db_code
                country = _english(db_country) or (country if same else _centroid_name(db_code))
            city = _english(record.get("city"))
            location = record.get("location")
            if isinstance(location, dict):
                lat, lon = location.get("latitude"), location.get("longitude")
                if _coordinate(lat, 90) and _coordinate(lon, 180):
                    latitude, longitude, source = round(float(lat), 1), round(float(lon), 1), "city-db"
            number = record.get("autonomous_system_number")
            if isinstance(number, int) and not isinstance(number, bool) and number >= 0:
                asn = number
            if isinstance(record.get("autonomous_system_organization"), str):
                aso = record["autonomous_system_organization"] or aso
        if source is None and country_code in country_centroids():
            latitude, longitude, _name = country_centroids()[country_code]
            source = "country-centroid"
        return GeoInfo(
            ip=text,
            kind=kind,
            country_code=country_code,
            country=country,
            asn=asn,
            aso=aso,
            city=city,
            latitude=latitude,
            longitude=longitude,
            location_source=source,
            address=normalized,
        )

    def _city_record(self, address: Address) -> dict | None:
        if self._reader is None or address.version > self._db_ip_version:
            return None
        try:
            record = self._reader.get(address)
        except (ValueError, TypeError, RuntimeError, OSError):  # a damaged database: no city for this one
            self.db_errors += 1
            return None
        return record if isinstance(record, dict) else None

    def lookups(self, values: Iterable[str]) -> pl.DataFrame:
        """Every GeoInfo field of each value (`value` as given), for a cache that `preload` reads back."""
        rows = [{"value": value, **dataclasses.asdict(self.lookup(value))} for value in dict.fromkeys(values)]
        return pl.DataFrame(rows, schema=LOOKUP_SCHEMA)

    def preload(self, lookups: pl.DataFrame) -> None:
        """Fill the memory of looked-up values from `lookups` (a frame `lookups` made), so that those
        values need no lookup: a case keeps its addresses' geo data beside it (sleuth.derived)."""
        for row in lookups.iter_rows(named=True):
            value = row.pop("value")
            if isinstance(value, str) and value not in self._cache:
                self._cache[value] = GeoInfo(**row)

    def frame(self, ips: Iterable[str | None]) -> pl.DataFrame:
        """One row per distinct input value (`ip` as given, for joining back), in FRAME_SCHEMA."""
        if isinstance(ips, pl.Series):
            values: Iterable[Any] = ips.unique(maintain_order=True).to_list()
        else:
            values = dict.fromkeys(ips)
        columns: dict[str, list] = {name: [] for name in FRAME_SCHEMA}
        for value in values:
            info = self.lookup(value)
            columns["ip"].append(value if isinstance(value, str) or value is None else str(value))
            columns["ip_kind"].append(info.kind)
            columns["country_code"].append(info.country_code)
            columns["country"].append(info.country)
            columns["asn"].append(info.asn)
            columns["aso"].append(info.aso)
            columns["city"].append(info.city)
            columns["latitude"].append(info.latitude)
            columns["longitude"].append(info.longitude)
            columns["location"].append(info.location)
        return pl.DataFrame(columns, schema=FRAME_SCHEMA)


def _coordinate(value: object, limit: float) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and -limit <= value <= limit  # NaN fails


def _centroid_name(code: str) -> str | None:
    entry = country_centroids().get(code)
    return entry[2] if entry else None


def _english(node: object) -> str | None:
    """The English name of a MaxMind record node ({"names": {"en": ...}})."""
    if isinstance(node, dict) and isinstance(node.get("names"), dict):
        name = node["names"].get("en")
        return name if isinstance(name, str) and name else None
    return None
