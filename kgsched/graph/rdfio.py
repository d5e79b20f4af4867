"""Parsing RDF input strictly: Oxigraph's parser decides what is valid, rdflib holds the result.

rdflib's Turtle parser accepts much the spec forbids (IRIs with spaces, NUL bytes, bad language
tags); what passes it but not Oxigraph would poison the store or fail later, so Oxigraph parses and
its triples become an rdflib Graph (for pySHACL and serialisation). Oxigraph accepts ill-typed literals
(``"abc"^^xsd:integer``), so every literal is also checked against its XSD datatype's lexical space
(kgsched.graph.literals) wherever it appears.
"""

from __future__ import annotations

import pyoxigraph as ox
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.term import Node

from kgsched.errors import SyntaxProblem
from kgsched.graph.literals import lexical_problem, line_of
from kgsched.namespaces import bind_prefixes

_FORMATS = {
    "turtle": ox.RdfFormat.TURTLE,
    "text/turtle": ox.RdfFormat.TURTLE,
    "nt": ox.RdfFormat.N_TRIPLES,
    "application/n-triples": ox.RdfFormat.N_TRIPLES,
}
_XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"


def ox_to_rdflib(term: ox.NamedNode | ox.BlankNode | ox.Literal) -> Node:
    if isinstance(term, ox.NamedNode):
        return URIRef(term.value)
    if isinstance(term, ox.BlankNode):
        return BNode(term.value)
    if isinstance(term, ox.Literal):
        if term.language:
            return Literal(term.value, lang=term.language)
        datatype = term.datatype.value
        return Literal(term.value, datatype=None if datatype == _XSD_STRING else URIRef(datatype))
    raise SyntaxProblem(f"unsupported RDF term {term!r} (RDF-star triples are not accepted)")


def parse_rdf(data: str | bytes, fmt: str = "turtle", source: str = "<input>") -> Graph:
    """Parse with Oxigraph (strict), return an rdflib Graph; errors name the source, line and column."""
    try:
        ox_format = _FORMATS[fmt]
    except KeyError:
        raise SyntaxProblem(f"unsupported RDF format {fmt!r}; use Turtle or N-Triples") from None
    payload = data.encode("utf-8") if isinstance(data, str) else data
    graph = Graph()
    bind_prefixes(graph)
    try:
        for quad in ox.parse(payload, format=ox_format):
            if isinstance(quad.object, ox.Literal):
                check_literal(quad.object, payload, source)
            graph.add((ox_to_rdflib(quad.subject), ox_to_rdflib(quad.predicate), ox_to_rdflib(quad.object)))
    except SyntaxError as exc:
        raise SyntaxProblem(f"{source}: {exc}", extra=_location(exc)) from exc
    except ValueError as exc:  # e.g. invalid UTF-8
        raise SyntaxProblem(f"{source}: {exc}") from exc
    return graph


def check_literal(literal: ox.Literal, payload: bytes, source: str) -> None:
    """Refuse a literal outside its XSD datatype's lexical space, naming the line and the value."""
    problem = lexical_problem(literal.value, literal.datatype.value)
    if problem is None:
        return
    line = line_of(payload.decode("utf-8", "replace"), literal.value)
    where = f"{source}, line {line}" if line is not None else source
    raise SyntaxProblem(f"{where}: the literal {literal.value!r} is {problem} (ill-typed literals are refused)",
                        extra={"value": literal.value, "datatype": literal.datatype.value,
                               **({"line": line} if line is not None else {})})


def _location(exc: SyntaxError) -> dict[str, int]:
    location = {}
    if exc.lineno is not None:
        location["line"] = exc.lineno
    if exc.offset is not None:
        location["column"] = exc.offset
    return location
