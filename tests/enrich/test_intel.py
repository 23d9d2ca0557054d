"""sleuth.enrich.intel: plain and CSV threat-intel lists, CIDR containment, bad lines, hostile content."""

from __future__ import annotations

import ipaddress
import tempfile
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sleuth.enrich import PrefixTable
from sleuth.enrich.intel import FRAME_SCHEMA, IntelList
from sleuth.errors import SourceError

TEXT_LIST = """\
# Known bad addresses, one per line
# maintained by the SOC

198.51.100.23
203.0.113.0/24   # scanner range
  192.0.2.7  tor exit node, seen 2026-11-01
10.20.0.0/16 ; SBL123456
2001:db8:bad::/48
2001:db8::dead:beef
085.009.001.002
evil.example.com
d41d8cd98f00b204e9800998ecf8427e
1.2.3.4/33
0.0.0.0/0
not an address at all
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def text_list(tmp_path: Path) -> Path:
    return write(tmp_path / "soc-blocklist.txt", TEXT_LIST)


def test_text_list(text_list: Path) -> None:
    intel = IntelList.load([text_list])
    assert len(intel) == 7
    assert intel.loaded == {str(text_list): 7}
    # a host name, a hash, a /33, a /0 and a sentence
    assert intel.skipped == {str(text_list): 5}
    reason = "listed in soc-blocklist.txt"
    assert intel.match("198.51.100.23") == reason
    assert intel.match("198.51.100.24") is None
    assert intel.match("192.0.2.7") == reason  # trailing text ignored
    assert intel.match("85.9.1.2") == reason  # zero-padded in the list
    assert intel.match("085.009.001.002") == reason  # and in the query


def test_cidr_containment(text_list: Path) -> None:
    intel = IntelList.load([text_list])
    assert intel.match("203.0.113.0")
    assert intel.match("203.0.113.255")
    assert intel.match("203.000.113.077")  # zero-padded query
    assert intel.match("203.0.114.0") is None
    assert intel.match("203.0.112.255") is None
    assert intel.match("10.20.255.1")
    assert intel.match("10.21.0.1") is None
    assert intel.match("::ffff:203.0.113.9")  # IPv4-mapped IPv6


def test_ipv6(text_list: Path) -> None:
    intel = IntelList.load([text_list])
    assert intel.match("2001:db8:bad::1")
    assert intel.match("2001:DB8:BAD:FFFF:FFFF:FFFF:FFFF:FFFF")
    assert intel.match("2001:db8:bae::1") is None
    assert intel.match("2001:db8::dead:beef")
    assert intel.match("2001:0db8:0000:0000:0000:0000:dead:beef")
    assert intel.match("2001:db8::dead:bef0") is None
    assert intel.match("2001:db8:bad::1%eth0")


@pytest.mark.parametrize("value", [None, "", "junk", "ec2.amazonaws.com", "AWS Internal", "1" * 10_000, "203.0.113"])
def test_no_match_for_non_addresses(text_list: Path, value: str | None) -> None:
    assert IntelList.load([text_list]).match(value) is None


def test_csv_with_reason_column(tmp_path: Path) -> None:
    path = write(
        tmp_path / "threats.csv",
        "first_seen,IP Address,Port,Description\n"
        '2026-11-01,198.51.100.23,443,"Cobalt Strike C2, high confidence"\n'
        "2026-11-02,203.0.113.0/25,22,SSH brute force\n"
        "2026-11-02,203.0.113.200,22,\n"  # empty reason: the default
        "2026-11-03,bad.example.com,80,phishing\n"  # not an address: skipped
        "2026-11-03\n"  # short row: skipped
        "# a comment inside the CSV\n"
        "\n",
    )
    intel = IntelList.load([path])
    assert len(intel) == 3
    assert intel.skipped == {str(path): 2}
    assert intel.match("198.51.100.23") == "Cobalt Strike C2, high confidence"
    assert intel.match("203.0.113.127") == "SSH brute force"
    assert intel.match("203.0.113.128") is None
    assert intel.match("203.0.113.200") == "listed in threats.csv"
    assert intel.match("2026-11-01") is None


def test_csv_with_commented_header_and_quotes(tmp_path: Path) -> None:
    """abuse.ch-style: banner comments, quoted cells, the address in dst_ip, the reason in malware."""
    path = write(
        tmp_path / "ipblocklist.csv",
        "################################################################\n"
        "# abuse.ch Feodo Tracker Botnet C2 IP Blocklist (CSV)          #\n"
        "################################################################\n"
        "#\n"
        '# "first_seen_utc","dst_ip","dst_port","c2_status","last_online","malware"\n'
        '"2026-01-17 07:44:46","198.51.100.99","443","online","2026-11-27","QakBot"\n'
        '"2026-01-18 07:44:46","198.51.100.100","8080","offline","2026-11-20","Emotet"\n'
        "# Number of entries: 2\n",
    )
    intel = IntelList.load([path])
    assert len(intel) == 2
    assert intel.skipped == {}
    assert intel.match("198.51.100.99") == "QakBot"
    assert intel.match("198.51.100.100") == "Emotet"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("ip\tthreat\n198.51.100.5\tscanner\n", "scanner"),
        ("indicator;tags\n198.51.100.5;tor,exit\n", "tor,exit"),
        ("ioc|comment\n198.51.100.5|seen in phishing\n", "seen in phishing"),
        ("ip\n198.51.100.5\n", "listed in list.csv"),
        ("value,category\n198.51.100.5,botnet\n", "botnet"),
        ("src_ip,count\n198.51.100.5,10\n", "listed in list.csv"),
    ],
)
def test_csv_dialects(tmp_path: Path, text: str, reason: str) -> None:
    intel = IntelList.load([write(tmp_path / "list.csv", text)])
    assert intel.match("198.51.100.5") == reason
    assert intel.skipped == {}


def test_headerless_csv_is_a_plain_list(tmp_path: Path) -> None:
    path = write(tmp_path / "plain.csv", "198.51.100.5,scanner\n198.51.100.6;other\n198.51.100.7|x\n")
    intel = IntelList.load([path])
    assert len(intel) == 3
    assert intel.match("198.51.100.6") == "listed in plain.csv"


def test_reason_is_one_line_and_bounded(tmp_path: Path) -> None:
    path = write(tmp_path / "l.csv", 'ip,reason\n198.51.100.5,"line one\nline two\t\x0b  ' + "x" * 500 + '"\n')
    reason = IntelList.load([path]).match("198.51.100.5")
    assert reason is not None
    assert reason.startswith("line one line two x")
    assert "\n" not in reason and len(reason) <= 200


def test_most_specific_network_wins(tmp_path: Path) -> None:
    path = write(tmp_path / "l.csv", "ip,reason\n10.0.0.0/8,whole\n10.1.0.0/16,part\n10.1.2.3,host\n")
    intel = IntelList.load([path])
    assert intel.match("10.1.2.3") == "host"
    assert intel.match("10.1.2.4") == "part"
    assert intel.match("10.2.0.0") == "whole"


def test_first_listing_wins_across_files(tmp_path: Path) -> None:
    first = write(tmp_path / "a.csv", "ip,reason\n198.51.100.5,from a\n")
    second = write(tmp_path / "b.txt", "198.51.100.5\n198.51.100.6\n")
    intel = IntelList.load([first, second])
    assert len(intel) == 2
    assert intel.match("198.51.100.5") == "from a"
    assert intel.match("198.51.100.6") == "listed in b.txt"
    assert intel.loaded == {str(first): 1, str(second): 2}


def test_frame(tmp_path: Path) -> None:
    first = write(tmp_path / "a.csv", "ip,reason\n198.51.100.0/24,scanner\n")
    second = write(tmp_path / "b.txt", "2001:db8::1\n")
    intel = IntelList.load([first, second])
    values = ["198.51.100.5", "8.8.8.8", "198.51.100.5", None, "2001:db8::1", "AWS Internal", "198.051.100.006"]
    df = intel.frame(values)
    assert df.schema == pl.Schema(FRAME_SCHEMA)
    assert df.rows() == [
        ("198.51.100.5", "scanner", "a.csv"),
        ("2001:db8::1", "listed in b.txt", "b.txt"),
        ("198.051.100.006", "scanner", "a.csv"),  # as given, to join back
    ]
    assert intel.frame(pl.Series(["198.51.100.1", "198.51.100.1"])).height == 1


def test_empty_list() -> None:
    intel = IntelList.load([])
    assert len(intel) == 0
    assert not intel
    assert intel.match("198.51.100.5") is None
    df = intel.frame(["198.51.100.5"])
    assert df.height == 0 and df.schema == pl.Schema(FRAME_SCHEMA)


def test_one_path_not_in_a_list(text_list: Path) -> None:
    assert len(IntelList.load(str(text_list))) == 7  # type: ignore[arg-type]


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    with pytest.raises(SourceError, match="does not exist") as caught:
        IntelList.load([missing])
    assert str(missing) in str(caught.value)
    assert caught.value.fix


def test_folder(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="is a folder") as caught:
        IntelList.load([tmp_path])
    assert str(tmp_path) in str(caught.value)


def test_unreadable_file(tmp_path: Path) -> None:
    parent = write(tmp_path / "a-file.txt", "198.51.100.5\n")
    path = parent / "list.txt"  # under a file: NotADirectoryError, even for root
    with pytest.raises(SourceError, match="cannot read") as caught:
        IntelList.load([path])
    assert str(path) in str(caught.value)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000) | st.text(max_size=500).map(str.encode))
def test_any_content_loads(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.csv"
        path.write_bytes(content)
        intel = IntelList.load([path])
    intel.match("198.51.100.6")
    assert len(intel) <= sum(intel.loaded.values())


@pytest.mark.parametrize(
    "content",
    [
        b"\x00\x01\x02\xff\xfe" * 1000,
        b"\xff\xfe1\x002\x00",  # UTF-16
        b"198.51.100.5\n" + b"A" * 300_000 + b"\n198.51.100.6\n",
        b"ip,reason\n198.51.100.5,\"" + b"x" * 300_000 + b"\"\n198.51.100.6,ok\n",
        b'ip,reason\n"198.51.100.5,unterminated\n198.51.100.6,ok\n',
        b"ip,reason\n198.51.100.5\x00,nul\n198.51.100.6,ok\n",
        b"\xef\xbb\xbfip,reason\r\n198.51.100.6,ok\r\n",  # BOM and CRLF
        b"#" * 10_000,
        b"\n" * 10_000,
        b"1.2.3.4/" + b"9" * 5000 + b"\n",
        b"fe80::1%" + b"\x1b[31m" * 100 + b"\n",
        b"[red]198.51.100.6[/red]\n198.51.100.6\n",
    ],
)
def test_hostile_content_never_raises(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "hostile.txt"
    path.write_bytes(content)
    intel = IntelList.load([path])
    assert len(intel) <= 2
    intel.match("198.51.100.6")
    intel.frame(["198.51.100.5", "198.51.100.6", None])


def test_bom_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "l.csv"
    path.write_bytes(b"\xef\xbb\xbfip,reason\r\n198.51.100.6,ok\r\n")
    assert IntelList.load([path]).match("198.51.100.6") == "ok"


def test_defanged_addresses(tmp_path: Path) -> None:
    intel = IntelList.load([write(tmp_path / "l.txt", "198.51.100[.]5\n2001:db8[:]:7\n")])
    assert intel.match("198.51.100.5")
    assert intel.match("2001:db8::7")


def test_many_entries(tmp_path: Path) -> None:
    """A large list: hosts and networks of several lengths; every one found, neighbours not."""
    lines, hosts = [], []
    for index in range(20_000):
        address = ipaddress.IPv4Address(0x0B000000 + index * 4096)  # 11.0.0.0 onwards, 4096 apart
        if index % 2:
            lines.append(f"{address}/24")
        else:
            lines.append(str(address + 7))
            hosts.append(address + 7)
    intel = IntelList.load([write(tmp_path / "big.txt", "\n".join(lines))])
    assert len(intel) == 20_000
    assert intel.skipped == {}
    assert all(intel.match(str(host)) for host in hosts[:2000])
    assert not any(intel.match(str(host + 1)) for host in hosts[:2000])
    assert intel.match(str(ipaddress.IPv4Address(0x0B000000 + 4096 + 255)))
    assert intel.match(str(ipaddress.IPv4Address(0x0B000000 + 4096 + 256))) is None


def test_prefix_table() -> None:
    table: PrefixTable[str] = PrefixTable()
    assert table.add(ipaddress.ip_network("10.0.0.0/8"), "a")
    assert not table.add(ipaddress.ip_network("10.0.0.0/8"), "b")
    assert table.add(ipaddress.ip_network("10.0.0.0/8"), "c", replace=True)
    table.add(ipaddress.ip_network("::/0"), "any6")
    assert len(table) == 2
    assert table.get(ipaddress.ip_address("10.255.255.255")) == "c"
    assert table.get(ipaddress.ip_address("11.0.0.0")) is None
    assert table.get(ipaddress.ip_address("2001:db8::1")) == "any6"
