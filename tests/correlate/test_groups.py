"""Finding groups: linking, lineage, time proximity, determinism, and the rendered graph."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from sleuth import schema
from sleuth.config import Config
from sleuth.correlate.groups import find_group, group_findings, group_graph, group_id, tactic_chain
from sleuth.report.graph_render import as_dot, as_graphml, as_mermaid, as_text

T0 = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)


def finding(fid: str, hours: float, severity: float = 5.0, tactics=("Persistence",), kind="Persistence:IAMUser/X"):
    start = T0 + timedelta(hours=hours)
    return {
        "finding_id": fid, "producer": "sleuth", "type": kind, "title": fid, "severity": severity,
        "severity_label": None, "account": "123456789012", "first_seen": start, "last_seen": start,
        "tactics": list(tactics), "techniques": [], "event_ids": [],
    }  # fmt: skip


def frames(findings: list[dict], entities: list[tuple[str, str, str, str]]):
    found = schema.conform(pl.DataFrame(findings), "findings")
    rows = pl.DataFrame(entities, schema=["finding_id", "entity_type", "entity_id", "role"], orient="row")
    return found, schema.conform(rows, "finding_entities")


ALICE = "arn:aws:iam::123456789012:user/alice"
BOB = "arn:aws:iam::123456789012:user/bob"


def two_incidents():
    findings = [finding("f1", 0, 8), finding("f2", 1, 5), finding("f3", 2, 3), finding("g1", 0.5, 6), finding("g2", 3)]
    entities = [
        ("f1", "AwsUser", ALICE, "actor"),
        ("f2", "AwsUser", ALICE, "actor"),
        ("f2", "IpAddress", "8.8.4.4", "actor"),
        ("f3", "IpAddress", "8.8.4.4", "network peer"),
        ("g1", "AwsUser", BOB, "actor"),
        ("g2", "AwsUser", BOB, "actor"),
        # Shared by everything: the account, a user agent and a private address link nothing.
        *[(f, "AwsAccount", "123456789012", "target") for f in ("f1", "f2", "f3", "g1", "g2")],
        *[(f, "UserAgent", "aws-cli/2", "actor") for f in ("f1", "g1")],
        *[(f, "IpAddress", "10.0.0.5", "actor") for f in ("f3", "g2")],
    ]
    return frames(findings, entities)


def test_two_unrelated_incidents_give_two_groups():
    findings, entities = two_incidents()
    groups = group_findings(findings, entities, Config())
    assert [sorted(g.finding_ids) for g in groups] == [["f1", "f2", "f3"], ["g1", "g2"]]
    first = groups[0]
    assert first.severity == 8 and first.severity_label == "High"
    assert first.accounts == ["123456789012"]
    assert set(first.entities["category"]) == {"Identity", "Network"}


def test_findings_of_one_actor_far_apart_in_time_stay_apart():
    findings, entities = frames(
        [finding("a", 0), finding("b", 10), finding("c", 100)],
        [(f, "AwsUser", ALICE, "actor") for f in "abc"],
    )
    groups = group_findings(findings, entities, Config(group_window_hours=24))
    assert sorted(sorted(g.finding_ids) for g in groups) == [["a", "b"], ["c"]]


def test_hubs_link_nothing():
    findings, entities = frames(
        [finding("a", 0), finding("b", 1)],
        [("a", "IpAddress", "8.8.8.8", "actor"), ("b", "IpAddress", "8.8.8.8", "actor")],
    )
    assert len(group_findings(findings, entities, Config())) == 1
    assert len(group_findings(findings, entities, Config(), hubs={"IpAddress:8.8.8.8"})) == 2


def test_a_key_created_by_a_principal_joins_its_incident():
    findings, entities = frames(
        [finding("root-login", 0, 7), finding("key-used", 5, 6)],
        [("root-login", "AwsUser", "arn:aws:iam::123456789012:root", "actor"),
         ("key-used", "AccessKey", "AKIANEWKEY0000000001", "actor")],
    )  # fmt: skip
    links = pl.DataFrame(
        {"kind": ["access_key"], "caller": ["arn:aws:iam::123456789012:root"], "caller_session": [None],
         "issued_key": ["AKIANEWKEY0000000001"], "issued_session": [None], "role": [None],
         "issued_to": ["arn:aws:iam::123456789012:user/new"]},
        schema_overrides={"caller_session": pl.String, "issued_session": pl.String, "role": pl.String},
    )  # fmt: skip
    assert len(group_findings(findings, entities, Config())) == 2
    groups = group_findings(findings, entities, Config(), links)
    assert len(groups) == 1 and sorted(groups[0].finding_ids) == ["key-used", "root-login"]


@settings(max_examples=40, deadline=None)
@given(st.permutations(range(5)), st.permutations(range(15)))
def test_shuffling_the_input_changes_no_group_and_no_id(finding_order, entity_order):
    findings, entities = two_incidents()
    expected = [(g.id, g.finding_ids, g.title) for g in group_findings(findings, entities, Config())]
    shuffled = group_findings(findings[list(finding_order)], entities[list(entity_order)], Config())
    assert [(g.id, g.finding_ids, g.title) for g in shuffled] == expected


def test_group_ids_are_uuids_of_the_member_ids():
    assert group_id(["b", "a"]) == group_id(["a", "b"]) != group_id(["a"])
    assert len(group_id(["a"])) == 36


def test_the_tactic_chain_runs_in_kill_chain_order():
    assert tactic_chain(["Exfiltration", "Initial Access", "Defense Evasion", "Persistence", "Initial Access"]) == [
        "Initial Access", "Persistence", "Defense Evasion", "Exfiltration"]  # fmt: skip


def test_a_group_is_found_by_id_or_prefix_and_unknown_ids_exit_4():
    from sleuth.correlate.groups import GroupsResult
    from sleuth.errors import NotFoundError

    findings, entities = two_incidents()
    result = GroupsResult(group_findings(findings, entities, Config()), 5, [])
    first = result.groups[0]
    assert find_group(result, first.id[:8]) is first
    try:
        find_group(result, "nope")
    except NotFoundError as exc:
        assert exc.exit_code == 4 and first.id in exc.fix
    else:
        raise AssertionError("an unknown group id must raise")


def test_graph_renderers_escape_hostile_labels():
    hostile = "evil[red]|`<b>\x1b[31m\"'"
    findings, entities = frames([finding("h1", 0, kind=hostile)], [("h1", "UserAgent", hostile, "actor"),
                                                                   ("h1", "AwsUser", ALICE, "actor")])  # fmt: skip
    group = group_findings(findings, entities, Config())[0]
    graph = group_graph(group)
    text = as_text(graph)
    assert "\x1b" not in text and "\\x1b" in text
    mermaid = as_mermaid(graph)
    assert "<b>" not in mermaid and "\x1b" not in mermaid and '"evil' not in mermaid
    dot = as_dot(graph)
    assert "\x1b" not in dot and '\\"' in dot
    assert "<b>" not in as_graphml(graph).replace("&lt;b&gt;", "")


# --- real attack data ------------------------------------------------------------------------


def _groups_of(path):
    from sleuth.correlate.groups import find_groups
    from sleuth.dataset import open_dataset
    from sleuth.timewindow import TimeWindow

    return find_groups(open_dataset([str(path)], TimeWindow(), Config()), Config()).groups


def test_invictus_attack_is_one_group_and_terraform_noise_stays_out():
    from tests.conftest import shared

    groups = _groups_of(shared("invictus-aws-dataset"))
    attack = groups[0]
    ids = set(attack.entities["entity_id"])
    assert "arn:aws:iam::123837392027:user/bert-jan" in ids
    assert any("role/stratus-red-team-" in i for i in ids)
    assert len(attack.tactics) >= 8 and attack.tactics[0] == "Initial Access"
    # Every finding made only of Terraform's calls is in another group.
    agents = attack.entity_rows.filter(pl.col("entity_type") == "UserAgent")
    per_finding = agents.group_by("finding_id").agg(pl.col("entity_id").str.contains("Terraform").all().alias("tf"))
    assert not per_finding["tf"].any()
    noise = [g for g in groups if g is not attack and "user/bert-jan" in " ".join(g.entities["entity_id"])]
    assert noise and all(
        g.entity_rows.filter(pl.col("entity_type") == "UserAgent")["entity_id"].str.contains("HashiCorp").all()
        for g in noise
    )


def test_panther_root_compromise_is_one_group_from_initial_access_to_exfiltration():
    from tests.conftest import shared

    groups = _groups_of(shared("panther-samples/compromised-root-creds"))
    attack = groups[0]
    kinds = " ".join(attack.findings["type"])
    for kind in (
        "console-brute-force",
        "iam-create-root-access-key",
        "cloudtrail-stop-logging",
        "large-outbound-transfer",
    ):
        assert kind in kinds, kind
    assert attack.tactics[0] == "Initial Access" and "Exfiltration" in attack.tactics
    assert attack.tactics.index("Exfiltration") > attack.tactics.index("Defense Evasion")
    assert attack.severity_label == "Critical"


def test_two_fixture_incidents_in_one_input_give_two_groups(tmp_path):
    """The fixture incident and the compromised-root scenario, concatenated: two incidents, two groups."""
    from tests.conftest import INCIDENT, shared

    incident = _groups_of(INCIDENT)
    root = _groups_of(shared("panther-samples/compromised-root-creds"))
    both = tmp_path / "both"
    both.mkdir()
    import shutil

    shutil.copytree(INCIDENT, both / "incident")
    shutil.copytree(shared("panther-samples/compromised-root-creds"), both / "root")
    together = _groups_of(both)
    assert {g.id for g in together} == {g.id for g in incident} | {g.id for g in root}


def test_group_evidence_names_what_was_new_in_the_incident():
    from sleuth.correlate.groups import find_groups
    from sleuth.dataset import open_dataset
    from sleuth.enrich.geo import GeoResolver
    from sleuth.timewindow import TimeWindow
    from tests.conftest import shared

    data = open_dataset([str(shared("panther-samples/compromised-root-creds"))], TimeWindow(), Config())
    attack = find_groups(data, Config(), GeoResolver(), evidence=True).groups[0]
    evidence = attack.evidence
    assert "92.55.146.245" in evidence["addresses"]["value"].to_list()
    assert evidence["geolocations"].filter(pl.col("new_for_account"))["value"].to_list() == ["Romania"]
    assert "cloudtrail:StopLogging" in evidence["api_calls"]["value"].to_list()
    assert evidence["principals"]["value"].to_list() == ["arn:aws:iam::493859302102:user/tracy_stone"]
