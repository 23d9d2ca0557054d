"""SSH / RDP brute force in flow logs."""

from __future__ import annotations

from sleuth.correlate.detect import remote_login_brute_force
from tests.correlate.detect.behaviour import at, context, event, flow, single

BOT, HOST = "198.51.100.9", "10.0.0.5"


def attempts(n: int, *, port: int = 22, step: float = 1.0, same_port: bool = False, nbytes: int = 3000) -> list[dict]:
    return [
        flow(BOT, HOST, 40000 + (0 if same_port else i), port, nbytes, time=at(minutes=i * step), instance_id="i-0host")
        for i in range(n)
    ]


def test_many_connections_to_ssh_in_an_hour():
    hit = single(remote_login_brute_force.run(context(flows=attempts(25))))
    assert (hit["key_type"], hit["key_id"], hit["severity"]) == ("Ec2Instance", "i-0host", 2.0)
    assert hit["title"] == f"SSH brute force against i-0host ({HOST}) from {BOT}: 25 connections within an hour"
    assert hit["details"].startswith(f"25 connections from {BOT} to port 22 of {HOST} in 25 min")
    assert len(hit["event_ids"]) == 25


def test_rdp_and_a_peer_known_to_cloudtrail_or_a_long_session_raise_it():
    hit = single(remote_login_brute_force.run(context(flows=attempts(25, port=3389))))
    assert hit["title"].startswith("RDP brute force")
    caller = event("ListBuckets", src_ip=BOT)
    hit = single(remote_login_brute_force.run(context([caller], attempts(25))))
    assert hit["severity"] == 5.0 and "the peer also called AWS APIs as alice" in hit["details"]
    rows = attempts(25)
    rows[-1]["bytes"] = 2_000_000
    assert single(remote_login_brute_force.run(context(flows=rows)))["severity"] == 4.0


def test_few_slow_or_single_connections_and_other_ports_fire_nothing():
    assert remote_login_brute_force.run(context(flows=attempts(19))).is_empty()
    assert remote_login_brute_force.run(context(flows=attempts(25, step=4))).is_empty()  # 15 an hour
    assert remote_login_brute_force.run(context(flows=attempts(60, same_port=True))).is_empty()  # one long session
    assert remote_login_brute_force.run(context(flows=attempts(30, port=443))).is_empty()
    outbound = [flow(HOST, BOT, 40000 + i, 22, 3000, time=at(minutes=i)) for i in range(30)]
    assert remote_login_brute_force.run(context(flows=outbound)).is_empty()
