"""sleuth profile, sleuth summary and sleuth search --entity through the real entry point."""

from __future__ import annotations

import json

import pytest

from tests.conftest import FIXTURES, INCIDENT, check_golden, run_cli
from tests.test_hostile import check_csv, check_json, check_markdown, check_no_raw_controls

ALICE = "arn:aws:iam::123456789012:user/alice"
SCOPE = "2026-03-03..2026-03-04"  # the attack day of the fixture incident, two quiet days before it
HOSTILE = FIXTURES / "hostile"


def test_profile_table():
    result = run_cli(["profile", "-s", INCIDENT, "alice"])
    text = result.stdout
    assert text.startswith(f"AwsUser {ALICE}: ")
    for title in ("Details", "API call volume", "API calls by service", "Observed IP addresses", "User agents",
                  "Newly observed user agents", "Newly observed API calls", "Newly observed IP addresses",
                  "Resource interaction", "Related findings"):  # fmt: skip
        assert title in text, title
    assert "203.0.113.66" in text and "python-requests/2.31.0" in text
    assert result.stderr == ""


def test_profile_json():
    data = json.loads(run_cli(["profile", "-s", INCIDENT, "alice", "--scope", SCOPE, "-f", "json"]).stdout)
    assert data["schema"] == "sleuth/profile/v1"
    assert data["entity"] == {"type": "AwsUser", "id": ALICE}
    assert data["scope"] == {"start": "2026-03-03T00:00:00Z", "end": "2026-03-04T00:00:00Z"}
    assert data["baseline"] == {"start": "2026-01-17T00:00:00Z", "end": "2026-03-03T00:00:00Z"}
    assert set(data["newly_observed"]) == {"geolocations", "asos", "user_agents", "api_calls", "addresses"}
    new_ips = data["newly_observed"]["addresses"]
    assert [(n["value"], n["new_for_account"]) for n in new_ips] == [("203.0.113.66", True)]
    assert "198.51.100.10" not in {n["value"] for n in new_ips}  # alice's office: in her baseline
    assert {n["value"] for n in data["newly_observed"]["api_calls"]} >= {"iam:CreateAccessKey", "sts:AssumeRole"}
    assert data["details"]["failures"] == 2 and data["details"]["access_keys"] == ["AKIAEXAMPLEALICE0001"]
    assert len(data["volume"]) == 24 and sum(v["success"] + v["failure"] for v in data["volume"]) == 31
    kinds = {(r["kind"], r["issued_to"]) for r in data["resource_interaction"]}
    assert kinds == {("access_key", "arn:aws:iam::123456789012:user/backup-svc"),
                     ("assume_role", "arn:aws:iam::123456789012:role/admin-role")}  # fmt: skip
    assert {"increased_volume", "failure_spikes", "flows", "findings", "notes", "api_calls"} <= set(data)


@pytest.mark.parametrize(
    ("target", "entity"),
    [
        ("AKIAEXAMPLEALICE0001", {"type": "AccessKey", "id": "AKIAEXAMPLEALICE0001"}),
        ("203.0.113.66", {"type": "IpAddress", "id": "203.0.113.66"}),
        ("admin-role", {"type": "AwsRole", "id": "arn:aws:iam::123456789012:role/admin-role"}),
        ("AROAEXAMPLEADMINROLE:maint", {"type": "AwsRoleSession", "id": "AROAEXAMPLEADMINROLE:maint"}),
        ("python-requests/2.31.0", {"type": "UserAgent", "id": "python-requests/2.31.0"}),
    ],
)
def test_profile_of_other_entity_types(target, entity):
    data = json.loads(run_cli(["profile", "-s", INCIDENT, target, "-f", "json"]).stdout)
    assert data["entity"] == entity


def test_profile_of_a_session_names_its_creator():
    data = json.loads(run_cli(["profile", "-s", INCIDENT, "ASIAEXAMPLESESSION01", "-f", "json"]).stdout)
    assert data["details"]["created_by"] == ALICE
    assert data["details"]["owner"] == "arn:aws:iam::123456789012:role/admin-role"


def test_unknown_entity_exits_4_with_the_fix():
    result = run_cli(["profile", "-s", INCIDENT, "alise"], exit_code=4)
    assert result.stdout == ""
    assert "no entity 'alise' in the data" in result.stderr
    assert f"fix: closest: {ALICE}" in result.stderr


def test_an_id_of_two_types_needs_the_type_prefix():
    result = run_cli(["profile", "-s", HOSTILE, "[bold red]pwned[/]"], exit_code=4)
    assert "names 2 entities" in result.stderr
    assert "fix: prefix the type, e.g. S3Bucket:[bold red]pwned[/]" in result.stderr  # shown as text
    data = json.loads(run_cli(["profile", "-s", HOSTILE, "UserAgent:[bold red]pwned[/]", "-f", "json"]).stdout)
    assert data["entity"] == {"type": "UserAgent", "id": "[bold red]pwned[/]"}


def test_a_wildcard_is_not_one_entity():
    result = run_cli(["profile", "-s", INCIDENT, "ali*"], exit_code=4)
    assert "search --entity" in result.stderr


@pytest.mark.parametrize("scope", ["2026-03-03", "2026-03-04..2026-03-03", "soon..later"])
def test_bad_scope_is_a_usage_error(scope):
    result = run_cli(["profile", "-s", INCIDENT, "alice", "--scope", scope], exit_code=2)
    assert "--scope" in result.stderr and "fix:" in result.stderr


def test_summary_json():
    data = json.loads(run_cli(["summary", "-s", INCIDENT, "-f", "json"]).stdout)
    assert data["schema"] == "sleuth/summary/v1"
    assert set(data) >= {"scope", "baseline", "totals", "busiest", "most_failures", "flow_volume",
                         "new_geolocations", "findings"}  # fmt: skip
    assert data["scope"]["end"] == "2026-03-03T16:36:46Z"  # the last 24 h of the data, its last record in
    assert data["busiest"][0]["id"] == ALICE and data["busiest"][0]["failure"] == 2
    assert data["totals"]["events"] == 35 and data["totals"]["failures"] == 2


def test_summary_baseline_days():
    data = json.loads(run_cli(["summary", "-s", INCIDENT, "--baseline-days", "1", "-f", "json"]).stdout)
    assert data["baseline"] == {"start": "2026-03-01T16:36:46Z", "end": data["scope"]["start"]}


def test_search_entity_wildcard():
    table = run_cli(["search", "-s", INCIDENT, "--entity", "*alice*"]).stdout
    assert "Entities matching *alice* (2)" in table
    assert ALICE in table and "AKIAEXAMPLEALICE0001" in table
    data = json.loads(run_cli(["search", "-s", INCIDENT, "--entity", "*alice*", "-f", "json"]).stdout)
    assert data["schema"] == "sleuth/entities/v1"
    assert [(e["entity_type"], e["entity_id"], e["events"]) for e in data["entities"]] == [
        ("AwsUser", ALICE, 121),
        ("AccessKey", "AKIAEXAMPLEALICE0001", 119),
    ]


def test_search_entity_cidr_and_limit():
    data = json.loads(run_cli(["search", "-s", INCIDENT, "--entity", "203.0.113.0/24", "-f", "json"]).stdout)
    assert [(e["entity_type"], e["entity_id"], e["events"]) for e in data["entities"]] == [
        ("IpAddress", "203.0.113.66", 13)
    ]
    data = json.loads(run_cli(["search", "-s", INCIDENT, "--entity", "*", "--limit", "3", "-f", "json"]).stdout)
    assert (data["count"], data["total"]) == (3, 11)
    lines = run_cli(["search", "-s", INCIDENT, "--entity", "*", "-f", "jsonl"]).stdout.splitlines()
    assert len(lines) == 11 and json.loads(lines[0])["entity_type"] == "AwsAccount"


def test_search_entity_with_event_filters_is_a_usage_error():
    result = run_cli(["search", "-s", INCIDENT, "--entity", "*alice*", "--action", "ListUsers"], exit_code=2)
    assert "--entity" in result.stderr and "fix:" in result.stderr


# --- golden files -------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["table", "markdown", "json"])
def test_profile_golden(fmt, update_golden):
    text = run_cli(["profile", "-s", INCIDENT, "alice", "--scope", SCOPE, "-f", fmt]).stdout
    check_golden(f"profile-alice.{fmt}", text, update_golden)


@pytest.mark.parametrize("fmt", ["table", "markdown", "json"])
def test_summary_golden(fmt, update_golden):
    text = run_cli(["summary", "-s", INCIDENT, "--scope", SCOPE, "-f", fmt]).stdout
    check_golden(f"summary-incident.{fmt}", text, update_golden)


# --- hostile input ------------------------------------------------------------------------------

# Entities of fixtures/hostile whose profiles list attacker-written user agents, bucket and user names.
HOSTILE_TARGETS = [
    "AKIAEXAMPLEHOSTILE01",
    "arn:aws:s3:::\x1b[31mred\x1b[0m",  # a bucket; a user agent has the same text
    "UserAgent:[link=http://evil]x[/link]",
    "arn:aws:iam::123456789012:user/| x | y |",
]


@pytest.fixture(scope="module")
def hostile_outputs(tmp_path_factory):
    case = tmp_path_factory.mktemp("hostile") / "case"  # parsed once, not once per command
    run_cli(["ingest", "-s", HOSTILE, "-o", case, "-q"])
    results = {}
    for target in HOSTILE_TARGETS:
        for fmt in ("table", "markdown", "json", "csv"):
            results[target, fmt] = run_cli(["profile", "-s", case, target, "-f", fmt, "--no-color"]).stdout
    for fmt in ("table", "markdown"):
        results["summary", fmt] = run_cli(["summary", "-s", case, "-f", fmt, "--no-color"]).stdout
        results["search", fmt] = run_cli(["search", "-s", case, "--entity", "*", "-f", fmt, "--no-color"]).stdout
    return results


@pytest.mark.parametrize("target", HOSTILE_TARGETS)
def test_hostile_profile_table_shows_payloads_as_text(hostile_outputs, target):
    text = hostile_outputs[target, "table"]
    check_no_raw_controls(text, "profile table")
    if target == "AKIAEXAMPLEHOSTILE01":  # its user agents: markup, escapes and pipes, all literal
        for shown in ("[bold red]pwned[/]", "[link=http://evil]x[/link]", "\\x1b[31mred\\x1b[0m", "| x | y |",
                      "ok\\rEVIL", "invoice\\u202eexe.pdf"):  # fmt: skip
            assert shown in text, shown
    elif target.startswith("arn:aws:s3"):  # the bucket named with an ANSI escape
        assert text.startswith("S3Bucket \\x1b[31mred\\x1b[0m: ")
    elif target.startswith("UserAgent:"):
        assert text.startswith("UserAgent [link=http://evil]x[/link]: ")
    else:
        assert "AwsUser arn:aws:iam::123456789012:user/| x | y |" in text


@pytest.mark.parametrize("target", HOSTILE_TARGETS)
def test_hostile_profile_markdown_json_csv(hostile_outputs, target):
    check_markdown(hostile_outputs[target, "markdown"])
    (data,) = check_json(hostile_outputs[target, "json"], "json")
    assert data["entity"]["id"] in target  # JSON keeps the value exact
    check_csv(hostile_outputs[target, "csv"])


def test_hostile_markdown_escapes_pipes_and_markup(hostile_outputs):
    text = hostile_outputs["AKIAEXAMPLEHOSTILE01", "markdown"]
    assert "\\| x \\| y \\|" in text and "\\[bold red\\]pwned\\[/\\]" in text
    assert "\\x1b\\[31mred\\x1b\\[0m" in text or "\\\\x1b\\[31mred" in text


@pytest.mark.parametrize("command", ["summary", "search"])
def test_hostile_summary_and_entity_search(hostile_outputs, command):
    check_no_raw_controls(hostile_outputs[command, "table"], f"{command} table")
    check_markdown(hostile_outputs[command, "markdown"])
