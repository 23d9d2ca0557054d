"""Port scans in flow logs."""

from __future__ import annotations

from sleuth.correlate.detect import port_scan
from tests.correlate.detect.behaviour import at, context, flow, single

SCANNER, TARGET, NEIGHBOUR = "198.51.100.9", "10.0.0.5", "10.0.0.6"


def probes(src: str, dst: str, ports: int, *, step: float = 0.1, eni: str = "eni-0target", **extra) -> list[dict]:
    return [
        flow(src, dst, 50000 + p, 1 + p, 40, time=at(minutes=p * step), interface_id=eni, action="REJECT", **extra)
        for p in range(ports)
    ]


def test_an_external_scan_of_a_local_address_is_low_and_keyed_by_the_target():
    hit = single(port_scan.run(context(flows=probes(SCANNER, TARGET, 30, instance_id="i-0target"))))
    assert (hit["key_type"], hit["key_id"], hit["severity"]) == ("Ec2Instance", "i-0target", 2.0)
    assert hit["title"] == f"Port scan of i-0target ({TARGET}) by {SCANNER}: 30 ports within 10 min"
    assert "30 of 30 flow records rejected" in hit["details"] and "external scanner" in hit["details"]
    assert len(hit["event_ids"]) == 30 and hit["event_ids"][0].startswith(f"eni-0target:{SCANNER}:")
    assert {("IpAddress", SCANNER, "network peer"), ("Ec2Instance", "i-0target", "target")} <= {
        tuple(e.values()) for e in hit["entities"]
    }


def test_an_instance_scanning_its_neighbour_is_medium_and_keyed_by_the_scanner():
    rows = probes(TARGET, NEIGHBOUR, 25, eni="eni-0scanner", instance_id="i-0scanner")
    hit = single(port_scan.run(context(flows=rows)))
    assert (hit["key_type"], hit["key_id"], hit["severity"]) == ("Ec2Instance", "i-0scanner", 5.0)
    assert "the scanner is inside the network" in hit["details"]


def test_both_ends_logging_one_scan_is_one_hit():
    rows = probes(TARGET, NEIGHBOUR, 25, eni="eni-0a") + probes(TARGET, NEIGHBOUR, 25, eni="eni-0b")
    assert len(port_scan.run(context(flows=rows))) == 1


def test_few_ports_or_a_slow_sweep_or_many_peers_on_one_port_fire_nothing():
    assert port_scan.run(context(flows=probes(SCANNER, TARGET, 19))).is_empty()
    assert port_scan.run(context(flows=probes(SCANNER, TARGET, 30, step=1))).is_empty()  # 30 ports in 30 min
    web = [flow(f"198.51.100.{i}", TARGET, 40000 + i, 443, 5000, time=at(minutes=i / 10)) for i in range(100)]
    assert port_scan.run(context(flows=web)).is_empty()
