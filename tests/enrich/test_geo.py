"""sleuth.enrich.geo: kinds of sourceIPAddress values, geoip2fast country/AS organization, the city database
path and the country centroid table.

The city-database path is tested against real .mmdb files: maxminddb only reads them, so `write_mmdb`
below writes tiny ones following the MaxMind DB format spec (search tree, data section, metadata).
"""

from __future__ import annotations

import csv
import ipaddress
import re
import struct
from importlib import resources
from pathlib import Path
from types import SimpleNamespace

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sleuth.enrich import geo
from sleuth.enrich.geo import FRAME_SCHEMA, KINDS, GeoInfo, GeoResolver, classify, country_centroids
from sleuth.errors import SourceError
from tests.conftest import shared


@pytest.fixture(scope="module")
def resolver() -> GeoResolver:
    return GeoResolver()


# Kinds.


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.10.20", "private"),
        ("100.64.0.1", "private"),  # carrier-grade NAT
        ("100.127.255.255", "private"),
        ("fd12:3456::1", "private"),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("203.0.113.10", "reserved"),  # documentation ranges: the fixtures use them
        ("198.51.100.7", "reserved"),
        ("192.0.2.1", "reserved"),
        ("2001:db8::1", "reserved"),
        ("0.0.0.0", "reserved"),
        ("255.255.255.255", "reserved"),
        ("224.0.0.251", "reserved"),
        ("198.18.0.1", "reserved"),
        ("::", "reserved"),
        ("ff02::1", "reserved"),
        ("ec2.amazonaws.com", "aws-service"),
        ("cloudtrail.amazonaws.com", "aws-service"),
        ("S3.AMAZONAWS.COM", "aws-service"),
        ("s3.cn-north-1.amazonaws.com.cn", "aws-service"),
        ("AWS Internal", "aws-internal"),
        ("aws internal", "aws-internal"),
        ("example.com", "invalid"),
        ("amazonaws.com", "invalid"),
        ("evil.amazonaws.com.attacker.net", "invalid"),
        ("not an ip", "invalid"),
        ("1.2.3.4.5", "invalid"),
        ("256.1.1.1", "invalid"),
        ("1.2.3.4\x00", "invalid"),
        ("1.2.3.4/24", "invalid"),
        ("", "missing"),
        ("   ", "missing"),
        (None, "missing"),
        ("8.8.8.8", "public"),
        (" 8.8.8.8\n", "public"),
        ("172.32.0.1", "public"),
        ("100.128.0.1", "public"),
        ("2001:4860:4860::8888", "public"),
    ],
)
def test_kinds(value: str | None, kind: str) -> None:
    assert classify(value)[0] == kind
    assert kind in KINDS


def test_special_addresses_are_never_looked_up(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_lookup() -> None:
        raise AssertionError("looked up a non-public address")

    monkeypatch.setattr(geo, "geoip2fast_reader", no_lookup)
    values = ["10.0.0.1", "100.64.1.1", "fc00::1", "127.0.0.1", "169.254.1.1", "203.0.113.5", "198.51.100.1",
              "192.0.2.44", "ec2.amazonaws.com", "AWS Internal", "junk", "", None, "010.000.000.001"]
    resolver = GeoResolver()
    for value in values:
        info = resolver.lookup(value)
        assert info.kind != "public"
        assert (info.country_code, info.country, info.asn, info.aso, info.latitude, info.location) == (
            None, None, None, None, None, None)


def test_zero_padded_ipv4_is_normalized(resolver: GeoResolver) -> None:
    padded = resolver.lookup("035.249.253.232")
    plain = resolver.lookup("35.249.253.232")
    assert padded.ip == "035.249.253.232"  # as given
    assert padded.address == "35.249.253.232"
    assert padded.kind == "public"
    assert padded.country_code is not None
    assert (padded.country_code, padded.aso, padded.latitude) == (plain.country_code, plain.aso, plain.latitude)
    assert resolver.lookup("010.000.000.001").kind == "private"
    assert resolver.lookup("203.000.113.009").kind == "reserved"


# geoip2fast: country and AS organization.


def test_well_known_public_ipv4(resolver: GeoResolver) -> None:
    info = resolver.lookup("8.8.8.8")
    assert info.kind == "public"
    assert (info.country_code, info.country) == ("US", "United States")
    assert info.aso == "GOOGLE"  # AS15169; geoip2fast names the organization but has no AS numbers
    assert info.asn is None
    assert (info.latitude, info.longitude) == (37.1, -95.7)  # the US centroid: no city database
    assert info.location_source == "country-centroid"
    assert info.city is None
    assert info.location == "United States"


def test_second_public_ipv4_has_a_country(resolver: GeoResolver) -> None:
    info = resolver.lookup("92.55.146.245")
    assert info.kind == "public"
    assert info.country_code in country_centroids()  # RO (Prime Telecom) in geoip2fast 1.2.2's data
    assert info.country
    assert info.aso
    assert info.location_source == "country-centroid"


def test_public_ipv6_and_mapped_ipv4(resolver: GeoResolver) -> None:
    info = resolver.lookup("2001:4860:4860::8888")
    assert (info.kind, info.country_code, info.aso) == ("public", "US", "GOOGLE")
    mapped = resolver.lookup("::ffff:8.8.8.8")
    assert (mapped.kind, mapped.address, mapped.country_code) == ("public", "8.8.8.8", "US")
    assert resolver.lookup("::ffff:10.0.0.1").kind == "private"


def test_lookups_are_cached(resolver: GeoResolver) -> None:
    assert resolver.lookup("1.1.1.1") is resolver.lookup("1.1.1.1")


def test_region_code_without_centroid(monkeypatch: pytest.MonkeyPatch) -> None:
    """GeoLite2 gives some networks only a continent (EU, ASIA): a country name but no place."""
    found = SimpleNamespace(country_code="EU", country_name="Europe", asn_name="<unknown>", is_private=False)
    monkeypatch.setattr(geo, "geoip2fast_reader", lambda: SimpleNamespace(lookup=lambda ip: found))
    info = GeoResolver().lookup("8.8.8.8")
    assert (info.country_code, info.country, info.aso) == ("EU", "Europe", None)
    assert (info.latitude, info.longitude, info.location_source) == (None, None, None)
    assert info.location == "Europe"


def test_geoip2fast_special_range_is_reserved(monkeypatch: pytest.MonkeyPatch) -> None:
    found = SimpleNamespace(country_code="--", country_name="Reserved", asn_name="IANA.ORG", is_private=True)
    monkeypatch.setattr(geo, "geoip2fast_reader", lambda: SimpleNamespace(lookup=lambda ip: found))
    assert GeoResolver().lookup("8.8.8.8").kind == "reserved"


def test_location_property() -> None:
    assert GeoInfo("1.2.3.4", "public", "DE", "Germany", city="Berlin").location == "Berlin, Germany"
    assert GeoInfo("1.2.3.4", "public", "DE", "Germany").location == "Germany"
    assert GeoInfo("1.2.3.4", "public").location is None


# Hostile input.


@pytest.mark.parametrize(
    "value",
    [
        "1" * 100_000,
        "8.8.8.8" + " " * 10_000 + "x",
        "\x1b[31m8.8.8.8\x1b[0m",
        "[red]8.8.8.8[/red]",
        "fe80::1%\x00\x1b[2J",
        "fe80::1%" + "z" * 1000,
        "::ffff:999.1.1.1",
        "1.2.3.4%eth0",
        "\u202e8.8.8.8",
        "８.８.８.８",  # fullwidth digits
        "0x08080808",
        "134744072",
        "ec2.amazonaws.com\x00",
        b"8.8.8.8",
        12345,
    ],
)
def test_hostile_values_never_raise(resolver: GeoResolver, value: object) -> None:
    info = resolver.lookup(value)  # type: ignore[arg-type]
    assert info.kind in KINDS
    assert len(info.ip) <= 260


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=80), st.ip_addresses().map(str), st.none()))
def test_any_value_gets_a_kind(value: str | None) -> None:
    info = GeoResolver().lookup(value)
    assert info.kind in KINDS
    if info.kind == "public":
        assert info.address is not None
        assert ipaddress.ip_address(info.address).is_global


# frame().


def test_frame_one_row_per_distinct_value(resolver: GeoResolver) -> None:
    values = ["8.8.8.8", "10.0.0.1", "8.8.8.8", None, "ec2.amazonaws.com", "035.249.253.232", None, " 8.8.8.8"]
    df = resolver.frame(values)
    assert df.schema == pl.Schema(FRAME_SCHEMA)
    assert list(df.columns) == ["ip", "ip_kind", "country_code", "country", "asn", "aso", "city", "latitude",
                                "longitude", "location"]
    assert df["ip"].to_list() == ["8.8.8.8", "10.0.0.1", None, "ec2.amazonaws.com", "035.249.253.232", " 8.8.8.8"]
    assert df["ip_kind"].to_list() == ["public", "private", "missing", "aws-service", "public", "public"]
    google = df.row(0, named=True)
    assert (google["country_code"], google["aso"], google["location"]) == ("US", "GOOGLE", "United States")
    assert google["asn"] is None
    assert df.filter(pl.col("ip") == "10.0.0.1")["location"].to_list() == [None]


def test_frame_from_series_and_empty(resolver: GeoResolver) -> None:
    series = pl.Series("src_ip", ["8.8.8.8", "8.8.8.8", None, "AWS Internal"], dtype=pl.String)
    df = resolver.frame(series)
    assert df["ip"].to_list() == ["8.8.8.8", None, "AWS Internal"]
    assert df["ip_kind"].to_list() == ["public", "missing", "aws-internal"]
    empty = resolver.frame([])
    assert empty.height == 0
    assert empty.schema == pl.Schema(FRAME_SCHEMA)


def test_frame_joins_back_on_the_source_column(resolver: GeoResolver) -> None:
    events = pl.DataFrame({"src_ip": ["8.8.8.8", "203.0.113.5", "8.8.8.8", None]})
    joined = events.join(resolver.frame(events["src_ip"]), left_on="src_ip", right_on="ip", how="left")
    assert joined["ip_kind"].to_list() == ["public", "reserved", "public", None]


# Real data (../shared/data).


def _source_ips(folder: Path) -> list[str]:
    values: dict[str, None] = {}
    for path in sorted(folder.rglob("*.json")):
        for match in re.finditer(rb'"sourceIPAddress"\s*:\s*"([^"]{0,100})"', path.read_bytes()):
            values[match.group(1).decode("utf-8", "replace")] = None
    return list(values)


def test_real_cloudtrail_source_addresses(resolver: GeoResolver) -> None:
    stratus = resolver.frame(_source_ips(shared("stratus-detonation-logs")))
    # anonymised: zero-padded, and about half moved into 240.0.0.0/4 and multicast
    assert set(stratus["ip_kind"]) == {"public", "reserved"}
    public = stratus.filter(pl.col("ip_kind") == "public")
    assert public["country_code"].null_count() == 0
    assert public["location"].null_count() == 0
    padded = resolver.lookup("075.050.255.67")
    assert (padded.address, padded.country_code) == ("75.50.255.67", "US")
    invictus = resolver.frame(_source_ips(shared("invictus-aws-dataset")))
    kinds = dict(zip(invictus["ip"], invictus["ip_kind"], strict=True))
    assert kinds["AWS Internal"] == "aws-internal"
    assert kinds["192.168.10.20"] == "private"
    assert {kinds[value] for value in kinds if value.endswith(".amazonaws.com")} == {"aws-service"}
    attacker = resolver.lookup("92.55.146.245")  # panther-samples/compromised-root-creds
    assert attacker.country_code is not None


# The city database.

_CITY = {
    "city": {"names": {"en": "Mountain View", "de": "Mountain View"}},
    "country": {"iso_code": "US", "names": {"en": "United States"}},
    "location": {"latitude": 37.386, "longitude": -122.0838, "accuracy_radius": 1000},
}
_COUNTRY_ONLY = {"registered_country": {"iso_code": "RO", "names": {"en": "Romania"}}}
_ASN = {"autonomous_system_number": 13335, "autonomous_system_organization": "Cloudflare, Inc."}
_ODD = {"country": {"iso_code": "DE"}, "location": {"latitude": float("nan"), "longitude": 500.0}}


def test_city_database(tmp_path: Path) -> None:
    path = tmp_path / "GeoLite2-City.mmdb"
    networks = [("8.8.8.0/24", _CITY), ("92.55.146.0/24", _COUNTRY_ONLY), ("1.1.1.0/24", _ASN), ("9.9.8.0/24", _ODD)]
    write_mmdb(path, networks)
    resolver = GeoResolver(path)
    city = resolver.lookup("8.8.8.8")
    assert (city.city, city.country_code, city.country) == ("Mountain View", "US", "United States")
    assert (city.latitude, city.longitude, city.location_source) == (37.4, -122.1, "city-db")
    assert city.location == "Mountain View, United States"
    assert city.aso == "GOOGLE"  # still from geoip2fast
    country_only = resolver.lookup("092.055.146.245")
    assert (country_only.country_code, country_only.city) == ("RO", None)
    assert (country_only.latitude, country_only.longitude) == country_centroids()["RO"][:2]
    assert country_only.location_source == "country-centroid"
    asn = resolver.lookup("1.1.1.1")
    assert (asn.asn, asn.aso) == (13335, "Cloudflare, Inc.")
    assert asn.location_source == "country-centroid"  # country from geoip2fast
    absent = resolver.lookup("9.9.9.9")  # not in the database: geoip2fast only
    assert (absent.city, absent.location_source) == (None, "country-centroid")
    odd = resolver.lookup("9.9.8.1")  # the database's country wins; its impossible coordinates do not
    assert (odd.country_code, odd.country) == ("DE", "Germany")
    assert (odd.latitude, odd.longitude, odd.location_source) == (*country_centroids()["DE"][:2], "country-centroid")
    v6 = resolver.lookup("2001:4860:4860::8888")  # an IPv4-only database is not asked about IPv6
    assert (v6.country_code, v6.city) == ("US", None)
    df = resolver.frame(["8.8.8.8", "1.1.1.1"])
    assert df["city"].to_list() == ["Mountain View", None]
    assert df["asn"].to_list() == [None, 13335]
    assert resolver.db_errors == 0
    resolver.close()


def test_ipv6_city_database_answers_ipv4_too(tmp_path: Path) -> None:
    path = tmp_path / "v6.mmdb"
    write_mmdb(path, [("::808:800/120", _CITY), ("2001:4860::/32", _CITY)], ip_version=6)
    resolver = GeoResolver(str(path))
    assert resolver.lookup("8.8.8.8").city == "Mountain View"
    assert resolver.lookup("2001:4860:4860::8888").location == "Mountain View, United States"


def test_damaged_city_database_does_not_raise_on_lookup(tmp_path: Path) -> None:
    path = tmp_path / "damaged.mmdb"
    write_mmdb(path, [("8.8.8.0/24", _CITY)], damage_data=True)
    resolver = GeoResolver(path)
    info = resolver.lookup("8.8.8.8")
    assert (info.country_code, info.city, info.location_source) == ("US", None, "country-centroid")
    assert resolver.db_errors == 1


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("GeoLite2-City.mmdb", b"this is not a MaxMind database\n" * 10),
        ("empty.mmdb", b""),
        ("GeoLite2-City.tar.gz", b"\x1f\x8b\x08\x00" + bytes(200)),
    ],
)
def test_not_a_city_database(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(SourceError) as caught:
        GeoResolver(path)
    assert str(path) in str(caught.value)
    assert "MaxMind" in str(caught.value)


def test_missing_city_database(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist") as caught:
        GeoResolver(tmp_path / "nope.mmdb")
    assert "nope.mmdb" in str(caught.value)
    with pytest.raises(SourceError, match="is a folder"):
        GeoResolver(tmp_path)


# The centroid table.


def _centroid_rows() -> list[dict[str, str]]:
    text = resources.files("sleuth").joinpath("data/country_centroids.csv").read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


def test_centroid_rows_are_valid_and_unique() -> None:
    rows = _centroid_rows()
    assert list(rows[0]) == ["country_code", "latitude", "longitude", "name"]
    codes = [row["country_code"] for row in rows]
    assert len(codes) == len(set(codes))
    assert codes == sorted(codes)
    for row in rows:
        assert len(row["country_code"]) == 2 and row["country_code"].isascii() and row["country_code"].isupper()
        latitude, longitude = float(row["latitude"]), float(row["longitude"])
        assert -90 <= latitude <= 90 and -180 <= longitude <= 180, row
        assert row["latitude"] == f"{latitude:.1f}" and row["longitude"] == f"{longitude:.1f}", row
        assert row["name"].strip() == row["name"] and row["name"], row
    assert len(rows) >= 249  # ISO 3166-1 assigns 249 codes; XK (Kosovo) is used by GeoLite2 too


def test_centroids_cover_every_country_geoip2fast_returns() -> None:
    import geoip2fast.geoip2fast as data

    geo.geoip2fast_reader()  # loads its tables into the module
    codes = {code for code in data.geoipCountryNamesDict if len(code) == 2 and code.isalpha()}
    assert len(codes) > 240
    # EU is a continent-level answer (no country), deliberately without a place: see test_region_code_...
    assert codes - set(country_centroids()) == {"EU"}


def test_a_few_centroids_are_where_they_should_be() -> None:
    table = country_centroids()
    assert table["US"][:2] == (37.1, -95.7)
    assert 47 < table["DE"][0] < 55 and 6 < table["DE"][1] < 15
    assert table["AU"][0] < 0 and table["AU"][1] > 110
    assert table["BR"][0] < 0 and table["BR"][1] < -30
    assert table["JP"][1] > 130 and table["NZ"][0] < -30


# A tiny MaxMind DB writer (format 2.0: https://maxmind.github.io/MaxMind-DB/), enough for tests.


def _control(kind: int, size: int) -> bytes:
    if size < 29:
        first, extra = size, b""
    elif size < 285:
        first, extra = 29, bytes([size - 29])
    else:
        first, extra = 30, (size - 285).to_bytes(2, "big")
    head = bytes([(kind << 5) | first]) if kind <= 7 else bytes([first, kind - 7])
    return head + extra


def _encode(value: object) -> bytes:
    if isinstance(value, str):
        data = value.encode()
        return _control(2, len(data)) + data
    if isinstance(value, float):
        return _control(3, 8) + struct.pack(">d", value)
    if isinstance(value, tuple):  # (type, number): uint16 = 5, uint32 = 6, uint64 = 9
        kind, number = value
        data = number.to_bytes((number.bit_length() + 7) // 8, "big")
        return _control(kind, len(data)) + data
    if isinstance(value, int):
        return _encode((6, value))
    if isinstance(value, dict):
        return _control(7, len(value)) + b"".join(_encode(key) + _encode(item) for key, item in value.items())
    if isinstance(value, list):
        return _control(11, len(value)) + b"".join(_encode(item) for item in value)
    raise TypeError(value)


def write_mmdb(path: Path, records: list[tuple[str, dict]], ip_version: int = 4, damage_data: bool = False) -> None:
    """A MaxMind DB with `records` (non-overlapping networks); 24-bit records."""
    bits = 32 if ip_version == 4 else 128
    nodes: list[list] = [[None, None]]
    data = bytearray()
    for text, record in records:
        network = ipaddress.ip_network(text)
        offset = len(data)
        data += b"\xff" * len(_encode(record)) if damage_data else _encode(record)
        number, node = int(network.network_address), 0
        for depth in range(network.prefixlen):
            bit = (number >> (bits - 1 - depth)) & 1
            if depth == network.prefixlen - 1:
                nodes[node][bit] = ("data", offset)
            else:
                if nodes[node][bit] is None:
                    nodes.append([None, None])
                    nodes[node][bit] = len(nodes) - 1
                node = nodes[node][bit]
    count = len(nodes)

    def pointer(entry: object) -> int:
        if entry is None:
            return count  # no data
        if isinstance(entry, tuple):
            return count + 16 + entry[1]
        return entry  # type: ignore[return-value]

    tree = b"".join(pointer(left).to_bytes(3, "big") + pointer(right).to_bytes(3, "big") for left, right in nodes)
    metadata = {
        "node_count": (6, count),
        "record_size": (5, 24),
        "ip_version": (5, ip_version),
        "database_type": "GeoLite2-City",
        "languages": ["en"],
        "binary_format_major_version": (5, 2),
        "binary_format_minor_version": (5, 0),
        "build_epoch": (9, 1_700_000_000),
        "description": {"en": "sleuth test database"},
    }
    path.write_bytes(tree + bytes(16) + bytes(data) + b"\xab\xcd\xefMaxMind.com" + _encode(metadata))
