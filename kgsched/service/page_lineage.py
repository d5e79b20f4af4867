"""A product's lineage as a picture: an SVG drawn on the server from queries/product-lineage.rq rows.

No graph-drawing dependency: the lineage is a small DAG (product ← execution ← used entity ← …), laid
out in layers by distance from the product (top) and drawn as boxes and arrows. Every node links to
its resource page; every label is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from rdflib.term import Node

NODE_WIDTH = 230
NODE_HEIGHT = 46
GAP_X = 30
GAP_Y = 56
MARGIN = 20
MAX_PER_LAYER = 12  # a wider layer is cut, with a note, so the picture stays readable


@dataclass
class LineageNode:
    iri: str
    kind: str  # "product", "dataset" or "execution"
    title: str
    subtitle: str = ""
    layer: int = 0
    children: list[str] = field(default_factory=list)


def lineage_nodes(product: str, rows: Sequence[Mapping[str, Node]], label: Callable[[str], str]
                  ) -> dict[str, LineageNode]:
    """Nodes and edges (entity → its execution → the entities it used) from product-lineage rows."""
    nodes: dict[str, LineageNode] = {product: LineageNode(product, "product", label(product))}
    for row in rows:
        entity, execution = str(row["entity"]), str(row["execution"])
        entity_node = nodes.setdefault(entity, LineageNode(entity, "product", label(entity)))
        if execution not in nodes:
            workflow = label(str(row["workflow"])) if row.get("workflow") is not None else "execution"
            runner = label(str(row["runner"])) if row.get("runner") is not None else ""
            outcome = str(row["outcome"]).rsplit("#", 1)[-1] if row.get("outcome") is not None else ""
            nodes[execution] = LineageNode(execution, "execution", workflow,
                                           " · ".join(part for part in (runner, outcome) if part))
        if execution not in entity_node.children:
            entity_node.children.append(execution)
        used = row.get("used")
        if used is not None:
            used_iri = str(used)
            if used_iri not in nodes:
                title = str(row["usedLabel"]) if row.get("usedLabel") is not None else label(used_iri)
                nodes[used_iri] = LineageNode(used_iri, "dataset", title)
            if used_iri not in nodes[execution].children:
                nodes[execution].children.append(used_iri)
    for node in nodes.values():  # an entity something generated is a product, the others are data
        if node.kind == "dataset" and node.children:
            node.kind = "product"
    _assign_layers(nodes, product)
    return nodes


def _assign_layers(nodes: dict[str, LineageNode], root: str) -> None:
    """Layer = longest path from the product (so every arrow points down); back edges of a cycle are ignored."""
    order: list[str] = []  # post-order: children before parents
    seen = {root}
    stack: list[tuple[str, int]] = [(root, 0)]
    while stack:
        iri, i = stack.pop()
        children = nodes[iri].children
        if i < len(children):
            stack.append((iri, i + 1))
            child = children[i]
            if child not in seen:
                seen.add(child)
                stack.append((child, 0))
        else:
            order.append(iri)
    position = {iri: i for i, iri in enumerate(order)}
    for iri in reversed(order):
        for child in nodes[iri].children:
            if position.get(child, len(order)) < position[iri]:
                nodes[child].layer = max(nodes[child].layer, nodes[iri].layer + 1)


def _clip(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def lineage_svg(nodes: Mapping[str, LineageNode], link: Callable[[str], str]) -> str:
    """The SVG picture; ``link(iri)`` is the URL a node opens."""
    layers: dict[int, list[LineageNode]] = {}
    for node in nodes.values():
        layers.setdefault(node.layer, []).append(node)
    positions: dict[str, tuple[float, float]] = {}
    widest = max(min(len(row), MAX_PER_LAYER) for row in layers.values())
    width = MARGIN * 2 + widest * NODE_WIDTH + (widest - 1) * GAP_X + 100  # room for arrows that bow out
    notes = []
    for layer, row in sorted(layers.items()):
        row.sort(key=lambda n: (n.kind, n.title, n.iri))
        if len(row) > MAX_PER_LAYER:
            notes.append((layer, len(row) - MAX_PER_LAYER))
            row[:] = row[:MAX_PER_LAYER]
        row_width = len(row) * NODE_WIDTH + (len(row) - 1) * GAP_X
        left = (width - row_width) / 2
        for i, node in enumerate(row):
            positions[node.iri] = (left + i * (NODE_WIDTH + GAP_X), MARGIN + layer * (NODE_HEIGHT + GAP_Y))
    height = MARGIN * 2 + (max(layers) + 1) * NODE_HEIGHT + max(layers) * GAP_Y
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="lineage" role="img" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" font-family="system-ui, sans-serif">',
        "<title>Lineage: the product (top), the executions that made it and what they used</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#567"/></marker></defs>',
    ]
    for node in nodes.values():
        if node.iri not in positions:
            continue
        x, y = positions[node.iri]
        for child in node.children:
            if child in positions:
                cx, cy = positions[child]
                x1, y1, x2, y2 = x + NODE_WIDTH / 2, y + NODE_HEIGHT, cx + NODE_WIDTH / 2, cy
                if nodes[child].layer - node.layer > 1:  # skips a layer: bow out so no box hides it
                    bow = NODE_WIDTH / 2 + 80
                    path = (f"M {x1:.0f} {y1:.0f} C {x1 + bow:.0f} {y1 + 40:.0f} {x2 + bow:.0f} {y2 - 40:.0f} "
                            f"{x2:.0f} {y2:.0f}")
                else:
                    path = f"M {x1:.0f} {y1:.0f} L {x2:.0f} {y2:.0f}"
                parts.append(f'<path d="{path}" fill="none" stroke="#567" stroke-width="1.4" '
                             'marker-end="url(#arrow)"/>')
    fills = {"product": "#dff0d8", "dataset": "#fcf3cf", "execution": "#dbe9f6"}
    for node in nodes.values():
        if node.iri not in positions:
            continue
        x, y = positions[node.iri]
        radius = 22 if node.kind != "execution" else 4
        parts.append(
            f'<a href="{html.escape(link(node.iri))}" class="node {node.kind}">'
            f"<title>{html.escape(node.iri)}</title>"
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{NODE_WIDTH}" height="{NODE_HEIGHT}" rx="{radius}" '
            f'fill="{fills[node.kind]}" stroke="#456"/>'
            f'<text x="{x + NODE_WIDTH / 2:.0f}" y="{y + 19:.0f}" text-anchor="middle" font-size="13">'
            f"{html.escape(_clip(node.title))}</text>"
            f'<text x="{x + NODE_WIDTH / 2:.0f}" y="{y + 36:.0f}" text-anchor="middle" font-size="11" fill="#555">'
            f"{html.escape(_clip(node.subtitle or node.kind, 36))}</text></a>")
    for layer, hidden in notes:
        parts.append(f'<text x="{MARGIN}" y="{MARGIN + layer * (NODE_HEIGHT + GAP_Y) - 6}" font-size="11">'
                     f"(+{hidden} more not drawn)</text>")
    parts.append("</svg>")
    return "\n".join(parts)
