"""Mass retrieval of secrets and decrypted parameters."""

from __future__ import annotations

import pytest

from sleuth.correlate.detect import mass_secret_retrieval
from tests.conftest import shared
from tests.correlate.detect.behaviour import ACCOUNT, at, context, event, real, single

APP = f"arn:aws:iam::{ACCOUNT}:role/app"
SM, SSM = "secretsmanager.amazonaws.com", "ssm.amazonaws.com"
STRATUS = "stratus-detonation-logs/docs/detonation-logs/aws.credential-access."


def secret(name: str, minutes: float = 0, action: str = "GetSecretValue", **extra) -> dict:
    return event(action, SM, time=at(minutes=minutes), principal=APP, request={"secretId": name}) | extra


def arn(name: str) -> str:
    return f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:{name}-AbC123"


def test_six_different_secrets_in_a_minute():
    hit = single(mass_secret_retrieval.run(context([secret(f"prod/db{i}", i / 6) for i in range(6)])))
    assert (hit["key_type"], hit["key_id"]) == ("AwsRole", APP)
    assert hit["severity"] == 7.0 and hit["count"] == 6 and len(hit["event_ids"]) == 6
    assert hit["title"] == "Mass secret retrieval by app: 6 distinct secrets/parameters within 10 min"
    assert hit["details"].startswith("6 distinct (6 secrets, 0 parameters; 6 new for this principal) in 6 calls")


def test_an_arn_and_a_name_are_one_secret_and_failures_do_not_count():
    rows = [secret("prod/db0"), secret(arn("prod/db0"), 0.1)] + [secret(f"prod/db{i}", 0.2) for i in range(1, 4)]
    assert mass_secret_retrieval.run(context(rows)).is_empty()  # 4 distinct
    denied = [secret(f"other/{i}", 0.5, error_code="AccessDenied") for i in range(5)]
    assert mass_secret_retrieval.run(context(rows + denied)).is_empty()
    assert len(mass_secret_retrieval.run(context([*rows, secret("prod/db9", 0.3)]))) == 1


def test_parameters_count_only_when_decrypted():
    names = [f"/prod/app/key{i}" for i in range(6)]
    decrypted = event("GetParameters", SSM, principal=APP, request={"names": names, "withDecryption": True})
    hit = single(mass_secret_retrieval.run(context([decrypted])))
    assert "6 distinct (0 secrets, 6 parameters" in hit["details"] and hit["count"] == 1
    plain = event("GetParameters", SSM, principal=APP, request={"names": names, "withDecryption": False})
    one_by_one = [event("GetParameter", SSM, principal=APP, request={"name": n}) for n in names]
    assert mass_secret_retrieval.run(context([plain, *one_by_one])).is_empty()


def test_batch_retrieval_by_filter_counts_each_call():
    by_filter = {"filters": [{"key": "tag-key", "values": ["team"]}]}
    rows = [
        event("BatchGetSecretValue", SM, time=at(minutes=i / 10), principal=APP, request=by_filter) for i in range(5)
    ]
    assert "5 distinct (5 secrets" in single(mass_secret_retrieval.run(context(rows)))["details"]
    listed = event("BatchGetSecretValue", SM, principal=APP, request={"secretIdList": [f"s{i}" for i in range(5)]})
    assert single(mass_secret_retrieval.run(context([listed])))["count"] == 1


def test_an_application_reading_its_few_secrets_all_day_fires_nothing():
    rows = [secret(f"prod/db{i % 3}", minutes) for i, minutes in enumerate(range(0, 600, 2))]
    assert mass_secret_retrieval.run(context(rows)).is_empty()


def test_secrets_read_before_or_at_a_human_pace_score_lower():
    yesterday = [secret(f"prod/db{i}", -1440 + i * 30) for i in range(6)]  # the same six, slowly, a day earlier
    slow_again = [secret(f"prod/db{i}", i) for i in range(6)]
    hits = mass_secret_retrieval.run(context(yesterday + slow_again))
    assert hits["severity"].to_list() == [3.0]
    fresh = [secret(f"new/{i}", i) for i in range(6)]  # new secrets, one a minute, by an established principal
    assert mass_secret_retrieval.run(context([*yesterday, *fresh]))["severity"].to_list() == [5.0]


@pytest.mark.parametrize(
    ("name", "distinct"),
    [("secretsmanager-retrieve-secrets.json", 20), ("secretsmanager-batch-retrieve-secrets.json", 5),
     ("ssm-retrieve-securestring-parameters.json", 42)],
)  # fmt: skip
def test_stratus_secret_harvesting(name, distinct):
    hit = single(mass_secret_retrieval.run(real(shared(STRATUS + name))))
    assert hit["key_id"].endswith(":user/christophe") and hit["severity"] == 7.0
    assert hit["details"].startswith(f"{distinct} distinct")


def test_invictus_bert_jan():
    hit = single(mass_secret_retrieval.run(real(shared("invictus-aws-dataset"))))
    assert hit["key_id"] == "arn:aws:iam::123837392027:user/bert-jan" and hit["severity"] == 7.0
    assert "20 secrets" in hit["details"]
