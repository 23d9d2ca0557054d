"""Large outbound transfers in flow logs."""

from __future__ import annotations

from sleuth.correlate.detect import large_outbound_transfer
from tests.conftest import shared
from tests.correlate.detect.behaviour import FakeGeo, FakeIntel, at, context, flow, real, roles, single

HOST, PEER, MIB = "10.0.0.5", "198.51.100.7", 1 << 20


def sends(
    total_mib: float, *, parts: int = 4, dst: str = PEER, src_port: int = 40000, dst_port: int = 22
) -> list[dict]:
    return [
        flow(HOST, dst, src_port, dst_port, int(total_mib * MIB / parts), time=at(minutes=i), instance_id="i-0host")
        for i in range(parts)
    ]


def test_two_mebibytes_to_one_address():
    hit = single(large_outbound_transfer.run(context(flows=sends(2))))
    assert (hit["key_type"], hit["key_id"]) == ("Ec2Instance", "i-0host")
    assert hit["severity"] == 4.5  # the base, and half a point for one doubling above 1 MiB
    assert hit["title"] == f"2.0 MiB sent from i-0host ({HOST}, eni-0aaa) to {PEER}"
    assert hit["count"] == 4 and len(hit["event_ids"]) == 4
    assert {("Ec2Instance", "i-0host", "actor"), ("IpAddress", PEER, "network peer")} <= roles(hit)
    assert single(large_outbound_transfer.run(context(flows=sends(64))))["severity"] == 6.0  # volume adds at most 2


def test_below_the_threshold_inbound_internal_web_serving_and_amazon_peers_fire_nothing():
    assert large_outbound_transfer.run(context(flows=sends(0.9))).is_empty()
    inbound = [flow(PEER, HOST, 22, 40000, 2 * MIB)]
    assert large_outbound_transfer.run(context(flows=inbound)).is_empty()
    assert large_outbound_transfer.run(context(flows=sends(5, dst="10.0.0.6"))).is_empty()
    assert large_outbound_transfer.run(context(flows=sends(5, src_port=443, dst_port=51000))).is_empty()
    rejected = [row | {"action": "REJECT"} for row in sends(5)]
    assert large_outbound_transfer.run(context(flows=rejected)).is_empty()
    geo = FakeGeo({PEER: ("public", "US", "AMAZON-02", 39.0, -77.0)})
    assert large_outbound_transfer.run(context(flows=sends(5), geo=geo)).is_empty()


def test_a_peer_on_an_intel_list_raises_it():
    hit = single(large_outbound_transfer.run(context(flows=sends(2), intel=FakeIntel({PEER: "known drop"}))))
    assert hit["severity"] == 7.5 and "FLAGGED_IP_ADDRESS: known drop (test-list.txt)" in hit["details"]


def test_panther_instance_sends_to_the_attacker():
    hit = single(large_outbound_transfer.run(real(shared("panther-samples/compromised-root-creds"))))
    assert (hit["key_type"], hit["key_id"]) == ("IpAddress", "172.31.77.31")
    assert hit["title"] == "2.0 MiB sent from 172.31.77.31 (eni-0b13344793d4fde67) to 92.55.146.245"
    assert "the peer also called AWS APIs as root, tracy_stone" in hit["details"]
    assert hit["severity"] == 7.0  # the attacker's address is a CloudTrail source
    assert {("IpAddress", "172.31.77.31", "actor"), ("IpAddress", "92.55.146.245", "network peer"),
            ("AwsUser", "arn:aws:iam::493859302102:root", "actor")} <= roles(hit)  # fmt: skip
    assert all(key.startswith("eni-0b13344793d4fde67:") for key in hit["event_ids"])
