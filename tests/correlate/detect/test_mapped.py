"""The table-driven detections: matching, conditions, severities, keys and entities of hits."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest

from sleuth.config import Config
from sleuth.correlate.detect import findings_from_hits, mapped
from sleuth.correlate.detect._conditions import failed_expr, foreign_accounts, shared_accounts
from sleuth.correlate.detect.base import HITS, Context
from tests.correlate.detect.synthetic import ACCOUNT, OTHER_ACCOUNT, T0, event, frame


def hits_of(*rows: dict) -> pl.DataFrame:
    return mapped.run(Context(events=frame(*rows), flows=pl.DataFrame(), config=Config()))


def only_hit(*rows: dict) -> dict:
    hits = hits_of(*rows)
    assert len(hits) == 1, hits
    return hits.row(0, named=True)


def entities(hit: dict) -> set[tuple[str, str, str]]:
    return {(e["entity_type"], e["entity_id"], e["role"]) for e in hit["entities"]}


def test_a_mapped_event_is_a_hit_with_its_evidence_and_entities():
    hit = only_hit(event("StopLogging", "cloudtrail", {"name": "org-trail"}, event_id="e-1", src_ip="035.249.1.2"))
    assert {k: hit[k] for k in ("detection_id", "key_type", "key_id", "severity", "count", "event_ids")} == {
        "detection_id": "cloudtrail-stop-logging",
        "key_type": "AwsUser",
        "key_id": f"arn:aws:iam::{ACCOUNT}:user/alice",
        "severity": 7.0,
        "count": 1,
        "event_ids": ["e-1"],
    }
    assert hit["title"] == "CloudTrail logging stopped by user/alice"
    assert hit["details"] == "StopLogging org-trail from 035.249.1.2"
    assert {
        ("AwsUser", f"arn:aws:iam::{ACCOUNT}:user/alice", "actor"),
        ("AccessKey", "AKIAEXAMPLE000000001", "actor"),
        ("IpAddress", "35.249.1.2", "actor"),  # leading zeros read as decimal, as everywhere in sleuth
        ("UserAgent", "aws-cli/2.15.0", "actor"),
        ("AwsAccount", ACCOUNT, "target"),
    } == entities(hit)
    assert hits_of(event("StopLogging", "cloudtrail")).schema == pl.Schema(HITS)


def test_a_failed_attempt_is_kept_lower_and_says_so():
    hit = only_hit(event("StopLogging", "cloudtrail", error_code="AccessDenied"))
    assert hit["severity"] == 5.0
    assert hit["title"].endswith("(failed: AccessDenied)")
    low = only_hit(event("DeleteLogStream", "logs", error_code="AccessDenied"))
    assert low["severity"] == 1.0  # never below Low


def test_a_failed_console_sign_in_has_no_error_code_but_is_failed():
    rows = frame(
        event("ConsoleLogin", "signin", response={"ConsoleLogin": "Failure"}, error_message="Failed authentication"),
        event("ConsoleLogin", "signin", response={"ConsoleLogin": "Success"}),
    )
    assert rows.select(failed_expr()).to_series().to_list() == [True, False]
    labels = mapped.label_events(rows.head(1))
    assert labels["rule_id"].to_list() == ["signin-console-login-failed"]


def test_events_of_one_row_key_and_window_are_one_hit():
    rows = [event("StopLogging", "cloudtrail", {"name": f"t{i}"}, event_id=f"e{i}", src_ip=f"203.0.113.{i}",
                  time=T0 + timedelta(hours=i)) for i in range(5)]  # fmt: skip
    rows.append(event("StopLogging", "cloudtrail", event_id="late", time=T0 + timedelta(hours=27)))
    rows.append(event("StopLogging", "cloudtrail", event_id="bob", actor="user/bob"))
    hits = hits_of(*rows).sort("key_id", "first_seen")
    assert hits["count"].to_list() == [5, 1, 1]
    alice = hits.row(0, named=True)
    assert alice["event_ids"] == ["e0", "e1", "e2", "e3", "e4"]
    assert alice["last_seen"] - alice["first_seen"] == timedelta(hours=4)
    assert {e["entity_id"] for e in alice["entities"] if e["entity_type"] == "IpAddress"} == {
        f"203.0.113.{i}" for i in range(5)
    }
    assert alice["details"].count("StopLogging") == mapped.MAX_DETAILS
    findings, _ = findings_from_hits(hits, Config())
    assert sorted(findings["event_ids"].list.len()) == [1, 6]  # 23 h after the last one: the same finding


def test_context_rows_label_events_but_make_no_hit():
    rows = [event("GetCallerIdentity", "sts"), event("GetSecretValue", "secretsmanager", {"secretId": "x"})]
    assert hits_of(*rows).is_empty()
    labels = mapped.label_events(frame(*rows))
    assert set(labels["rule_id"]) == {"sts-get-caller-identity", "secretsmanager-get-secret-value"}
    assert labels.filter(pl.col("rule_id") == "sts-get-caller-identity")["tactics"].to_list() == [["Discovery"]]
    assert set(labels["severity"]) == {0.0}


def test_unmapped_events_are_ignored():
    assert hits_of(event("DescribeInstances", "ec2"), event("StopLogging", "s3")).is_empty()
    assert hits_of().is_empty()


ADMIN_DOCUMENT = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'
READ_DOCUMENT = '{"Statement":[{"Effect":"Allow","Action":["ec2:Describe*"],"Resource":"*"}]}'
TRUST_OTHER = (
    '{"Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"},'
    '{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::999988887777:root"},"Action":"sts:AssumeRole"}]}'
)
TRUST_OWN = '{"Statement":[{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"sts:AssumeRole"}]}'
PUBLIC_POLICY = {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}]}
TLS_ONLY_POLICY = {
    "Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*",
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        {"Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"}, "Action": "s3:PutObject"},
    ]
}  # fmt: skip


@pytest.mark.parametrize(
    ("row", "rule"),
    [
        # logging and monitoring
        (
            event("PutEventSelectors", "cloudtrail", {"eventSelectors": [{"includeManagementEvents": False}]}),
            "cloudtrail-event-selectors-exclude",
        ),
        (
            event(
                "PutEventSelectors",
                "cloudtrail",
                {"eventSelectors": [{"includeManagementEvents": True, "readWriteType": "All"}]},
            ),
            "cloudtrail-event-selectors",
        ),
        (event("UpdateDetector", "guardduty", {"detectorId": "d", "enable": False}), "guardduty-disable-detector"),
        (
            event("UpdateDetector", "guardduty", {"detectorId": "d", "findingPublishingFrequency": "SIX_HOURS"}),
            "guardduty-update-detector",
        ),
        (event("PutBucketLogging", "s3", {"bucketName": "b", "BucketLoggingStatus": {}}), "s3-bucket-logging-off"),
        (event("PutBucketLogging", "s3", {"bucketName": "b", "BucketLoggingStatus": {"LoggingEnabled": {}}}), None),
        # credentials for others, admin policies, trust
        (event("CreateAccessKey", "iam", {"userName": "bob"}), "iam-create-access-key-other-user"),
        (event("CreateAccessKey", "iam", {"userName": "alice"}), "iam-create-access-key"),
        (event("CreateAccessKey", "iam", {"userName": "bob"}, actor="role/terraform"), "iam-create-access-key"),
        (event("CreateAccessKey", "iam", None, actor="root"), "iam-create-root-access-key"),
        (event("CreateAccessKey", "iam", {"userName": "bob"}, actor="root"), "iam-create-access-key-other-user"),
        (event("UpdateLoginProfile", "iam", {"userName": "bob"}), "iam-update-login-profile-other-user"),
        (
            event("AttachUserPolicy", "iam", {"userName": "bob", "policyArn": "arn:aws:iam::aws:policy/IAMFullAccess"}),
            "iam-attach-user-policy-admin",
        ),
        (
            event(
                "AttachUserPolicy", "iam", {"userName": "bob", "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}
            ),
            "iam-attach-user-policy",
        ),
        (
            event("PutRolePolicy", "iam", {"roleName": "r", "policyDocument": ADMIN_DOCUMENT}),
            "iam-put-role-policy-admin",
        ),
        (event("PutRolePolicy", "iam", {"roleName": "r", "policyDocument": READ_DOCUMENT}), "iam-put-role-policy"),
        (
            event(
                "CreatePolicyVersion",
                "iam",
                {
                    "policyDocument": "%7B%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22"
                    "%2C%22Action%22%3A%22iam%3A%2A%22%2C%22Resource%22%3A%22%2A%22%7D%5D%7D"
                },
            ),
            "iam-create-policy-version-admin",
        ),  # URL-encoded documents are read too
        (
            event("UpdateAssumeRolePolicy", "iam", {"roleName": "r", "policyDocument": TRUST_OTHER}),
            "iam-update-assume-role-policy-foreign",
        ),
        (
            event("UpdateAssumeRolePolicy", "iam", {"roleName": "r", "policyDocument": TRUST_OWN}),
            "iam-update-assume-role-policy",
        ),
        (
            event("AddPermission20150331v2", "lambda", {"functionName": "f", "principal": "*"}),
            "lambda-add-permission-foreign",
        ),
        (
            event("AddPermission20150331v2", "lambda", {"functionName": "f", "principal": "s3.amazonaws.com"}),
            "lambda-add-permission",
        ),
        (event("UpdateFunctionCode20150331v2", "lambda", {"functionName": "f"}), "lambda-update-function-code"),
        (
            event("UpdateFunctionConfiguration20150331v2", "lambda", {"functionName": "f", "layers": ["arn:l:1"]}),
            "lambda-update-function-layers",
        ),
        (event("UpdateFunctionConfiguration20150331v2", "lambda", {"functionName": "f", "timeout": 30}), None),
        # sharing and exposure
        (
            event(
                "ModifySnapshotAttribute",
                "ec2",
                {"snapshotId": "snap-1", "createVolumePermission": {"add": {"items": [{"userId": OTHER_ACCOUNT}]}}},
            ),
            "ec2-share-snapshot",
        ),
        (
            event(
                "ModifySnapshotAttribute",
                "ec2",
                {"snapshotId": "snap-1", "createVolumePermission": {"remove": {"items": [{"userId": OTHER_ACCOUNT}]}}},
            ),
            None,
        ),
        (
            event(
                "ModifyImageAttribute",
                "ec2",
                {"imageId": "ami-1", "launchPermission": {"add": {"items": [{"group": "all"}]}}},
            ),
            "ec2-share-image",
        ),
        (
            event("ModifyDBClusterSnapshotAttribute", "rds", {"attributeName": "restore", "valuesToAdd": ["all"]}),
            "rds-share-cluster-snapshot",
        ),
        (
            event("PutBucketPolicy", "s3", {"bucketName": "b", "bucketPolicy": PUBLIC_POLICY}),
            "s3-put-bucket-policy-public",
        ),
        (event("PutBucketPolicy", "s3", {"bucketName": "b", "bucketPolicy": TLS_ONLY_POLICY}), "s3-put-bucket-policy"),
        (
            event(
                "PutBucketAcl",
                "s3",
                {
                    "bucketName": "b",
                    "AccessControlPolicy": {
                        "AccessControlList": {
                            "Grant": [{"Grantee": {"URI": "http://acs.amazonaws.com/groups/global/AllUsers"}}]
                        }
                    },
                },
            ),
            "s3-put-bucket-acl-public",
        ),
        (event("PutBucketAcl", "s3", {"bucketName": "b", "x-amz-acl": ["private"]}), None),
        (
            event(
                "PutBucketReplication",
                "s3",
                {
                    "bucketName": "b",
                    "ReplicationConfiguration": {
                        "Rule": {"Destination": {"Bucket": "arn:aws:s3:::x", "Account": OTHER_ACCOUNT}}
                    },
                },
            ),
            "s3-put-bucket-replication-foreign",
        ),
        (
            event(
                "PutBucketLifecycle",
                "s3",
                {
                    "bucketName": "logs",
                    "LifecycleConfiguration": {"Rule": {"Status": "Enabled", "Expiration": {"Days": 1}}},
                },
            ),
            "s3-put-bucket-lifecycle-expiration",
        ),
        (
            event(
                "AuthorizeSecurityGroupIngress",
                "ec2",
                {"groupId": "sg-1", "ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "cidrIp": "0.0.0.0/0"},
            ),
            "ec2-authorize-ingress-world-admin",
        ),
        (
            event(
                "AuthorizeSecurityGroupIngress",
                "ec2",
                {
                    "groupId": "sg-1",
                    "ipPermissions": {
                        "items": [
                            {
                                "ipProtocol": "tcp",
                                "fromPort": 443,
                                "toPort": 443,
                                "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]},
                            }
                        ]
                    },
                },
            ),
            "ec2-authorize-ingress-world",
        ),
        (
            event(
                "AuthorizeSecurityGroupIngress",
                "ec2",
                {
                    "groupId": "sg-1",
                    "ipPermissions": {"items": [{"ipProtocol": "-1", "ipv6Ranges": {"items": [{"cidrIpv6": "::/0"}]}}]},
                },
            ),
            "ec2-authorize-ingress-world-admin",
        ),
        (
            event(
                "AuthorizeSecurityGroupIngress",
                "ec2",
                {
                    "groupId": "sg-1",
                    "ipPermissions": {
                        "items": [
                            {
                                "ipProtocol": "tcp",
                                "fromPort": 22,
                                "toPort": 22,
                                "ipRanges": {"items": [{"cidrIp": "10.0.0.0/8"}]},
                            }
                        ]
                    },
                },
            ),
            None,
        ),
        # credential access, execution, impact
        (
            event("GetParameters", "ssm", {"names": ["/a", "/b"], "withDecryption": True}),
            "ssm-get-parameters-decrypted",
        ),
        (event("GetParameters", "ssm", {"names": ["/a", "/b"], "withDecryption": False}), None),
        (
            event("DescribeInstanceAttribute", "ec2", {"instanceId": "i-1", "attribute": "userData"}),
            "ec2-describe-instance-attribute-user-data",
        ),
        (event("DescribeInstanceAttribute", "ec2", {"instanceId": "i-1", "attribute": "instanceType"}), None),
        (
            event("ModifyInstanceAttribute", "ec2", {"instanceId": "i-1", "userData": "<sensitiveDataRemoved>"}),
            "ec2-modify-instance-user-data",
        ),
        (event("RunInstances", "ec2", {"instanceType": "p4d.24xlarge"}), "ec2-run-gpu-instances"),
        (event("RunInstances", "ec2", {"instanceType": "t3.micro"}), None),
        (
            event("ModifyDBInstance", "rds", {"dBInstanceIdentifier": "db", "masterUserPassword": "****"}),
            "rds-master-password-reset",
        ),
    ],
)
def test_conditions_pick_the_row(row, rule):
    hits = hits_of(row)
    assert hits["detection_id"].to_list() == ([rule] if rule else [])


def test_the_most_severe_matching_row_wins_once_per_event():
    policy = "arn:aws:iam::aws:policy/"
    rows = [
        event(
            "AttachUserPolicy", "iam", {"userName": "bob", "policyArn": policy + "AdministratorAccess"}, event_id="a"
        ),
        event("AttachUserPolicy", "iam", {"userName": "bob", "policyArn": policy + "ReadOnlyAccess"}, event_id="b"),
    ]
    hits = hits_of(*rows).sort("event_ids")
    assert hits["detection_id"].to_list() == ["iam-attach-user-policy-admin", "iam-attach-user-policy"]


def test_keys_by_kind_of_caller():
    role = only_hit(event("DeleteFlowLogs", "ec2", actor="role/deployer"))
    assert (role["key_type"], role["key_id"]) == ("AwsRole", f"arn:aws:iam::{ACCOUNT}:role/deployer")
    assert ("AwsRoleSession", "AROAEXAMPLEROLE00001:session-1", "actor") in entities(role)
    root = only_hit(event("DeleteTrail", "cloudtrail", actor="root"))
    assert (root["key_type"], root["key_id"]) == ("AwsUser", f"arn:aws:iam::{ACCOUNT}:root")
    assert root["title"].endswith("by root")
    service = only_hit(event("SharedSnapshotCopyInitiated", "ec2", actor="ec2.amazonaws.com"))
    assert (service["key_type"], service["key_id"]) == ("AwsAccount", ACCOUNT)
    assert not any(e["entity_type"] == "IpAddress" for e in service["entities"])  # a host name is no address


def test_targets_and_external_accounts_are_entities():
    key = only_hit(event("CreateAccessKey", "iam", {"userName": "bob"}))
    assert ("AwsUser", f"arn:aws:iam::{ACCOUNT}:user/bob", "target") in entities(key)
    share = only_hit(
        event("ModifySnapshotAttribute", "ec2", {"snapshotId": "snap-1", "createVolumePermission": {
            "add": {"items": [{"userId": OTHER_ACCOUNT}]}}}, resources=["arn:aws:ec2:us-east-1::snapshot/snap-1"])
    )  # fmt: skip
    assert ("AwsAccount", OTHER_ACCOUNT, "external") in entities(share)
    bucket = only_hit(event("DeleteBucketPolicy", "s3", {"bucketName": "data"},
                            resources=["arn:aws:s3:::data", "arn:aws:s3:::data/key.csv"]))  # fmt: skip
    assert [e for e in entities(bucket) if e[0] == "S3Bucket"] == [("S3Bucket", "data", "target")]


def test_policy_readers():
    assert foreign_accounts('{"policyDocument": "' + TRUST_OTHER.replace('"', '\\"') + '"}', ACCOUNT) == [OTHER_ACCOUNT]
    assert foreign_accounts('{"policyDocument": "' + TRUST_OWN.replace('"', '\\"') + '"}', ACCOUNT) == []
    assert foreign_accounts('{"principal": "*"}', ACCOUNT) == ["*"]
    assert foreign_accounts("not json", ACCOUNT) == []
    assert shared_accounts('{"createVolumePermission": {"add": {"items": [{"userId": "1"}, {"group": "all"}]}}}') == [
        "1",
        "all",
    ]
    assert shared_accounts('{"valuesToAdd": ["222233334444"]}') == ["222233334444"]
    assert shared_accounts(None) == []


def test_hostile_parameters_do_not_break_matching():
    nested = "[" * 300 + "]" * 300
    rows = [
        event("PutBucketPolicy", "s3", '{"bucketPolicy": ' + nested + "}"),
        event("PutBucketPolicy", "s3", "{not json"),
        event("UpdateAssumeRolePolicy", "iam", '{"policyDocument": "{\\"Statement\\": 5}"}'),
        event("AuthorizeSecurityGroupIngress", "ec2", '{"cidrIp": "0.0.0.0/0", "fromPort": "x", "toPort": []}'),
        event("CreateAccessKey", "iam", '{"userName": "[red]bob\\u001b[0m"}'),
    ]
    hits = hits_of(*rows)
    assert hits["count"].sum() == len(rows)  # each still matches its unconditional row (or the world-open one)
