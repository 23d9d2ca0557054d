"""The CloudTrail parser: every accepted shape, every identity type, and the exact path."""

from __future__ import annotations

import json

import orjson
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sleuth import schema
from sleuth.config import Config
from sleuth.parsers import cloudtrail, cloudtrail_exact
from tests.conftest import SHAPES

CONFIG = Config()


def parse(data: bytes | str | dict | list):
    if not isinstance(data, bytes | str):
        data = json.dumps(data, separators=(",", ":"))
    if isinstance(data, str):
        data = data.encode()
    return cloudtrail.parse(data, "test", CONFIG)


def one(identity: dict, **fields) -> dict:
    result = parse({"Records": [record(identity, **fields)]})
    events = result.frames["events"]
    assert len(events) == 1
    return events.row(0, named=True)


def record(identity: dict, **fields) -> dict:
    base = {
        "eventVersion": "1.08",
        "userIdentity": identity,
        "eventTime": "2026-03-03T10:00:00Z",
        "eventSource": "iam.amazonaws.com",
        "eventName": "ListUsers",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.5",
        "userAgent": "aws-cli/2",
        "eventID": "e-1",
        "readOnly": True,
        "eventType": "AwsApiCall",
        "recipientAccountId": "123456789012",
    }
    return {**base, **fields}


@pytest.mark.parametrize("name", sorted(p.name for p in SHAPES.iterdir()))
def test_every_shape_gives_the_same_events(name):
    reference = parse((SHAPES / "s3-delivery.json").read_bytes()).frames["events"]
    result = parse((SHAPES / name).read_bytes())
    events = result.frames["events"]
    expected = reference.head(len(events))
    assert result.read == len(events) >= 1
    assert events.columns == list(schema.EVENTS)
    assert events.equals(expected), name  # origin_index too: every shape numbers its records alike


def test_compact_files_take_the_fast_path_and_pretty_ones_the_exact_path():
    compact = (SHAPES / "s3-delivery.json").read_bytes()
    assert cloudtrail._fast_blob(compact)[1] == 3
    assert cloudtrail._fast_blob((SHAPES / "pretty-records.json").read_bytes()) is None


def test_root():
    row = one(
        {
            "type": "Root",
            "principalId": "123456789012",
            "arn": "arn:aws:iam::123456789012:root",
            "accountId": "123456789012",
            "accessKeyId": "ASIAROOT",
        }
    )
    assert (row["principal"], row["session"], row["access_key"]) == ("arn:aws:iam::123456789012:root", None, "ASIAROOT")


def test_iam_user():
    row = one(
        {
            "type": "IAMUser",
            "principalId": "AIDA1",
            "arn": "arn:aws:iam::123456789012:user/ops/alice",
            "accountId": "123456789012",
            "accessKeyId": "AKIA1",
            "userName": "alice",
        }
    )
    assert (row["principal"], row["user_name"], row["access_key"]) == (
        "arn:aws:iam::123456789012:user/ops/alice",
        "alice",
        "AKIA1",
    )


def test_an_access_key_spelt_in_lower_case_is_read():
    """Hand-written samples (the panther scenario among them) write userIdentity.accesskeyid."""
    identity = {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/x", "accesskeyid": "AKIALOWER"}
    assert one(identity)["access_key"] == "AKIALOWER"
    pretty = json.dumps({"Records": [record(identity)]}, indent=2)  # the exact path, too
    assert parse(pretty).frames["events"]["access_key"].to_list() == ["AKIALOWER"]


def test_assumed_role_resolves_to_the_role_with_its_path():
    identity = {
        "type": "AssumedRole",
        "principalId": "AROA1:i-0abc",
        "accessKeyId": "ASIA1",
        "arn": "arn:aws:sts::123456789012:assumed-role/app-role/i-0abc",
        "accountId": "123456789012",
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": "AROA1",
                "userName": "app-role",
                "arn": "arn:aws:iam::123456789012:role/svc/app-role",
            },
            "attributes": {"mfaAuthenticated": "false"},
        },
    }
    row = one(identity)
    assert row["principal"] == "arn:aws:iam::123456789012:role/svc/app-role"
    assert row["session"] == "AROA1:i-0abc"
    assert row["user_name"] == "app-role"
    assert row["mfa"] is False


def test_assumed_role_without_session_issuer_derives_the_role():
    row = one({"type": "AssumedRole", "principalId": "AROA1:s", "arn": "arn:aws:sts::111122223333:assumed-role/r/s"})
    assert row["principal"] == "arn:aws:iam::111122223333:role/r"
    assert row["session"] == "AROA1:s"


def test_federated_user():
    identity = {
        "type": "FederatedUser",
        "principalId": "123456789012:bob",
        "accessKeyId": "ASIAF",
        "arn": "arn:aws:sts::123456789012:federated-user/bob",
        "accountId": "123456789012",
        "sessionContext": {
            "sessionIssuer": {"type": "IAMUser", "userName": "alice", "arn": "arn:aws:iam::123456789012:user/alice"}
        },
    }
    row = one(identity)
    assert row["principal"] == "arn:aws:sts::123456789012:federated-user/bob"
    assert row["session"] == "123456789012:bob"
    assert row["user_name"] == "bob"


def test_aws_service():
    row = one({"type": "AWSService", "invokedBy": "ec2.amazonaws.com"}, sourceIPAddress="ec2.amazonaws.com")
    assert row["principal"] == "ec2.amazonaws.com"
    assert row["src_ip"] == "ec2.amazonaws.com"


def test_aws_account():
    row = one({"type": "AWSAccount", "principalId": "AIDAX", "accountId": "444455556666"})
    assert row["principal"] == "444455556666"


def test_identity_center_user():
    identity = {
        "type": "IdentityCenterUser",
        "accountId": "123456789012",
        "credentialId": "c1",
        "onBehalfOf": {"userId": "u-1", "identityStoreArn": "arn:aws:identitystore::123456789012:identitystore/d-1"},
    }
    row = one(identity)
    assert row["principal"] == "arn:aws:identitystore::123456789012:identitystore/d-1/user/u-1"


def test_console_login_mfa_and_json_text_columns():
    row = one(
        {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/alice", "userName": "alice"},
        eventSource="signin.amazonaws.com",
        eventName="ConsoleLogin",
        responseElements={"ConsoleLogin": "Success"},
        additionalEventData={"MFAUsed": "Yes"},
    )
    assert row["mfa"] is True
    assert orjson.loads(row["response"]) == {"ConsoleLogin": "Success"}
    assert orjson.loads(row["additional"]) == {"MFAUsed": "Yes"}


def test_resources_and_errors():
    row = one(
        {"type": "IAMUser", "arn": "arn:aws:iam::1:user/a"},
        errorCode="AccessDenied",
        errorMessage="no",
        resources=[{"ARN": "arn:aws:s3:::b", "type": "AWS::S3::Bucket"}, {"type": "x"}],
    )
    assert row["resources"] == ["arn:aws:s3:::b"]
    assert (row["error_code"], row["error_message"]) == ("AccessDenied", "no")


def test_records_that_share_an_id_but_differ_are_distinct_content():
    records = [record({"type": "Root"}, eventID="1"), record({"type": "Root"}, eventID="1", eventName="Other")]
    events = parse({"Records": records}).frames["events"]
    assert events["content_hash"].n_unique() == 2


def test_odd_types_do_not_sink_the_file():
    records = [
        record({"type": "Root"}),
        record("not-an-object"),
        record({"type": "Root"}, resources="x"),
        42,
        {"no": "time"},
    ]
    result = parse({"Records": records})
    assert len(result.frames["events"]) == 3
    assert result.read == 5
    assert dict(result.skipped) == {"not a JSON object": 1, "no eventTime": 1}


def test_origin_index_is_the_position_in_the_input_on_the_exact_path():
    records = [record({"type": "Root"}, eventID=str(i)) for i in range(5)]
    records[1] = "not an object"
    del records[3]["eventTime"]
    pretty = json.dumps({"Records": records}, indent=2)
    assert cloudtrail._fast_blob(pretty.encode()) is None  # the exact path
    result = parse(pretty)
    events = result.frames["events"]
    assert events["origin_index"].to_list() == [0, 2, 4]
    assert events["event_id"].to_list() == ["0", "2", "4"]
    assert (result.read, dict(result.skipped)) == (5, {"not a JSON object": 1, "no eventTime": 1})


def test_origin_index_counts_broken_json_lines():
    lines = [json.dumps(record({"type": "Root"}, eventID=str(i))) for i in range(4)]
    lines[1] = lines[1][:30]
    result = parse("\n".join(lines))
    assert result.frames["events"]["origin_index"].to_list() == [0, 2, 3]
    assert (result.read, dict(result.skipped)) == (4, {"invalid JSON": 1})


def test_origin_index_after_an_unreadable_record_on_the_fallback_path():
    good = orjson.dumps(record({"type": "Root"}))
    bad = orjson.dumps({"eventTime": "2026-03-03T10:00:00Z", "userIdentity": "not an object"})  # _coerce would fix it
    result = cloudtrail.ParseResult(format="cloudtrail")
    raw = cloudtrail_exact._read_one_by_one([good, bad, good], [0, 3, 5], result)
    assert raw["_index"].to_list() == [0, 5]
    assert dict(result.skipped) == {"unreadable record": 1}


def test_unparseable_time_is_skipped_with_its_reason():
    result = parse({"Records": [record({"type": "Root"}, eventTime="yesterday"), record({"type": "Root"})]})
    assert dict(result.skipped) == {"unparseable eventTime": 1}
    assert len(result.frames["events"]) == 1


def test_fractional_and_offset_times():
    for text in ("2026-03-03T10:00:00.123Z", "2026-03-03T11:00:00+01:00"):
        row = one({"type": "Root"}, eventTime=text)
        assert row["time"].strftime("%Y-%m-%d %H:%M") == "2026-03-03 10:00"


def test_digest_files_are_ignored_not_warned():
    result = parse({"awsAccountId": "1", "digestStartTime": "x", "digestPublicKeyFingerprint": "y", "logFiles": []})
    assert result.ignored and result.read == 0 and not result.warnings


def test_deep_nesting_is_skipped_not_raised():
    deep = "[" * 5000 + "]" * 5000
    compact = (
        '{"Records":['
        + json.dumps(record({"type": "Root"}))
        + ","
        + json.dumps(record({"type": "Root"}))[:-1]
        + ',"requestParameters":'
        + deep
        + "}]}"
    )
    result = parse(compact)
    assert result.read == len(result.frames["events"]) + sum(result.skipped.values())


def accounting_holds(result) -> bool:
    kept = len(result.frames.get("events", pl.DataFrame()))
    return result.read == kept + sum(result.skipped.values())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_fuzz_arbitrary_bytes_never_raise(data):
    result = cloudtrail.parse(data, "fuzz", CONFIG)
    assert accounting_holds(result)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
_field_values = st.fixed_dictionaries(
    {},
    optional={
        "eventTime": st.sampled_from(["2026-03-03T10:00:00Z", "bad", ""]) | _json,
        "userIdentity": _json | st.fixed_dictionaries({"type": st.text(max_size=12)}, optional={"arn": _json}),
        "resources": _json,
        "requestParameters": _json,
        "eventName": _json,
        "readOnly": _json,
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_field_values, max_size=5), st.booleans())
def test_fuzz_arbitrary_records_keep_exact_accounting(records, compact):
    records = [{"eventVersion": "1.08", **r} for r in records]
    data = json.dumps({"Records": records}, separators=(",", ":") if compact else None).encode()
    result = cloudtrail.parse(data, "fuzz", CONFIG)
    assert result.read == len(records)
    assert accounting_holds(result)
