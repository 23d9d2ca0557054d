"""An incident graph as text (terminal), Mermaid (tickets), DOT (Graphviz) or GraphML (Gephi).

The graph is a networkx MultiDiGraph whose nodes carry `type`, `label` and optionally `severity`,
and whose edges carry `label`. Every label comes from log data: each format escapes it its own way.
"""

from __future__ import annotations

import io
import re
from datetime import datetime
from typing import TYPE_CHECKING

from sleuth.report import escape

if TYPE_CHECKING:  # networkx loads in ~0.1 s: only the commands that draw a graph pay for it
    import networkx as nx

_SHAPES = {"Finding": ("{{", "}}"), "IpAddress": ("([", "])"), "AccessKey": ("[/", "/]")}


def _nodes(graph: nx.MultiDiGraph) -> list[str]:
    """Findings first (most severe first), then entities by type and label: a stable order."""
    return sorted(
        graph.nodes,
        key=lambda n: (
            graph.nodes[n].get("type") != "Finding",
            -(graph.nodes[n].get("severity") or 0),
            graph.nodes[n].get("type", ""),
            graph.nodes[n].get("label", n),
        ),
    )


def _entity_line(graph: nx.MultiDiGraph, role: str, target: str) -> str:
    data = graph.nodes[target]
    return f"{escape.terminal(role)}: {data.get('type')} {escape.terminal(data.get('label', target))}"


def as_text(graph: nx.MultiDiGraph) -> str:
    """The entities most findings share, once; then a tree per finding with its other entities and
    their roles; then the links between entities. Readable at 30 nodes and more."""
    lines: list[str] = []
    findings = [node for node in _nodes(graph) if graph.nodes[node].get("type") == "Finding"]
    named: dict[tuple[str, str], int] = {}
    for node in findings:
        for _, target, edge in graph.out_edges(node, data=True):
            key = (edge.get("label", ""), target)
            named[key] = named.get(key, 0) + 1
    common = {key for key, count in named.items() if len(findings) >= 4 and count * 2 >= len(findings)}
    if common:
        lines.append(f"Named by most of the {len(findings)} findings:")
        for role, target in sorted(common, key=lambda k: (graph.nodes[k[1]].get("type"), k[1], k[0])):
            lines.append(f"  · {_entity_line(graph, role, target)} ({named[(role, target)]} findings)")
    for node in findings:
        lines.append(f"● {escape.terminal(graph.nodes[node].get('label', node))}")
        edges = [
            (target, edge.get("label", ""))
            for _, target, edge in graph.out_edges(node, data=True)
            if (edge.get("label", ""), target) not in common
        ]
        edges.sort(key=lambda item: (graph.nodes[item[0]].get("type"), item[0]))
        for index, (target, role) in enumerate(edges):
            branch = "└─" if index == len(edges) - 1 else "├─"
            lines.append(f"  {branch} {_entity_line(graph, role, target)}")
    links = [
        (source, target, edge)
        for source, target, edge in graph.edges(data=True)
        if graph.nodes[source].get("type") != "Finding"
    ]
    if links:
        lines.append("Links between entities:")
        for source, target, edge in sorted(links, key=lambda e: (e[0], e[1], e[2].get("label", ""))):
            start = escape.terminal(graph.nodes[source].get("label", source))
            end = escape.terminal(graph.nodes[target].get("label", target))
            lines.append(f"  {start} --{escape.terminal(edge.get('label', ''))}--> {end}")
    return "\n".join(lines) + "\n"


def as_mermaid(graph: nx.MultiDiGraph) -> str:
    ids = {node: f"n{i}" for i, node in enumerate(_nodes(graph))}
    lines = ["graph LR"]
    for node, short in ids.items():
        data = graph.nodes[node]
        start, end = _SHAPES.get(data.get("type", ""), ("[", "]"))
        label = escape.mermaid_label(f"{data.get('type')}: {data.get('label', node)}")
        lines.append(f'  {short}{start}"{label}"{end}')
    for source, target, edge in sorted(graph.edges(data=True), key=lambda e: (ids[e[0]], ids[e[1]])):
        lines.append(f'  {ids[source]} -->|"{escape.mermaid_label(edge.get("label", ""))}"| {ids[target]}')
    return "\n".join(lines) + "\n"


def _dot_text(text: str) -> str:
    return escape.visible(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def as_dot(graph: nx.MultiDiGraph, name: str = "incident") -> str:
    ids = {node: f"n{i}" for i, node in enumerate(_nodes(graph))}
    lines = [f'digraph "{_dot_text(name)}" {{', "  rankdir=LR;", "  node [shape=box, fontname=Helvetica];"]
    for node, short in ids.items():
        data = graph.nodes[node]
        shape = {"Finding": "hexagon", "IpAddress": "ellipse", "AccessKey": "parallelogram"}.get(
            data.get("type"), "box"
        )
        # DOT's \n between type and label; a newline in the data stays the text \n (written \\n).
        label = f"{_dot_text(str(data.get('type')))}\\n{_dot_text(data.get('label', node))}"
        lines.append(f'  {short} [label="{label}", shape={shape}];')
    for source, target, edge in sorted(graph.edges(data=True), key=lambda e: (ids[e[0]], ids[e[1]])):
        lines.append(f'  {ids[source]} -> {ids[target]} [label="{_dot_text(edge.get("label", ""))}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


# Characters XML 1.0 cannot hold (ElementTree writes them raw and the file no longer parses).
_XML_INVALID = re.compile("[\ud800-\udfff\ufffe\uffff]")


def _xml_text(text: str) -> str:
    return _XML_INVALID.sub(lambda match: f"\\u{ord(match.group(0)):04x}", escape.visible(text))


def as_graphml(graph: nx.MultiDiGraph) -> str:
    """GraphML with string, number and boolean attributes (times as ISO 8601, lists joined)."""
    import networkx as nx

    clean = nx.MultiDiGraph()
    for node, data in graph.nodes(data=True):
        clean.add_node(_xml_text(str(node)), **{k: _graphml_value(v) for k, v in data.items() if v is not None})
    for source, target, key, data in graph.edges(keys=True, data=True):
        clean.add_edge(
            _xml_text(str(source)),
            _xml_text(str(target)),
            key=str(key),
            **{k: _graphml_value(v) for k, v in data.items() if v is not None},
        )
    buffer = io.BytesIO()
    nx.write_graphml(clean, buffer, encoding="utf-8")
    return buffer.getvalue().decode("utf-8")


def _graphml_value(value):
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return ", ".join(_xml_text(str(v)) for v in value)
    return _xml_text(str(value))


RENDERERS = {"mermaid": as_mermaid, "dot": as_dot, "graphml": as_graphml, "text": as_text}
