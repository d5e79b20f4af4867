"""Parsing RDF input strictly: Oxigraph's parser decides what is valid, rdflib holds the result.

rdflib's Turtle parser accepts much the spec forbids (IRIs with spaces, NUL bytes, bad language
tags); what passes it but not Oxigraph would poison the store or fail later, so Oxigraph parses and
its triples become an rdflib Graph (for pySHACL and serialisation). Oxigraph accepts ill-typed literals
(``"abc"^^xsd:integer``), so every literal is also checked against its XSD datatype's lexical space
(kgsched.graph.literals) wherever it appears.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

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

#: rdflib writes xsd:string literals without a datatype; both stores' rows drop it to compare equal.
XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"
Triple = tuple[Node, Node, Node]


def ox_to_rdflib(term: ox.NamedNode | ox.BlankNode | ox.Literal,
                 unsupported: type[Exception] = SyntaxProblem) -> Node:
    """The rdflib term for an Oxigraph one. xsd:string literals lose their datatype, as rdflib writes
    them, so rows from both stores compare equal. ``unsupported`` is the error for anything else
    (RDF-star): a syntax problem in a registration, a store error in a query's rows."""
    if isinstance(term, ox.NamedNode):
        return URIRef(term.value)
    if isinstance(term, ox.BlankNode):
        return BNode(term.value)
    if isinstance(term, ox.Literal):
        if term.language:
            return Literal(term.value, lang=term.language)
        datatype = term.datatype.value
        return Literal(term.value, datatype=None if datatype == XSD_STRING else URIRef(datatype))
    raise unsupported(f"unsupported RDF term {term!r} (RDF-star triples are not accepted)")


def parse_triples(data: str | bytes, fmt: str = "turtle", source: str = "<input>") -> Iterator[Triple]:
    """Parse with Oxigraph (strict, literals checked), yield rdflib triples; errors name the source, line
    and column. Terms are converted once each (predicates and shared objects recur on every resource)."""
    try:
        ox_format = _FORMATS[fmt]
    except KeyError:
        raise SyntaxProblem(f"unsupported RDF format {fmt!r}; use Turtle or N-Triples") from None
    payload = data.encode("utf-8") if isinstance(data, str) else data
    memo: dict[Any, Node] = {}
    checked: set[Any] = set()

    def term(value: Any) -> Node:
        converted = memo.get(value)
        if converted is None:
            converted = memo[value] = ox_to_rdflib(value)
        return converted

    try:
        for quad in ox.parse(payload, format=ox_format):
            obj = quad.object
            if isinstance(obj, ox.Literal) and obj not in checked:
                check_literal(obj, payload, source)
                checked.add(obj)
            yield term(quad.subject), term(quad.predicate), term(obj)
    except SyntaxError as exc:
        raise SyntaxProblem(f"{source}: {exc}", extra=_location(exc)) from exc
    except ValueError as exc:  # e.g. invalid UTF-8
        raise SyntaxProblem(f"{source}: {exc}") from exc


def parse_rdf(data: str | bytes, fmt: str = "turtle", source: str = "<input>") -> Graph:
    """Parse with Oxigraph (strict), return an rdflib Graph; errors name the source, line and column."""
    graph = Graph()
    bind_prefixes(graph)
    for triple in parse_triples(data, fmt, source):
        graph.add(triple)
    return graph


class TripleSet:
    """A set of triples indexed by subject, with the part of rdflib's Graph API registration uses.

    Filling an rdflib Graph costs ~35 µs a triple (3.5 s for a 100,000-triple registration); this costs
    a few dict operations."""

    def __init__(self, triples: Iterable[Triple] = ()) -> None:
        self.spo: dict[Node, dict[Node, dict[Node, None]]] = {}
        self._length = 0
        for triple in triples:
            self.add(triple)

    def add(self, triple: Triple) -> None:
        s, p, o = triple
        objects = self.spo.setdefault(s, {}).setdefault(p, {})
        if o not in objects:
            objects[o] = None
            self._length += 1

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[Triple]:
        for s, predicates in self.spo.items():
            for p, objects in predicates.items():
                for o in objects:
                    yield s, p, o

    def __contains__(self, triple: Triple) -> bool:
        s, p, o = triple
        return o in self.spo.get(s, {}).get(p, {})

    def subjects(self) -> Iterator[Node]:
        """Each subject once."""
        return iter(self.spo)

    def objects(self, subject: Node | None = None, predicate: Node | None = None) -> Iterator[Node]:
        if subject is not None:
            predicates = self.spo.get(subject, {})
            if predicate is not None:
                yield from predicates.get(predicate, ())
                return
            for objects in predicates.values():
                yield from objects
            return
        for predicates in self.spo.values():
            if predicate is not None:
                yield from predicates.get(predicate, ())
            else:
                for objects in predicates.values():
                    yield from objects

    def triples(self, pattern: tuple[Node | None, Node | None, Node | None]) -> Iterator[Triple]:
        s, p, o = pattern
        subjects = [s] if s is not None else list(self.spo)
        for subject in subjects:
            for predicate, objects in self.spo.get(subject, {}).items():
                if p is not None and predicate != p:
                    continue
                for obj in objects:
                    if o is None or obj == o:
                        yield subject, predicate, obj

    def to_graph(self) -> Graph:
        graph = Graph()
        bind_prefixes(graph)
        for triple in self:
            graph.add(triple)
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
