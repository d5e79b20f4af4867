"""Binding values into SPARQL without pasting user strings.

Values travel as a SPARQL ``VALUES`` block built from rdflib terms: IRIs are checked against the
SPARQL IRIREF production and literals are written by rdflib's escaping serialiser, so no user text
can end a string or an IRI early. Queries mark where the block goes with a ``# @values`` comment line
(the file stays valid SPARQL); without the marker the block becomes the query's trailing VALUES clause.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache

from rdflib import BNode, Literal, URIRef
from rdflib.term import Node

from kgsched.errors import InvalidRequest

# SPARQL 1.1 IRIREF: '<' ([^<>"{}|^`\]-[#x00-#x20])* '>' ; we also insist on a scheme.
_IRI_RE = re.compile(r'^[A-Za-z][A-Za-z0-9+.\-]*:[^<>"{}|^`\\\x00-\x20]*$')
_VAR_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MARKER_RE = re.compile(r"^[ \t]*#[ \t]*@values[ \t]*$", re.MULTILINE)

Value = Node | str | int | float | bool | None
Rows = Sequence[Mapping[str, Value]] | Mapping[str, Iterable[Value]]


def check_iri(value: str) -> URIRef:
    """Return the IRI as a URIRef, or raise InvalidRequest when it could break out of <...>."""
    text = str(value)
    checked = _checked_iri(text)
    if checked is None:
        raise InvalidRequest(f"not an absolute IRI: {text!r}")
    return checked


@lru_cache(maxsize=65536)
def _checked_iri(text: str) -> URIRef | None:
    """Checking and building URIRefs shows up when planning 10,000 nodes; the same IRIs recur."""
    return URIRef(text) if _IRI_RE.match(text) else None


def to_term(value: Value) -> Node | None:
    """Python value → rdflib term; a plain str is taken as an IRI only if it is a URIRef already."""
    if value is None or isinstance(value, Node):
        if isinstance(value, URIRef):
            check_iri(value)
        return value
    return Literal(value)


def term_sparql(term: Node | None) -> str:
    """The SPARQL spelling of a term (UNDEF for None)."""
    if term is None:
        return "UNDEF"
    if isinstance(term, URIRef):
        return f"<{check_iri(term)}>"
    if isinstance(term, BNode):
        raise InvalidRequest("blank nodes cannot be bound into a query")
    if isinstance(term, Literal):
        return term.n3()
    raise InvalidRequest(f"cannot bind {term!r}")


def _sparql_value(value: Value) -> str:
    if type(value) is URIRef:
        return f"<{check_iri(value)}>"
    return term_sparql(to_term(value))


def values_block(values: Rows) -> str:
    """A VALUES block for one or many rows.

    ``values`` is either a list of row mappings, or a mapping of variable → list of values (one
    variable per block, e.g. ``{"address": [...]}``)."""
    if isinstance(values, Mapping):
        if len(values) != 1:
            raise ValueError("a column mapping binds exactly one variable; pass rows for several")
        [(name, column)] = values.items()
        if not _VAR_RE.match(name):
            raise InvalidRequest(f"not a SPARQL variable name: {name!r}")
        # one variable: the short form, written directly (the planner binds 10,000 IRIs at a time)
        terms = "\n  ".join(_sparql_value(v) for v in column)
        return f"VALUES ?{name} {{\n  {terms}\n}}"
    rows = list(values)
    names = sorted({name for row in rows for name in row})
    for name in names:
        if not _VAR_RE.match(name):
            raise InvalidRequest(f"not a SPARQL variable name: {name!r}")
    if not names:
        return "VALUES () { }" if not rows else "VALUES () { () }"
    head = " ".join(f"?{n}" for n in names)
    body = "\n  ".join("(" + " ".join(_sparql_value(row.get(n)) for n in names) + ")" for row in rows)
    return f"VALUES ({head}) {{\n  {body}\n}}"


def bind(query: str, values: Rows | None) -> str:
    """Insert the VALUES block at the query's ``# @values`` marker, or append it at the end."""
    if values is None:
        return query
    block = values_block(values)
    if _MARKER_RE.search(query):
        return _MARKER_RE.sub(lambda _m: block, query, count=1)
    return f"{query.rstrip()}\n{block}\n"
