"""Offline enrichment of addresses: geolocation and AS organization (`sleuth.enrich.geo`) and threat-intel
address lists (`sleuth.enrich.intel`). This module holds what both share: longest-prefix matching."""

from __future__ import annotations

from typing import Generic, TypeVar

from sleuth.netaddr import Address, Network

T = TypeVar("T")

_BITS = {4: 32, 6: 128}


class PrefixTable(Generic[T]):
    """Values keyed by IPv4/IPv6 networks, looked up by address with the most specific network winning.

    One dict per (IP version, prefix length), keyed by the network's leading bits: a lookup costs one
    shift and one dict probe per prefix length in use (a few), whatever the number of networks.
    """

    def __init__(self) -> None:
        self._tables: dict[int, dict[int, dict[int, T]]] = {4: {}, 6: {}}
        self._lengths: dict[int, list[int]] = {4: [], 6: []}
        self._count = 0

    def add(self, network: Network, value: T, replace: bool = False) -> bool:
        """Store `value` for `network`; an already listed network keeps its value unless `replace`."""
        version, length = network.version, network.prefixlen
        key = int(network.network_address) >> (_BITS[version] - length)
        table = self._tables[version].get(length)
        if table is None:
            table = self._tables[version][length] = {}
            self._lengths[version] = sorted(self._tables[version], reverse=True)
        if key in table:
            if not replace:
                return False
        else:
            self._count += 1
        table[key] = value
        return True

    def get(self, address: Address) -> T | None:
        """The value of the most specific network containing `address`, or None."""
        version = address.version
        number, bits, tables = int(address), _BITS[version], self._tables[version]
        for length in self._lengths[version]:
            value = tables[length].get(number >> (bits - length))
            if value is not None:
                return value
        return None

    def __len__(self) -> int:
        return self._count
