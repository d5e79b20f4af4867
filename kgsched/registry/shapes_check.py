"""The project's SHACL shapes compiled into Python checks: the registration's fast path.

pySHACL costs ~160 ms per validation before the data (it copies the ontology and walks every shape)
and ~6,000 triples/s on large bodies, which made registration the service's bottleneck (issue 15).
The shapes in ``shapes/`` use a small part of SHACL Core — class targets, predicate paths, and the
components in ``SUPPORTED`` — so they are compiled once into plain objects and checked against a
subject-indexed view of the data, the context and the ontology.

This check decides only *whether* data conforms. When it finds a violation, registration runs pySHACL
on the offending resources to produce the report (the same messages and Turtle report as before);
when the shapes use anything outside ``SUPPORTED``, ``compiled_shapes()`` returns None and pySHACL
decides everything. tests/test_shapes_check.py compares both verdicts on the examples and the invalid
corpus. Semantics follow SHACL Core: sh:class holds for SHACL instances (rdf:type then
rdfs:subClassOf*, read from the data graph, which includes the ontology); sh:in compares RDF terms;
sh:datatype wants that exact datatype (a plain literal is xsd:string, a tagged one rdf:langString); a
value that cannot be compared fails sh:minInclusive & co.; sh:pattern and sh:minLength fail on blank
nodes.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.collection import Collection
from rdflib.namespace import RDF, RDFS, SH, XSD
from rdflib.term import Node

from kgsched import resources

_TYPE, _SUBCLASS, _XSD_STRING = RDF.type, RDFS.subClassOf, XSD.string
RDF_LANGSTRING = URIRef("http://www.w3.org/1999/02/22-rdf-syntax-ns#langString")
SUPPORTED = {
    SH.targetClass, SH.property, SH.path, SH.minCount, SH.maxCount, SH["class"], SH.datatype, SH.nodeKind,
    SH.minInclusive, SH.minExclusive, SH.maxInclusive, SH.maxExclusive, SH["in"], SH.node, SH.pattern,
    SH.flags, SH["or"], SH.xone, SH["and"], SH["not"], SH.minLength, SH.maxLength, SH.message, SH.name,
    SH.description,
}


class Unsupported(Exception):
    """The shapes use a SHACL feature this module does not implement: pySHACL decides."""


@dataclass(eq=False)
class Shape:
    """One shape: constraints on a value node (a node shape's focus, or each value of ``path``)."""

    node: Node
    path: URIRef | None = None
    targets: list[URIRef] = field(default_factory=list)
    min_count: int = 0
    max_count: int | None = None
    classes: list[URIRef] = field(default_factory=list)
    datatype: URIRef | None = None
    node_kind: URIRef | None = None
    bounds: list[tuple[str, Any]] = field(default_factory=list)  # ("ge"/"gt"/"le"/"lt", python value)
    allowed: frozenset[Node] | None = None
    nodes: list[Shape] = field(default_factory=list)
    patterns: list[re.Pattern[str]] = field(default_factory=list)
    min_length: int | None = None
    max_length: int | None = None
    any_of: list[list[Shape]] = field(default_factory=list)
    one_of: list[list[Shape]] = field(default_factory=list)
    all_of: list[list[Shape]] = field(default_factory=list)
    none_of: list[Shape] = field(default_factory=list)
    properties: list[Shape] = field(default_factory=list)
    message: str = ""


# --------------------------------------------------------------------------------------------------
# Compiling
# --------------------------------------------------------------------------------------------------

@functools.cache
def compiled_shapes() -> tuple[Shape, ...] | None:
    """The targeted shapes, compiled; None when the shapes need pySHACL."""
    try:
        return tuple(_compile_all(resources.shapes_graph()))
    except Unsupported:
        return None


def _compile_all(graph: Graph) -> list[Shape]:
    for predicate in set(graph.predicates()):
        if str(predicate).startswith(str(SH)) and predicate not in SUPPORTED:
            raise Unsupported(str(predicate))
    for kind in (SH.targetNode, SH.targetSubjectsOf, SH.targetObjectsOf, SH.deactivated, SH.severity):
        if (None, kind, None) in graph:
            raise Unsupported(str(kind))
    cache: dict[Node, Shape] = {}
    return [_compile(graph, node, cache) for node in sorted(set(graph.subjects(SH.targetClass, None)))]


def _compile(graph: Graph, node: Node, cache: dict[Node, Shape]) -> Shape:
    if node in cache:
        return cache[node]
    shape = cache[node] = Shape(node)
    path = graph.value(node, SH.path)
    if path is not None and not isinstance(path, URIRef):
        raise Unsupported("a path other than a predicate")
    shape.path = path
    shape.targets = sorted(graph.objects(node, SH.targetClass))
    shape.min_count = int(graph.value(node, SH.minCount) or 0)
    max_count = graph.value(node, SH.maxCount)
    shape.max_count = None if max_count is None else int(max_count)
    shape.classes = sorted(graph.objects(node, SH["class"]))
    shape.datatype = graph.value(node, SH.datatype)
    shape.node_kind = graph.value(node, SH.nodeKind)
    for predicate, op in ((SH.minInclusive, "ge"), (SH.minExclusive, "gt"), (SH.maxInclusive, "le"),
                          (SH.maxExclusive, "lt")):
        for bound in graph.objects(node, predicate):
            shape.bounds.append((op, _comparable(bound)))
    allowed = graph.value(node, SH["in"])
    if allowed is not None:
        shape.allowed = frozenset(Collection(graph, allowed))
    shape.nodes = [_compile(graph, other, cache) for other in graph.objects(node, SH.node)]
    flags = str(graph.value(node, SH.flags) or "")
    shape.patterns = [re.compile(str(p), _flags(flags)) for p in graph.objects(node, SH.pattern)]
    for predicate, name in ((SH.minLength, "min_length"), (SH.maxLength, "max_length")):
        value = graph.value(node, predicate)
        if value is not None:
            setattr(shape, name, int(value))
    for predicate, target in ((SH["or"], shape.any_of), (SH.xone, shape.one_of), (SH["and"], shape.all_of)):
        for members in graph.objects(node, predicate):
            target.append([_compile(graph, member, cache) for member in Collection(graph, members)])
    shape.none_of = [_compile(graph, other, cache) for other in graph.objects(node, SH["not"])]
    shape.properties = [_compile(graph, other, cache) for other in graph.objects(node, SH.property)]
    shape.message = str(graph.value(node, SH.message) or "")
    return shape


def _flags(flags: str) -> int:
    value = 0
    for flag in flags:
        value |= {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}.get(flag, 0)
    return value


def _comparable(term: Node) -> Any:
    """A Python value to compare with, or None when the term has no order (fails every bound)."""
    if not isinstance(term, Literal) or term.language is not None or term.ill_typed:
        return None
    value = term.toPython()
    if isinstance(value, bool) or isinstance(value, str) and term.datatype not in (None, XSD.string):
        return None
    if isinstance(value, float | int | Decimal):
        return value
    return value if not isinstance(value, Literal) else None


# --------------------------------------------------------------------------------------------------
# Checking
# --------------------------------------------------------------------------------------------------

Spo = dict[Node, dict[Node, dict[Node, None]]]


def spo_index(triples: Iterable[tuple[Node, Node, Node]]) -> Spo:
    spo: Spo = {}
    for s, p, o in triples:
        spo.setdefault(s, {}).setdefault(p, {})[o] = None
    return spo


@functools.cache
def ontology_index() -> Spo:
    return spo_index(resources.ontology_graph())


class Index:
    """Subject → predicate → objects over several subject indexes (data, context, ontology), read-only."""

    def __init__(self, sources: Iterable[Spo]) -> None:
        self.sources = list(sources)
        self._superclasses: dict[Node, frozenset[Node]] = {}
        self._classes: dict[Node, frozenset[Node]] = {}

    def objects(self, subject: Node, predicate: Node) -> list[Node]:
        found: dict[Node, None] | None = None
        merged = False
        for source in self.sources:
            predicates = source.get(subject)
            if predicates is None:
                continue
            objects = predicates.get(predicate)
            if not objects:
                continue
            if found is None:
                found = objects
            else:
                if not merged:
                    found, merged = dict(found), True
                found.update(objects)
        return list(found) if found is not None else []

    def superclasses(self, cls: Node) -> frozenset[Node]:
        """``cls`` and everything it is an rdfs:subClassOf, transitively."""
        known = self._superclasses.get(cls)
        if known is None:
            seen, stack = {cls}, [cls]
            while stack:
                for parent in self.objects(stack.pop(), _SUBCLASS):
                    if parent not in seen:
                        seen.add(parent)
                        stack.append(parent)
            known = self._superclasses[cls] = frozenset(seen)
        return known

    def classes_of(self, node: Node) -> frozenset[Node]:
        """Every class ``node`` is a SHACL instance of (remembered: referenced sites and people recur)."""
        known = self._classes.get(node)
        if known is None:
            found: set[Node] = set()
            for cls in self.objects(node, _TYPE):
                found |= self.superclasses(cls)
            known = self._classes[node] = frozenset(found)
        return known


@dataclass(frozen=True)
class Violation:
    focus: Node
    path: URIRef | None
    message: str


def violations(index: Index, focus_nodes: Iterable[Node], shapes: tuple[Shape, ...]) -> Iterator[Violation]:
    """The violations of the targeted shapes by the focus nodes (only those nodes are checked)."""
    by_class: dict[Node, list[Shape]] = {}
    for shape in shapes:
        for target in shape.targets:
            by_class.setdefault(target, []).append(shape)
    for focus in focus_nodes:
        applicable: list[Shape] = []
        for cls in index.classes_of(focus):
            applicable.extend(shape for shape in by_class.get(cls, ()) if shape not in applicable)
        for shape in applicable:
            yield from _node_violations(index, focus, shape)


def _node_violations(index: Index, focus: Node, shape: Shape) -> Iterator[Violation]:
    if not _value_ok(index, focus, shape, set()):
        yield Violation(focus, None, shape.message)
    for prop in shape.properties:
        if not _property_ok(index, focus, prop, set()):
            yield Violation(focus, prop.path, prop.message or shape.message)


def _property_ok(index: Index, focus: Node, prop: Shape, stack: set) -> bool:
    values = index.objects(focus, prop.path) if prop.path is not None else [focus]
    if len(values) < prop.min_count or (prop.max_count is not None and len(values) > prop.max_count):
        return False
    return all(_value_ok(index, value, prop, stack) for value in values)


def conforms(index: Index, node: Node, shape: Shape, stack: set) -> bool:
    """Whether ``node`` conforms to ``shape`` (a node shape, or a property shape applied to ``node``)."""
    if shape.path is not None:
        return _property_ok(index, node, shape, stack)
    return _value_ok(index, node, shape, stack) and all(
        _property_ok(index, node, prop, stack) for prop in shape.properties)


def _value_ok(index: Index, value: Node, shape: Shape, stack: set) -> bool:
    """The value-level constraints of ``shape`` on one value node (not its counts, not its path)."""
    if shape.node_kind is not None and not _kind_ok(value, shape.node_kind):
        return False
    if shape.datatype is not None and not _datatype_ok(value, shape.datatype):
        return False
    if shape.classes:
        if isinstance(value, Literal):
            return False
        classes = index.classes_of(value)
        if any(cls not in classes for cls in shape.classes):
            return False
    if shape.allowed is not None and value not in shape.allowed:
        return False
    if shape.bounds and not _bounds_ok(value, shape.bounds):
        return False
    if shape.patterns or shape.min_length is not None or shape.max_length is not None:
        if isinstance(value, BNode):
            return False
        text = str(value)
        if any(p.search(text) is None for p in shape.patterns):
            return False
        if shape.min_length is not None and len(text) < shape.min_length:
            return False
        if shape.max_length is not None and len(text) > shape.max_length:
            return False
    key = (value, id(shape))
    if key in stack:  # recursive shapes: assume conformance on the cycle
        return True
    nested = stack | {key}
    if shape.nodes and not all(conforms(index, value, other, nested) for other in shape.nodes):
        return False
    for members in shape.any_of:
        if not any(conforms(index, value, member, nested) for member in members):
            return False
    for members in shape.one_of:
        if sum(1 for member in members if conforms(index, value, member, nested)) != 1:
            return False
    for members in shape.all_of:
        if not all(conforms(index, value, member, nested) for member in members):
            return False
    return not any(conforms(index, value, other, nested) for other in shape.none_of)


_KINDS: dict[Node, tuple[type, ...]] = {
    SH.IRI: (URIRef,), SH.BlankNode: (BNode,), SH.Literal: (Literal,), SH.BlankNodeOrIRI: (BNode, URIRef),
    SH.BlankNodeOrLiteral: (BNode, Literal), SH.IRIOrLiteral: (URIRef, Literal),
}


def _kind_ok(value: Node, kind: URIRef) -> bool:
    return isinstance(value, _KINDS.get(kind, ()))


def _datatype_ok(value: Node, datatype: URIRef) -> bool:
    if not isinstance(value, Literal):
        return False
    if value.language is not None:
        return datatype == RDF_LANGSTRING
    return (value.datatype or _XSD_STRING) == datatype and not value.ill_typed


def _bounds_ok(value: Node, bounds: list[tuple[str, Any]]) -> bool:
    number = _comparable(value)
    if number is None:
        return False
    for op, bound in bounds:
        try:
            if bound is None or not {"ge": number >= bound, "gt": number > bound, "le": number <= bound,
                                     "lt": number < bound}[op]:
                return False
        except TypeError:  # incomparable kinds (a date against a number)
            return False
    return True
