"""`sleuth search`: events matching a set of filters, in time order."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from sleuth.correlate.entities import failed
from sleuth.dataset import Dataset
from sleuth.errors import UsageError
from sleuth.netaddr import parse_network
from sleuth.patterns import addresses_in, has_wildcard, text_matches


@dataclass(frozen=True)
class EventFilter:
    principal: tuple[str, ...] = ()  # ARN, user, role or session name; wildcards
    ip: tuple[str, ...] = ()  # address or CIDR
    action: tuple[str, ...] = ()  # eventName; wildcards
    service: tuple[str, ...] = ()  # eventSource, with or without .amazonaws.com; wildcards
    access_key: tuple[str, ...] = ()
    errors: bool = False  # only failed calls
    limit: int | None = None


@dataclass
class SearchResult:
    events: pl.DataFrame
    total: int  # matches before --limit


def search(dataset: Dataset, where: EventFilter) -> SearchResult:
    lazy = dataset.events
    for condition in _conditions(dataset, where):
        lazy = lazy.filter(condition)
    matches = lazy.sort("time", "event_id", nulls_last=True).collect()
    total = len(matches)
    if where.limit is not None:
        matches = matches.head(where.limit)
    return SearchResult(matches, total)


def _conditions(dataset: Dataset, where: EventFilter) -> list[pl.Expr]:
    conditions = []
    if where.principal:
        conditions.append(_any(principal_matches(p) for p in where.principal))
    if where.action:
        conditions.append(_any(text_matches(pl.col("action"), p) for p in where.action))
    if where.service:
        conditions.append(_any(_service_matches(p) for p in where.service))
    if where.access_key:
        conditions.append(_any(text_matches(pl.col("access_key"), k) for k in where.access_key))
    if where.errors:
        conditions.append(failed())  # an error code, or a failed console sign-in (which has none)
    if where.ip:
        conditions.append(pl.col("src_ip").is_in(_matching_ips(dataset, where.ip)))
    return conditions


def _any(exprs) -> pl.Expr:
    return pl.any_horizontal(list(exprs)).fill_null(False)


def principal_matches(pattern: str) -> pl.Expr:
    """A principal given as an ARN, a user, role or session name, or a session id; wildcards allowed."""
    name = pl.col("principal").str.extract(r"[/:]([^/:]+)$", 1)
    session_name = pl.col("session").str.extract(r":([^:]+)$", 1)
    columns = [pl.col("principal"), pl.col("actor_arn"), pl.col("user_name"), pl.col("session"), name, session_name]
    return pl.any_horizontal([text_matches(column, pattern) for column in columns]).fill_null(False)


def _service_matches(pattern: str) -> pl.Expr:
    full = pattern if "." in pattern or has_wildcard(pattern) else f"{pattern}.amazonaws.com"
    return text_matches(pl.col("service"), full)


def _matching_ips(dataset: Dataset, ips: tuple[str, ...]) -> list[str]:
    """The distinct source-IP strings in the data that fall in any of the given networks."""
    networks = []
    for text in ips:
        network = parse_network(text)
        if network is None:
            raise UsageError(f"--ip {text!r} is not an IP address or CIDR", "e.g. --ip 203.0.113.7 or 203.0.113.0/24")
        networks.append(network)
    seen = dataset.events.select(pl.col("src_ip").unique()).collect().to_series().drop_nulls().to_list()
    return addresses_in(seen, networks)
