"""IP addresses as they appear in logs: IPv4 with leading zeros, IPv6, service host names."""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

_IPV4_LOOSE = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=65536)
def parse_ip(text: str | None) -> Address | None:
    """The address in `text`, or None for host names such as ec2.amazonaws.com or "AWS Internal".

    Anonymised logs write IPv4 octets with leading zeros (035.249.253.232), which Python's parser
    rejects; they are read as decimal.
    """
    if not text:
        return None
    text = text.strip()
    if _IPV4_LOOSE.match(text):
        text = ".".join(str(int(part)) for part in text.split("."))
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def parse_network(text: str) -> Network | None:
    """An address or CIDR given by a user (a bare address is a /32 or /128)."""
    text = text.strip()
    address, _, prefix = text.partition("/")
    parsed = parse_ip(address)
    if parsed is None:
        return None
    try:
        return ipaddress.ip_network(f"{parsed}/{prefix}" if prefix else str(parsed), strict=False)
    except ValueError:
        return None


_INTERNAL = tuple(
    ipaddress.ip_network(cidr)
    for cidr in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4", "::/128", "::1/128", "fc00::/7", "fe80::/10", "ff00::/8",
    )
)  # fmt: skip


def is_external(address: Address) -> bool:
    """An address outside every private, loopback, link-local, multicast and reserved-for-future range:
    one an attacker can come from. Documentation ranges (203.0.113.0/24 ...) count as external, so
    that examples and fixtures behave like the internet they stand for."""
    return not any(address.version == network.version and address in network for network in _INTERNAL)
