"""Binding values into SPARQL without pasting user strings.

Values travel as a SPARQL ``VALUES`` block built from rdflib terms: IRIs are checked against the
SPARQL IRIREF production and literals are written by rdflib's escaping serialiser, so no user text
can end a string or an IRI early. Queries mark where the block goes with a ``# @values`` comment line
(the file stays valid SPARQL); without the marker the block opens the query's WHERE group.

Not the trailing VALUES clause: Virtuoso 7.2 refuses a VALUES clause after ``ASK {…}`` (SP030) and
one binding a variable the SELECT does not project, and an inline block at the start of the group
means the same join for the patterns kgsched binds (every server accepts it).
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
_ONE_PER_VARIABLE_RE = re.compile(r"^#\+\s*values:\s*one block per variable", re.MULTILINE)
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


def values_block(values: Rows, one_per_variable: bool = False) -> str:
    """A VALUES block for one or many rows.

    ``values`` is either a list of row mappings, or a mapping of variable → list of values (one
    variable per block, e.g. ``{"address": [...]}``).

    ``one_per_variable`` writes one row as one single-variable block per variable (the same
    solutions); queries ask for it with a ``#+ values: one block per variable`` header line. Virtuoso
    7.2 fails on a one-row block that fixes a top-level ``GRAPH ?g`` variable before an OPTIONAL (SP031
    "Internal error: ssg_print_rvr_fixed_val(): no SPART_VARR_FIXED"), yet returns no rows for two
    one-variable blocks before a UNION and refuses them before a transitive path, so neither form
    suits every query."""
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
    if len(rows) == 1 and one_per_variable:
        return "\n".join(f"VALUES ?{n} {{ {_sparql_value(rows[0].get(n))} }}" for n in names)
    head = " ".join(f"?{n}" for n in names)
    body = "\n  ".join("(" + " ".join(_sparql_value(row.get(n)) for n in names) + ")" for row in rows)
    return f"VALUES ({head}) {{\n  {body}\n}}"


def bind(query: str, values: Rows | None) -> str:
    """Insert the VALUES block at the query's ``# @values`` marker, or at the start of its WHERE group."""
    if values is None:
        return query
    block = values_block(values, bool(_ONE_PER_VARIABLE_RE.search(query)))
    if _MARKER_RE.search(query):
        return _MARKER_RE.sub(lambda _m: block, query, count=1)
    at = where_group_start(query)
    if at is None:
        raise InvalidRequest("cannot bind values: the query has no WHERE group")
    return f"{query[:at]}\n{block}\n{query[at:]}"


_WORD_RE = re.compile(r"[A-Za-z_]\w*")


def where_group_start(query: str) -> int | None:
    """The offset just after the ``{`` that opens the query's WHERE group (skipping comments,
    strings, IRIs and a CONSTRUCT template), or None when there is none."""
    depth = 0
    i, n = 0, len(query)
    after_where = False
    construct_template = False
    while i < n:
        c = query[i]
        if c == "#":
            end = query.find("\n", i)
            i = n if end < 0 else end + 1
            continue
        if c in "\"'":
            quote = c * 3 if query.startswith(c * 3, i) else c
            j = i + len(quote)
            while j < n and not query.startswith(quote, j):
                j += 2 if query[j] == "\\" else 1
            i = j + len(quote)
            continue
        if c == "<":
            j = i + 1
            while j < n and query[j] not in '<>"{}|^`\\ \t\r\n':
                j += 1
            if j < n and query[j] == ">":
                i = j + 1
                continue
        starts_word = c.isalpha() and (i == 0 or not (query[i - 1].isalnum() or query[i - 1] in "?$_:"))
        if depth == 0 and starts_word:
            word = _WORD_RE.match(query, i)
            assert word is not None
            keyword = word.group(0).upper()
            if keyword == "WHERE":
                after_where = True
            elif keyword == "CONSTRUCT":
                construct_template = True
            i = word.end()
            continue
        if c == "{":
            if depth == 0:
                if after_where or not construct_template:
                    return i + 1
                construct_template = False  # the template: the group after it is the pattern
            depth += 1
        elif c == "}":
            depth = max(0, depth - 1)
        i += 1
    return None
