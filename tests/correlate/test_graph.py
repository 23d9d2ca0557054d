"""The behavior graph: typed nodes, typed directed edges with first/last seen and counts, hubs."""

from __future__ import annotations

import dataclasses

from sleuth.config import Config
from sleuth.correlate.graph import build_graph, hub_keys
from sleuth.correlate.lineage import credential_links
from sleuth.dataset import open_dataset
from sleuth.timewindow import TimeWindow
from tests.conftest import INCIDENT

ALICE = "AwsUser:arn:aws:iam::123456789012:user/alice"


def incident_graph(config: Config | None = None):
    config = config or Config()
    data = open_dataset([str(INCIDENT)], TimeWindow(), config)
    frames = data.frames
    links = credential_links(data.events)
    graph = build_graph(data.events, config, frames["flows"], frames["findings"], frames["finding_entities"], links)
    return data, graph


def test_nodes_are_typed_and_edges_counted_with_first_and_last_seen():
    data, graph = incident_graph()
    assert graph.nodes[ALICE]["type"] == "AwsUser" and graph.nodes[ALICE]["category"] == "Identity"
    used = graph.edges[ALICE, "AccessKey:AKIAEXAMPLEALICE0001", "used_key"]
    events = data.events.collect()
    alice_key = events.filter(events["access_key"] == "AKIAEXAMPLEALICE0001")
    assert used["count"] == len(alice_key)
    assert (used["first_seen"], used["last_seen"]) == (alice_key["time"].min(), alice_key["time"].max())
    assert graph.has_edge(ALICE, "IpAddress:203.0.113.66", "called_from")


def test_lineage_edges_show_the_role_assumed_and_the_key_created():
    _, graph = incident_graph()
    assert graph.has_edge(ALICE, "AwsRole:arn:aws:iam::123456789012:role/admin-role", "assumed")
    assert graph.has_edge(ALICE, "AwsRoleSession:AROAEXAMPLEADMINROLE:maint", "assumed")
    assert graph.has_edge(ALICE, "AccessKey:AKIAEXAMPLEBACKUP001", "created_key")


def test_the_account_is_a_hub_and_identities_never_are():
    _, graph = incident_graph()
    assert graph.nodes["AwsAccount:123456789012"]["high_degree"]
    assert not graph.nodes[ALICE]["high_degree"]


def test_an_address_used_by_enough_identities_is_a_hub():
    config = dataclasses.replace(Config(), high_degree_min=2)
    data, graph = incident_graph(config)
    hubs = hub_keys(data.events, config)
    marked = {node for node, attrs in graph.nodes(data=True) if attrs["high_degree"] and attrs["type"] == "IpAddress"}
    assert "IpAddress:203.0.113.66" in hubs  # alice and the admin-role session both called from it
    assert "IpAddress:203.0.113.66" in marked
    assert not hub_keys(data.events, Config())  # at the default (25 identities) nothing in the fixture is


def test_aws_services_acting_for_principals_are_hubs():
    import polars as pl

    from sleuth.correlate.graph import service_host

    frame = pl.DataFrame({"src_ip": ["ec2.amazonaws.com", "AWS Internal", "203.0.113.5", "evil.example.com", None]})
    assert frame.select(service_host()).to_series().to_list() == ["ec2.amazonaws.com", "AWS Internal", None, None, None]
    from tests.conftest import shared

    data = open_dataset([str(shared("invictus-aws-dataset"))], TimeWindow(), Config())
    graph = build_graph(data.events, Config())
    services = [node for node, attrs in graph.nodes(data=True) if attrs["type"] == "AwsService"]
    assert "AwsService:AWS Internal" in services and "AwsService:secretsmanager.amazonaws.com" in services
    assert all(graph.nodes[node]["high_degree"] for node in services)
