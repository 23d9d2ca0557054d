"""Traffic with, and API calls from, addresses on a threat-intel list."""

from __future__ import annotations

from sleuth.correlate.detect import intel_traffic
from tests.conftest import shared
from tests.correlate.detect.behaviour import FakeIntel, at, context, event, flow, real, single

BAD, HOST = "198.51.100.66", "10.0.0.5"
INTEL = FakeIntel({BAD: "C2 server"})


def test_an_instance_sending_to_a_flagged_address_is_high():
    rows = [flow(HOST, BAD, 40000, 443, 5000, instance_id="i-0host"), flow(BAD, HOST, 443, 40000, 800)]
    hit = single(intel_traffic.run(context(flows=rows, intel=INTEL)))
    assert (hit["key_type"], hit["key_id"], hit["severity"]) == ("Ec2Instance", "i-0host", 8.0)
    assert (
        hit["details"] == f"FLAGGED_IP_ADDRESS {BAD}: C2 server (test-list.txt); 2 flow records, 5000 bytes sent to it"
    )
    assert hit["title"] == f"Traffic between i-0host ({HOST}) and flagged address {BAD}"


def test_refused_probes_from_a_flagged_address_are_low():
    rows = [flow(BAD, HOST, 40000 + i, 22, 60, time=at(minutes=i), action="REJECT") for i in range(3)]
    hit = single(intel_traffic.run(context(flows=rows, intel=INTEL)))
    assert (hit["key_type"], hit["severity"]) == ("IpAddress", 2.0) and "all rejected" in hit["details"]


def test_api_calls_from_a_flagged_address():
    rows = [event("ListBuckets", src_ip="198.051.100.066"), event("GetObject", src_ip=BAD, error_code="AccessDenied")]
    hit = single(intel_traffic.run(context(rows, intel=INTEL)))
    assert (hit["key_type"], hit["key_id"], hit["severity"]) == ("AwsUser", "arn:aws:iam::123456789012:user/alice", 6.0)
    assert "2 calls (1 succeeded): ListBuckets, GetObject" in hit["details"]


def test_without_a_list_or_a_listed_address_nothing_fires():
    rows = [flow(HOST, "198.51.100.1", 40000, 443, 5000)]
    assert intel_traffic.run(context([event("ListBuckets")], rows, intel=INTEL)).is_empty()
    assert intel_traffic.run(context([event("ListBuckets", src_ip=BAD)], rows)).is_empty()
    assert intel_traffic.run(context([event("ListBuckets", src_ip=BAD)], rows, intel=FakeIntel({}))).is_empty()


def test_panther_attacker_address_listed():
    ctx = real(shared("panther-samples/compromised-root-creds"), intel=FakeIntel({"92.55.146.245": "attacker"}))
    hits = intel_traffic.run(ctx)
    assert sorted(hits["key_id"]) == ["172.31.77.31", "arn:aws:iam::493859302102:root",
                                      "arn:aws:iam::493859302102:user/tracy_stone"]  # fmt: skip
    assert hits.filter(hits["key_id"] == "172.31.77.31")["severity"].item() == 8.0
