"""SPARQL updates built from exact triples, never from pasted text.

Every write of the job queue, the provenance recorder and the token store is ``DELETE DATA`` and/or
``INSERT DATA`` of triples the caller holds as rdflib terms; rdflib's serialiser escapes literals and
``check_iri`` guards graph names, so no user string can change the update's meaning. A delete and an
insert sent together form one request, which the stores apply atomically.

Triples with blank nodes are inserted as ``INSERT { … } WHERE { }``: SPARQL 1.1 allows blank nodes
in INSERT DATA, but Virtuoso 7.2 refuses them there (SP031 "Blank node is not allowed in a constant
clause"); a template with a blank node makes one fresh blank node per label on every server.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from rdflib import BNode, URIRef
from rdflib.term import Node

from kgsched.graph.binding import check_iri

Triples = Iterable[tuple[Node, Node, Node]]


def _block(verb: str, graphs: Mapping[URIRef, Triples]) -> str:
    parts = []
    blank = False
    for graph_iri, triples in graphs.items():
        lines = []
        for s, p, o in triples:
            blank = blank or isinstance(s, BNode) or isinstance(o, BNode)
            lines.append(f"{s.n3()} {p.n3()} {o.n3()} .")
        if lines:
            parts.append(f"GRAPH <{check_iri(graph_iri)}> {{\n" + "\n".join(lines) + "\n}")
    if not parts:
        return ""
    if blank and verb == "INSERT":
        return "INSERT {\n" + "\n".join(parts) + "\n} WHERE { }"
    return f"{verb} DATA {{\n" + "\n".join(parts) + "\n}"


def data_update(insert: Mapping[URIRef, Triples] | None = None,
                delete: Mapping[URIRef, Triples] | None = None) -> str:
    """One update request: DELETE DATA (if any) then INSERT DATA (if any); "" when both are empty."""
    return joined(_block("DELETE", delete or {}), _block("INSERT", insert or {}))


def joined(*operations: str) -> str:
    """Update operations as one request (applied together or not at all); empty ones left out."""
    return " ;\n".join(op for op in operations if op)
