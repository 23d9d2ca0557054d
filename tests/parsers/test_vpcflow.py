"""The VPC Flow Logs parser: AWS's documented examples, every format, broken lines, Parquet, fuzzing."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from unittest import mock

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sleuth import schema
from sleuth.config import Config
from sleuth.parsers import vpcflow
from tests.conftest import FIXTURES, SHAPES, shared

CONFIG = Config()
VPC = FIXTURES / "vpcflow"
CUSTOM_FORMAT = (  # the format of fixtures/vpcflow/custom-v5.log (see make.py)
    "${version} ${account-id} ${region} ${vpc-id} ${subnet-id} ${instance-id} ${interface-id} "
    "${flow-direction} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${pkt-srcaddr} ${pkt-dstaddr} "
    "${protocol} ${packets} ${bytes} ${start} ${end} ${action} ${tcp-flags} ${traffic-path} ${log-status}"
)
S3_KEY = (
    "bucket/AWSLogs/123456789012/vpcflowlogs/eu-west-1/2026/03/04/"
    "123456789012_vpcflowlogs_eu-west-1_fl-0123456789abcdef0_20260304T1005Z_0a1b2c3d.log.gz"
)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def parse(data: bytes | str, config: Config = CONFIG, origin: str = "test"):
    if isinstance(data, str):
        data = data.encode()
    result = vpcflow.parse(data, origin, config)
    check_result(result)
    return result


def check_result(result) -> None:
    """The contract every parse keeps: exact accounting and canonical columns."""
    assert result.read == result.kept + sum(result.skipped.values())
    flows, status = result.frames["flows"], result.frames["flow_status"]
    assert flows.schema == pl.Schema(schema.FLOWS)
    assert status.schema == pl.Schema(schema.FLOW_STATUS)
    assert len(flows) + len(status) == result.kept
    if result.error:
        assert result.read == result.kept == 0


def rows(result, frame: str = "flows") -> list[dict]:
    return result.frames[frame].to_dicts()


# ---------------------------------------------------------------------------------------------
# AWS's own examples (VPC User Guide, "Flow log record examples") and a real incident sample.


def test_doc_example_v2_default_with_header():
    result = parse((shared("vpcflow-doc-examples") / "v2-default.log").read_bytes())
    assert (result.read, result.kept, result.error, result.warnings) == (7, 7, None, [])
    flows = rows(result)
    assert len(flows) == 5
    ssh = flows[0]
    assert (ssh["src_addr"], ssh["dst_addr"], ssh["src_port"], ssh["dst_port"]) == (
        "172.31.16.139",
        "172.31.16.21",
        20641,
        22,
    )
    assert (ssh["protocol"], ssh["packets"], ssh["bytes"], ssh["action"], ssh["log_status"]) == (
        6,
        20,
        4249,
        "ACCEPT",
        "OK",
    )
    assert (ssh["start"], ssh["end"]) == (utc(2014, 12, 14, 4, 6, 50), utc(2014, 12, 14, 4, 7, 50))
    assert (ssh["account"], ssh["interface_id"], ssh["region"]) == ("123456789010", "eni-1235b8ca123456789", None)
    rdp = flows[1]
    assert (rdp["src_addr"], rdp["dst_port"], rdp["action"]) == ("172.31.9.69", 3389, "REJECT")
    ping = flows[2]
    assert (ping["protocol"], ping["src_port"], ping["dst_port"], ping["bytes"]) == (1, 0, 0, 336)
    ipv6 = flows[4]
    assert ipv6["src_addr"] == "2001:db8:1234:a100:8d6e:3477:df66:f105"
    assert ipv6["dst_addr"] == "2001:db8:1234:a102:3304:8879:34cf:4071"
    assert (ipv6["dst_port"], ipv6["bytes"]) == (22, 8855)
    status = rows(result, "flow_status")
    assert [(r["interface_id"], r["log_status"]) for r in status] == [
        ("eni-1235b8ca123456789", "NODATA"),
        ("eni-11111111aaaaaaaaa", "SKIPDATA"),
    ]
    assert (status[0]["start"], status[0]["end"]) == (utc(2015, 5, 10, 18, 1, 16), utc(2015, 5, 10, 18, 2, 14))


def test_doc_example_v3_tcp_flags_other_order_and_a_double_space():
    result = parse((shared("vpcflow-doc-examples") / "v3-tcp-flags.log").read_bytes())
    assert (result.read, result.kept, dict(result.skipped)) == (8, 8, {})
    flows = rows(result)
    first = flows[0]  # the header puts bytes before packets
    assert (first["bytes"], first["packets"], first["tcp_flags"]) == (568, 8, 2)
    assert (first["instance_id"], first["vpc_id"], first["subnet_id"]) == (
        "i-01234567890123456",
        "vpc-abcdefab012345678",
        "subnet-aaaaaaaa012345678",
    )
    assert (first["pkt_src_addr"], first["pkt_dst_addr"]) == ("52.213.180.42", "10.0.0.62")
    assert [r["tcp_flags"] for r in flows] == [2, 18, 2, 18, 1, 1, 3, 19]
    doubled = flows[-1]  # "5001 43638  10.0.0.62" in the source
    assert (doubled["src_port"], doubled["dst_port"], doubled["pkt_src_addr"], doubled["bytes"]) == (
        5001,
        43638,
        "10.0.0.62",
        967,
    )
    assert max(r["bytes"] for r in flows) == 23294588


def test_doc_example_transit_gateway_has_no_times():
    result = parse((shared("vpcflow-doc-examples") / "v3-transit-gateway.log").read_bytes())
    assert (result.read, result.kept) == (4, 4)
    assert any("no start field" in w for w in result.warnings)
    flows = rows(result)
    assert all(r["start"] is None and r["end"] is None for r in flows)
    assert flows[0]["instance_id"] == "i-01234567890123456"
    assert flows[2]["instance_id"] is None  # "-"
    # srcaddr is the ENI's own address; pkt-srcaddr the original source behind the gateway
    assert (flows[2]["src_addr"], flows[2]["pkt_src_addr"]) == ("10.40.1.175", "10.20.33.164")


def test_doc_example_v5_region_direction_and_flags():
    result = parse((shared("vpcflow-doc-examples") / "v5-traffic-path.log").read_bytes())
    assert (result.read, result.kept) == (2, 2)
    ingress, egress = rows(result)
    assert (ingress["region"], ingress["flow_direction"], ingress["tcp_flags"]) == ("ap-southeast-2", "ingress", 19)
    assert (egress["flow_direction"], egress["dst_addr"], egress["dst_port"], egress["bytes"]) == (
        "egress",
        "52.95.128.179",
        80,
        471,
    )
    assert ingress["instance_id"] == "i-0c50d5961bcb2d47b"
    assert ingress["start"] == utc(2021, 3, 26, 3, 28, 12)


def test_panther_compromised_root_creds_ssh_to_the_attacker():
    result = parse((shared("panther-samples") / "compromised-root-creds" / "vpcflow.log").read_bytes())
    assert (result.read, result.kept, result.error) == (6, 6, None)
    flows = result.frames["flows"]
    assert set(flows["account"]) == {"493859302102"}
    ssh = flows.filter(
        (pl.col("src_addr") == "172.31.77.31") & (pl.col("dst_addr") == "92.55.146.245") & (pl.col("dst_port") == 22)
    )
    assert len(ssh) == 2
    assert ssh["bytes"].sum() == 2 * 1048576
    assert (ssh["start"].min(), ssh["end"].max()) == (utc(2020, 11, 1, 23, 0), utc(2020, 11, 1, 23, 1, 30))
    inbound = flows.filter(pl.col("src_addr") == "92.55.146.245").row(0, named=True)
    assert (inbound["dst_addr"], inbound["dst_port"], inbound["src_port"], inbound["start"]) == (
        "172.31.77.31",
        22,
        48316,
        utc(2020, 11, 1, 21, 35, 44),
    )
    assert flows.filter(pl.col("action") == "REJECT")["dst_addr"].to_list() == ["172.31.77.1"]


# ---------------------------------------------------------------------------------------------
# Synthetic fixtures (fixtures/vpcflow/make.py).


def test_headerless_default_v2_with_nodata_skipdata_ipv6_and_unknown_account():
    result = parse((VPC / "default-v2.log").read_bytes())
    assert (result.read, result.kept, dict(result.skipped), result.warnings) == (9, 9, {}, [])
    flows = result.frames["flows"]
    assert len(flows) == 7
    exfil = flows.filter(pl.col("bytes") > 1_000_000).row(0, named=True)
    assert (exfil["src_addr"], exfil["dst_addr"], exfil["dst_port"], exfil["packets"], exfil["bytes"]) == (
        "10.0.1.25",
        "203.0.113.66",
        443,
        33012,
        48_234_112,
    )
    assert exfil["start"] == utc(2026, 3, 4, 10, 5)
    assert flows.filter(pl.col("action") == "REJECT")["dst_port"].to_list() == [3389, 445]
    assert flows.filter(pl.col("src_addr").str.contains(":"))["dst_addr"].to_list() == ["2001:db8:ffff::66"]
    unknown = flows.filter(pl.col("protocol") == 1).row(0, named=True)
    assert unknown["account"] is None  # AWS writes `unknown`
    status = rows(result, "flow_status")
    assert [(r["log_status"], r["interface_id"], r["account"]) for r in status] == [
        ("NODATA", "eni-0fedcba9876543210", "123456789012"),
        ("SKIPDATA", "eni-0a1b2c3d4e5f67890", "123456789012"),
    ]
    assert (status[0]["start"], status[0]["end"]) == (utc(2026, 3, 4, 10), utc(2026, 3, 4, 10, 10))


@pytest.mark.parametrize("spec", [CUSTOM_FORMAT, CUSTOM_FORMAT.replace("${", "").replace("}", "")])
def test_headerless_custom_format_from_config(spec):
    result = parse((VPC / "custom-v5.log").read_bytes(), Config(vpc_format=spec))
    assert (result.read, result.kept, dict(result.skipped)) == (5, 5, {})
    flows = rows(result)
    assert len(flows) == 4
    first = flows[0]
    assert (first["region"], first["vpc_id"], first["instance_id"], first["flow_direction"]) == (
        "us-east-1",
        "vpc-0aaaabbbbccccdddd",
        "i-0123456789abcdef0",
        "ingress",
    )
    assert (first["src_addr"], first["dst_port"], first["tcp_flags"], first["bytes"]) == ("203.0.113.66", 22, 3, 8613)
    assert flows[2]["bytes"] == 48234112
    assert flows[3]["action"] == "REJECT"
    (status,) = rows(result, "flow_status")
    assert (status["log_status"], status["interface_id"], status["region"]) == (
        "NODATA",
        "eni-0fedcba9876543210",
        "us-east-1",
    )


def test_headerless_custom_format_without_config_is_skipped_with_a_hint():
    result = parse((VPC / "custom-v5.log").read_bytes())
    assert (result.read, result.kept, dict(result.skipped)) == (5, 0, {"wrong field count": 5})
    assert any("set vpc_format" in w for w in result.warnings)


def test_a_header_line_wins_over_the_configured_format():
    result = parse((VPC / "default-v2.log").read_bytes(), Config(vpc_format=CUSTOM_FORMAT))
    assert result.kept == 0  # headerless: the configured (wrong) format is used
    header = " ".join(vpcflow.DEFAULT_FORMAT) + "\n"
    result = parse(header.encode() + (VPC / "default-v2.log").read_bytes(), Config(vpc_format=CUSTOM_FORMAT))
    assert (result.read, result.kept) == (9, 9)


def test_concatenated_files_change_format_at_each_header_line():
    result = parse((VPC / "concatenated.log").read_bytes())
    assert (result.read, result.kept, dict(result.skipped)) == (3, 3, {})
    flows = rows(result)
    assert [r["dst_port"] for r in flows] == [22, 51422, 443]
    assert (flows[2]["bytes"], flows[2]["packets"], flows[2]["instance_id"], flows[2]["tcp_flags"]) == (
        48234112,
        33012,
        "i-0123456789abcdef0",
        19,
    )
    assert flows[0]["instance_id"] is None  # the v2 part has no instance-id field


def test_repeated_header_lines_are_not_records():
    text = (VPC / "crlf.log").read_bytes().replace(b"\r\n", b"\n")
    header, body = text.split(b"\n", 1)
    result = parse(header + b"\n" + body + header + b"\n" + body)
    assert (result.read, result.kept, dict(result.skipped)) == (8, 8, {})


def test_a_format_of_fields_sleuth_does_not_read_still_accounts_for_every_record():
    for data in [b"az-id\n2\n2", b"az-id traffic-path\nuse1-az1 8\nuse1-az2 1\n"]:
        result = parse(data)
        assert (result.read, result.kept, len(result.frames["flows"])) == (2, 2, 2)


def test_bad_lines_are_counted_by_reason():
    result = parse((VPC / "bad-lines.log").read_bytes())
    assert result.read == 10  # the header and the blank line are not records
    assert result.kept == 2
    assert dict(result.skipped) == {
        "wrong field count": 3,
        "non-numeric srcport": 1,
        "out-of-range dstport": 1,
        "non-numeric start": 1,
        "unknown action": 1,
        "unknown log-status": 1,
    }
    flows = rows(result)
    assert [(r["src_addr"], r["dst_port"]) for r in flows] == [("203.0.113.66", 22), ("10.0.1.25", 51422)]


def test_text_holding_every_separator_byte_is_still_split_into_lines():
    data = (VPC / "default-v2.log").read_bytes() + b"\x1f\x1e\x1d\x1c\x01\x02\x7f\n"
    result = parse(data)
    assert (result.read, result.kept, dict(result.skipped)) == (10, 9, {"wrong field count": 1})


def test_windows_line_ends():
    result = parse((VPC / "crlf.log").read_bytes())
    assert (result.read, result.kept) == (4, 4)
    assert rows(result)[-1]["log_status"] == "OK"
    assert rows(result)[0]["dst_port"] == 22


def test_values_out_of_range_and_limits():
    line = (
        "2 123456789012 eni-0a1b2c3d4e5f67890 10.0.1.25 203.0.113.66 {sport} 443 6 10 840 {start} 1772618460 ACCEPT OK"
    )
    text = "\n".join(
        [
            line.format(sport=-1, start=1772618400),
            line.format(sport=80, start=99999999999999),
            line.format(sport=80, start="99999999999999999999999"),
            line.format(sport="8.0", start=1772618400),
            line.format(sport="+80", start=1772618400),
        ]
    )
    result = parse(text)
    assert dict(result.skipped) == {
        "out-of-range srcport": 1,
        "out-of-range start": 1,
        "non-numeric start": 1,
        "non-numeric srcport": 1,
    }
    assert rows(result)[0]["src_port"] == 80
    small = parse(text, Config(max_record_bytes=100))
    assert dict(small.skipped) == {"record too large": 5}


def test_region_and_account_from_the_s3_key_when_the_format_lacks_them():
    result = parse((VPC / "default-v2.log").read_bytes(), origin=S3_KEY)
    assert set(result.frames["flows"]["region"]) == {"eu-west-1"}
    assert set(result.frames["flow_status"]["region"]) == {"eu-west-1"}
    assert None in set(result.frames["flows"]["account"])  # account-id is a field: `unknown` stays null
    spec = "srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"
    line = "10.0.1.25 203.0.113.66 49152 443 6 10 840 1772618400 1772618460 ACCEPT OK\n"
    hive = "b/AWSLogs/aws-account-id=123456789012/aws-service=vpcflowlogs/aws-region=us-west-2/year=2026/f.log"
    for origin, expected in [(S3_KEY, "eu-west-1"), (hive, "us-west-2")]:
        (row,) = rows(parse(line, Config(vpc_format=spec), origin))
        assert (row["account"], row["region"], row["origin"]) == ("123456789012", expected, origin)
    (row,) = rows(parse(line, Config(vpc_format=spec), "/tmp/flows.log"))
    assert (row["account"], row["region"]) == (None, None)


def test_empty_and_header_only_inputs():
    empty = parse(b"")
    assert (empty.read, empty.error) == (0, None)
    assert empty.warnings
    header_only = parse((VPC / "bad-lines.log").read_bytes().split(b"\n")[0] + b"\n")
    assert (header_only.read, header_only.kept, header_only.error) == (0, 0, None)


def test_parse_many_keeps_each_inputs_accounting_and_origin():
    inputs = [
        ((VPC / "default-v2.log").read_bytes(), S3_KEY),
        ((VPC / "bad-lines.log").read_bytes(), "bad-lines.log"),
        (b"\x00\xff garbage \xfe", "garbage.bin"),
        ((VPC / "concatenated.log").read_bytes(), "concatenated.log"),
    ]
    frames, results = vpcflow.parse_many(inputs, CONFIG)
    assert [(r.read, r.kept) for r in results] == [(9, 9), (10, 2), (1, 0), (3, 3)]
    assert dict(results[2].skipped) == {"wrong field count": 1}
    for result in results:
        assert result.read == result.kept + sum(result.skipped.values())
    flows, status = frames["flows"], frames["flow_status"]
    assert dict(flows.group_by("origin").len().rows()) == {S3_KEY: 7, "bad-lines.log": 2, "concatenated.log": 3}
    assert status["origin"].to_list() == [S3_KEY, S3_KEY]
    assert flows.filter(pl.col("origin") == "concatenated.log")["region"].null_count() == 3


def test_the_fast_path_and_the_exact_path_agree_on_every_fixture():
    for path in sorted(VPC.glob("*.log")):
        config = Config(vpc_format=CUSTOM_FORMAT) if "custom" in path.name else CONFIG
        fast = parse(path.read_bytes(), config)
        with mock.patch.object(vpcflow, "_fast", return_value=None):
            exact = parse(path.read_bytes(), config)
        assert (fast.read, fast.kept, fast.skipped) == (exact.read, exact.kept, exact.skipped), path.name
        for frame in vpcflow.FRAMES:
            assert fast.frames[frame].equals(exact.frames[frame]), path.name


def test_well_formed_files_take_the_fast_path():
    data = (VPC / "default-v2.log").read_bytes()
    assert vpcflow._fast(data, vpcflow.DEFAULT_FORMAT, None, CONFIG) is not None
    doubled = data.replace(b" 22 ", b"  22 ", 1)
    assert vpcflow._fast(doubled, vpcflow.DEFAULT_FORMAT, None, CONFIG) is None
    assert parse(doubled).kept == 9


# ---------------------------------------------------------------------------------------------
# Parquet delivery.


def aws_parquet(path=None, underscores: bool = True) -> bytes:
    """A Parquet file typed as AWS writes them (INT32 ports, INT64 counters and times, strings)."""
    name = (lambda n: n.replace("-", "_")) if underscores else (lambda n: n)
    df = pl.DataFrame(
        {
            "version": [5, 5, 5],
            "account-id": ["123456789012", "123456789012", "123456789012"],
            "interface-id": ["eni-0a1b2c3d4e5f67890", "eni-0a1b2c3d4e5f67890", "eni-0fedcba9876543210"],
            "srcaddr": ["10.0.1.25", "203.0.113.66", None],
            "dstaddr": ["203.0.113.66", "10.0.1.25", None],
            "srcport": [49152, 51422, None],
            "dstport": [443, 22, None],
            "protocol": [6, 6, None],
            "packets": [33012, 42, None],
            "bytes": [48234112, 8613, None],
            "start": [1772618700, 1772618400, 1772618400],
            "end": [1772618760, 1772618460, 1772619000],
            "action": ["ACCEPT", "ACCEPT", "-"],
            "log-status": ["OK", "OK", "NODATA"],
            "region": ["us-east-1", "us-east-1", "us-east-1"],
            "tcp-flags": [19, 3, None],
            "ecs-cluster-name": ["-", "-", "-"],
        },
        schema_overrides={
            "version": pl.Int32,
            "srcport": pl.Int32,
            "dstport": pl.Int32,
            "protocol": pl.Int32,
            "tcp-flags": pl.Int32,
        },
    ).rename(name)
    buffer = io.BytesIO()
    df.write_parquet(buffer, compression="gzip")
    if path is not None:
        path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


@pytest.mark.parametrize("underscores", [True, False])
def test_parquet_delivery(tmp_path, underscores):
    path = tmp_path / "123456789012_vpcflowlogs_us-east-1_fl-1_20260304T1005Z_abcd.log.parquet"
    data = aws_parquet(path, underscores)
    assert vpcflow.sniff(data)
    result = parse(path.read_bytes(), origin=str(path))
    assert (result.read, result.kept, result.error) == (3, 3, None)
    exfil, ssh = rows(result)
    assert (exfil["src_addr"], exfil["dst_addr"], exfil["dst_port"], exfil["bytes"], exfil["tcp_flags"]) == (
        "10.0.1.25",
        "203.0.113.66",
        443,
        48234112,
        19,
    )
    assert (exfil["start"], exfil["region"], exfil["origin"]) == (utc(2026, 3, 4, 10, 5), "us-east-1", str(path))
    assert ssh["src_port"] == 51422
    (status,) = rows(result, "flow_status")
    assert (status["log_status"], status["interface_id"]) == ("NODATA", "eni-0fedcba9876543210")


def test_parquet_that_is_not_flow_logs_or_is_broken():
    buffer = io.BytesIO()
    pl.DataFrame({"eventName": ["ListUsers"], "eventTime": ["2026-03-04T10:00:00Z"]}).write_parquet(buffer)
    other = buffer.getvalue()
    assert not vpcflow.sniff(other)
    result = parse(other)
    assert "without VPC flow log columns" in result.error
    data = aws_parquet()
    assert not vpcflow.sniff(data[: len(data) // 2])  # the schema is in the footer
    result = parse(data[: len(data) // 2])
    assert result.error.startswith("unreadable Parquet")
    assert result.read == 0


# ---------------------------------------------------------------------------------------------
# Sniffing.


def test_sniff_accepts_flow_logs():
    for path in sorted(VPC.glob("*.log")):
        assert vpcflow.sniff(path.read_bytes()), path.name
    assert vpcflow.sniff(b"2 unknown - - - - - - - - 1431280876 1431280934 - NODATA\n")
    assert vpcflow.sniff(CUSTOM_FORMAT.encode() + b"\n")  # a header line written as the console format


def test_sniff_accepts_the_doc_examples():
    for path in sorted(shared("vpcflow-doc-examples").iterdir()):
        assert vpcflow.sniff(path.read_bytes()), path.name
        assert vpcflow.sniff(path.read_bytes().split(b"\n", 1)[1]), path.name  # without the header too


@pytest.mark.parametrize("name", sorted(p.name for p in SHAPES.iterdir()))
def test_sniff_rejects_cloudtrail(name):
    assert not vpcflow.sniff((SHAPES / name).read_bytes()[: 64 * 1024])


def test_sniff_rejects_guardduty_and_other_text():
    finding = b'{"schemaVersion": "2.0", "accountId": "123456789012", "type": "Recon:EC2/PortProbeUnprotectedPort"}'
    for head in [
        finding,
        b'[{"detail": {"type": "UnauthorizedAccess:EC2/SSHBruteForce"}}]',
        b"",
        b"\n\n   \n",
        b"hello world, this is not a log",
        b'192.0.2.1 - - [04/Mar/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 512 ACCEPT',
        b"\x00\xff\xfe binary",
        b"PAR1 but not parquet",
    ]:
        assert not vpcflow.sniff(head), head


def test_sniff_rejects_guardduty_samples():
    for path in sorted((shared("guardduty-aws-samples") / "events").iterdir()):
        assert not vpcflow.sniff(path.read_bytes()[: 64 * 1024]), path.name


# ---------------------------------------------------------------------------------------------
# Fuzzing: no input raises, every record is accounted for.

_TOKENS = st.sampled_from(
    [
        "2", "5", "123456789012", "unknown", "eni-0a1b2c3d", "i-0123", "-", "10.0.0.1", "2001:db8::1",
        "22", "443", "6", "0", "70000", "1772618400", "99999999999999999999", "ACCEPT", "REJECT", "OK",
        "NODATA", "SKIPDATA", "version", "srcaddr", "${start}", "account_id", "x", '"', "{", "é", "\t",
    ]
)  # fmt: skip
_LINE = st.lists(st.one_of(_TOKENS, st.text(max_size=6)), min_size=0, max_size=18).map(" ".join)
_FORMATS = st.sampled_from([None, CUSTOM_FORMAT, "srcaddr dstaddr log-status", "nothing-known here", ""])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(data):
    vpcflow.sniff(data)
    parse(data)
    parse(b"PAR1" + data)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_LINE, max_size=12), st.sampled_from(["\n", "\r\n"]), _FORMATS)
def test_arbitrary_lines_never_raise(lines, newline, spec):
    data = newline.join(lines).encode()
    vpcflow.sniff(data)
    result = parse(data, Config(vpc_format=spec or None, max_record_bytes=200))
    assert result.read <= data.count(b"\n") + 1


_GOOD_TOKEN = st.one_of(_TOKENS, st.text(alphabet="0123456789abcdef.:-", min_size=1, max_size=12))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(_GOOD_TOKEN, min_size=14, max_size=14).map(" ".join), min_size=1, max_size=10))
def test_fast_and_exact_paths_agree(lines):
    data = "\n".join(lines).encode()
    fast = parse(data)
    with mock.patch.object(vpcflow, "_fast", return_value=None):
        exact = parse(data)
    assert (fast.read, fast.kept, fast.skipped) == (exact.read, exact.kept, exact.skipped)
    for frame in vpcflow.FRAMES:
        assert fast.frames[frame].equals(exact.frames[frame])
