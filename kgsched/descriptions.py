"""A resource's bounded description in an rdflib graph: its triples and those of the blank nodes it reaches.

The registry replaces exactly this much when a registrant describes a resource again, and the runner
agent sends exactly this much of its configuration file when it registers itself. It lives in the
base layer because both use it and the runner may import nothing of the server (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rdflib import BNode, Graph
from rdflib.term import Node


def describe_closure(graph: Graph | Any, roots: Iterable[Node]) -> set[tuple[Node, Node, Node]]:
    """Triples of the roots and, recursively, of blank nodes they point to (their bounded description).

    ``graph`` is an rdflib graph, or anything with an ``spo`` index (subject → predicate → objects),
    such as the registry's own triple sets (kgsched.graph.rdfio.TripleSet): the fast path."""
    seen: set[Node] = set()
    stack = list(roots)
    triples: set[tuple[Node, Node, Node]] = set()
    spo = getattr(graph, "spo", None)
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        if spo is not None:
            for p, objects in spo.get(node, {}).items():
                for o in objects:
                    triples.add((node, p, o))
                    if type(o) is BNode:
                        stack.append(o)
            continue
        for s, p, o in graph.triples((node, None, None)):
            triples.add((s, p, o))
            if isinstance(o, BNode):
                stack.append(o)
    return triples
