"""Every packaged query parses and documents itself; values are bound, never pasted."""

from __future__ import annotations

import pyoxigraph
import pytest
from rdflib import Literal, URIRef

from kgsched.errors import InvalidRequest
from kgsched.graph import queries
from kgsched.graph.binding import bind, check_iri, values_block
from kgsched.graph.guard import QueryRefused, check_query, nesting_depth
from kgsched.graph.store import Store

ALL = sorted(queries.all_queries().values(), key=lambda q: q.name)


@pytest.mark.parametrize("query", ALL, ids=lambda q: q.name)
def test_packaged_query_parses_and_has_a_summary(query) -> None:
    assert query.summary, f"{query.name}.rq needs a '#+ summary:' line"
    if query.form in ("DELETE", "INSERT"):
        pyoxigraph.Store().update(query.text)  # an update, run on an empty store: raises SyntaxError if broken
    else:
        pyoxigraph.Store().query(query.text)  # raises SyntaxError on a broken file
    if query.params:
        assert "# @values" in query.text


@pytest.mark.parametrize("iri", ["https://a.example/x y", "https://a.example/>", "no-scheme", 'http://a/"',
                                 "http://a/{x}", "http://a/\\u0041"])
def test_iri_check_refuses_what_could_break_out(iri: str) -> None:
    with pytest.raises(InvalidRequest):
        check_iri(iri)


def test_values_block_escapes_literals() -> None:
    block = values_block([{"x": Literal('a" } ; DROP ALL ; #'), "y": URIRef("urn:x:1")}, {"x": None}])
    assert 'DROP ALL' in block and '\\"' in block
    assert "UNDEF" in block
    store = pyoxigraph.Store()
    rows = list(store.query("SELECT ?x ?y WHERE { # @values\n }".replace("# @values", values_block(
        [{"x": Literal('a" } ; DROP ALL ; #'), "y": URIRef("urn:x:1")}]))))
    assert rows[0]["x"].value == 'a" } ; DROP ALL ; #'


def test_bind_uses_the_marker_or_appends() -> None:
    assert bind("SELECT * WHERE {\n  # @values\n ?s ?p ?o }", {"s": [URIRef("urn:a")]}).count("VALUES") == 1
    assert bind("SELECT * WHERE { ?s ?p ?o }", {"s": [URIRef("urn:a")]}).rstrip().endswith("}")


def test_hostile_binding_finds_nothing_and_changes_nothing(federation: Store) -> None:
    before = federation.quad_count()
    rows = federation.select("SELECT ?s WHERE {\n# @values\n?s ?p ?o }",
                             {"s": [Literal("x } } ; DROP ALL ; SELECT * WHERE { ?a ?b ?c")]})
    assert rows == []
    assert federation.quad_count() == before


def test_guard_measures_nesting_outside_strings_and_iris() -> None:
    assert nesting_depth('SELECT * WHERE { ?s ?p "{{{{" . <http://x/a> ?q ?o # {{{{\n }') == 1
    assert nesting_depth("SELECT * WHERE { FILTER(?a < 3 && (?b > 2)) }") == 3
    with pytest.raises(QueryRefused):
        check_query("SELECT * WHERE " + "{" * 100 + "}" * 100)
    with pytest.raises(QueryRefused):
        check_query("#" * 300_000)
    assert check_query("ASK {}") == "ASK {}"
