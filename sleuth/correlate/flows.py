"""VPC flows seen from their local end: which side of a record is the interface's own, and which the peer.

A flow log names the interface's own address on one side of every record; which side that is tells
the direction. The detections, profiles and investigations all orient flows this one way.
"""

from __future__ import annotations

import weakref

import polars as pl

_INTERNAL_V4 = (
    r"^(?:10\.|127\.|0\.|192\.168\.|169\.254\.|172\.(?:1[6-9]|2\d|3[01])\.|100\.(?:6[4-9]|[7-9]\d|1[01]\d|12[0-7])\.)"
)
_INTERNAL_V6 = r"^(?:f[cd]|fe[89ab])|^::1?$"


def is_internal(address: pl.Expr) -> pl.Expr:
    """True for private, shared (100.64/10), loopback, link-local and unspecified addresses of a normalised
    address; false for every other one. Documentation ranges (the fixtures' 203.0.113.0/24) and the
    reserved ranges anonymised logs use count as external, as the public addresses they stand in for."""
    v6 = address.str.contains(":", literal=True)
    return (
        pl.when(v6)
        .then(address.str.to_lowercase().str.contains(_INTERNAL_V6))
        .otherwise(address.str.contains(_INTERNAL_V4))
    ).fill_null(False)


_ADDRESSES: dict[int, tuple[weakref.ref, pl.DataFrame]] = {}


def interface_addresses(flows: pl.DataFrame) -> pl.DataFrame:
    """interface_id -> its own address (`_eni_addr`) and instance (`_eni_instance`). A flow log names the
    interface's address on one side of every record: of the two addresses of the interface's first
    record, the one found in more of its records (on a tie, the internal one). Every flow detection
    needs it for the same frame: the last result is kept while that frame lives."""
    cached = _ADDRESSES.get(id(flows))
    if cached and cached[0]() is flows:
        return cached[1]
    result = _interface_addresses(flows)
    _ADDRESSES.clear()
    _ADDRESSES[id(flows)] = (weakref.ref(flows), result)
    return result


def _interface_addresses(flows: pl.DataFrame) -> pl.DataFrame:
    firsts = flows.group_by("interface_id").agg(
        _a=pl.col("src_addr").first(),
        _b=pl.col("dst_addr").first(),
        _eni_instance=pl.col("instance_id").drop_nulls().first(),
    )
    seen = {name: (pl.col("src_addr") == pl.col(name)) | (pl.col("dst_addr") == pl.col(name)) for name in ("_a", "_b")}
    counts = (
        flows.lazy()
        .select("interface_id", "src_addr", "dst_addr")
        .join(firsts.lazy().drop_nulls("interface_id"), on="interface_id")
        .group_by("interface_id")
        .agg(pl.col("_a", "_b", "_eni_instance").first(), _in_a=seen["_a"].sum(), _in_b=seen["_b"].sum())
        .collect()
    )
    prefer_a = (pl.col("_in_a") > pl.col("_in_b")) | ((pl.col("_in_a") == pl.col("_in_b")) & is_internal(pl.col("_a")))
    return counts.select("interface_id", "_eni_instance", _eni_addr=pl.when(prefer_a).then("_a").otherwise("_b"))


def orient(flows: pl.DataFrame, addresses: pl.DataFrame | None = None) -> pl.DataFrame:
    """`flows` with the local side and the peer side told apart: `_local`, `_peer` (normalised addresses),
    `_local_port`, `_peer_port`, `_outbound` (the local side sent it). The local side is the one the
    flow-log direction names, else the interface's own address (`interface_addresses`: pass the one of
    all flows when `flows` is a selection), else the internal one of the two."""
    addresses = interface_addresses(flows) if addresses is None else addresses
    flows = flows.join(addresses, on="interface_id", how="left", maintain_order="left")
    src, dst = pl.col("src_addr"), pl.col("dst_addr")  # flow logs write addresses in canonical form
    direction = pl.col("flow_direction")
    known = pl.when(direction == "egress").then(True).when(direction == "ingress").then(False)
    by_eni = pl.when(src == pl.col("_eni_addr")).then(True).when(dst == pl.col("_eni_addr")).then(False)
    flows = flows.with_columns(_outbound=pl.coalesce(known, by_eni))
    # Only records neither names (no interface, or secondary addresses): the internal side is local.
    undecided = flows.filter(pl.col("_outbound").is_null())
    if len(undecided):
        scope = pl.when(is_internal(dst) & ~is_internal(src)).then(False).otherwise(True)
        flows = pl.concat([flows.filter(pl.col("_outbound").is_not_null()), undecided.with_columns(_outbound=scope)])
    out = pl.col("_outbound")
    return flows.with_columns(
        _local=pl.when(out).then("src_addr").otherwise("dst_addr"),
        _peer=pl.when(out).then("dst_addr").otherwise("src_addr"),
        _local_port=pl.when(out).then("src_port").otherwise("dst_port"),
        _peer_port=pl.when(out).then("dst_port").otherwise("src_port"),
        instance_id=pl.coalesce("instance_id", "_eni_instance"),
    )


def interface_ends(flows: pl.LazyFrame, interfaces: list[str], where: pl.Expr | None = None) -> pl.DataFrame:
    """`interface_addresses` of `interfaces` from all their flows (`where` narrows them, e.g. to a
    scope), for orienting a selection of those flows: in a selection that holds only an instance's
    flows with one peer, both addresses are equally common and the tie could pick the peer."""
    chosen = pl.col("interface_id").is_in(interfaces)
    selected = flows.filter(chosen if where is None else chosen & where)
    return interface_addresses(selected.select("interface_id", "src_addr", "dst_addr", "instance_id").collect())

