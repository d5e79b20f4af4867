"""Registration on both store kinds: the examples go in, every kind of mistake is refused with a
message naming it and the store's quad count exactly as before."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from rdflib import Literal, URIRef

from conftest import ADMIN, EXAMPLES, MALLORY, example_documents
from kgsched.errors import InvalidRequest, KgschedError, NotEntitled, OwnershipConflict, ShapeViolation, SyntaxProblem
from kgsched.graph.store import Store
from kgsched.namespaces import KS
from kgsched.registry.registration import Registry, registrant_graph

INVALID = sorted((EXAMPLES / "invalid").glob("*.ttl"))
RUNNER_COUNT = "SELECT (COUNT(DISTINCT ?r) AS ?n) WHERE { ?r a ?k . ?k <http://www.w3.org/2000/01/rdf-schema#subClassOf>* <https://w3id.org/kgsched#Runner> }"


def expected_fragment(path: Path) -> str:
    match = re.match(r"# expect: (.*)", path.read_text().splitlines()[0])
    assert match, f"{path.name} must start with '# expect: …'"
    return match.group(1)


def test_examples_register_and_count_runners(federation: Store) -> None:
    assert int(federation.select(RUNNER_COUNT)[0]["n"]) == 5
    kinds = {row["k"] for row in federation.select(
        "SELECT DISTINCT ?k WHERE { ?r a ?k . ?k <http://www.w3.org/2000/01/rdf-schema#subClassOf> <https://w3id.org/kgsched#Runner> }")}
    assert kinds == {KS.AnonymousJobTokenRunner, KS.JobRunner, KS.SessionRunner, KS.UserRunner, KS.GroupRunner}


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_example_is_rejected_and_store_unchanged(federation: Store, path: Path) -> None:
    before = federation.quad_count()
    with pytest.raises(KgschedError) as caught:
        Registry(federation).register([(path.name, path.read_bytes())], MALLORY)
    message = caught.value.detail + str(getattr(caught.value, "report_text", ""))
    assert expected_fragment(path) in message
    assert federation.quad_count() == before


def test_syntax_error_names_line_and_column(federation: Store) -> None:
    path = EXAMPLES / "invalid" / "syntax-error.ttl"
    with pytest.raises(SyntaxProblem) as caught:
        Registry(federation).register([(path.name, path.read_bytes())], MALLORY)
    assert caught.value.extra["line"] == 13
    assert "column" in caught.value.extra
    assert "syntax-error.ttl" in caught.value.detail


def test_shape_violation_carries_report(federation: Store) -> None:
    path = EXAMPLES / "invalid" / "runner-zero-cores.ttl"
    with pytest.raises(ShapeViolation) as caught:
        Registry(federation).register([(path.name, path.read_bytes())], MALLORY)
    [result] = caught.value.results
    assert result["focusNode"] == "https://example.org/fed/runner/mallory"
    assert result["path"] == str(KS.cores)
    assert "sh:ValidationReport" in caught.value.report_turtle or "ValidationReport" in caught.value.report_turtle
    assert caught.value.status_code == 422


RUNNER = """
@prefix ks: <https://w3id.org/kgsched#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix foaf: <http://xmlns.com/foaf/0.1/> .
%s
<https://example.org/m/runner> a ks:JobRunner ; rdfs:label "m" ;
    ks:ownedBy <https://example.org/fed/person/mallory> ; ks:atSite <https://example.org/fed/site/paris> ;
    ks:cores %%d ; ks:memoryBytes 1000 ; ks:supports ks:PythonCallable ; ks:serves ks:Anyone .
"""
MALLORY_SELF = '<https://example.org/fed/person/mallory> a foaf:Person ; foaf:name "Mallory" .'
RUNNER = RUNNER % MALLORY_SELF


def test_reregistration_replaces_the_description(federation: Store) -> None:
    registry = Registry(federation)
    registry.register([("r", RUNNER % 4)], MALLORY)
    registry.register([("r", RUNNER % 16)], MALLORY)
    rows = federation.select("SELECT ?c WHERE { <https://example.org/m/runner> <https://w3id.org/kgsched#cores> ?c }")
    assert [int(r["c"]) for r in rows] == [16]


def test_registration_keeps_other_resources_of_the_registrant(federation: Store) -> None:
    registry = Registry(federation)
    registry.register([("r", RUNNER % 4)], MALLORY)
    other = RUNNER.replace("m/runner", "m/second") % 2
    registry.register([("r2", other)], MALLORY)
    graph = registry.registered(MALLORY)
    assert (URIRef("https://example.org/m/runner"), KS.cores, Literal(4)) in graph
    assert (URIRef("https://example.org/m/second"), KS.cores, Literal(2)) in graph


def test_someone_else_cannot_take_over_a_resource(federation: Store) -> None:
    registry = Registry(federation)
    registry.register([("r", RUNNER % 4)], MALLORY)
    before = federation.quad_count()
    with pytest.raises(OwnershipConflict):
        registry.register([("r", (RUNNER % 8).replace(MALLORY_SELF, ""))], URIRef("https://example.org/fed/person/trudy"))
    assert federation.quad_count() == before


def test_unregister_removes_only_that_registrant(federation: Store) -> None:
    registry = Registry(federation)
    before = federation.quad_count()
    registry.register([("r", RUNNER % 4)], MALLORY)
    assert registry.unregister(MALLORY) > 0
    assert federation.quad_count() == before
    assert not federation.ask("ASK { GRAPH ?g { ?s ?p ?o } }", [{"g": registrant_graph(MALLORY)}])


def test_all_or_nothing_across_files(federation: Store) -> None:
    good = ("good.ttl", (RUNNER % 4).encode())
    bad = EXAMPLES / "invalid" / "dataset-negative-size.ttl"
    before = federation.quad_count()
    with pytest.raises(ShapeViolation):
        Registry(federation).register([good, (bad.name, bad.read_bytes())], MALLORY)
    assert federation.quad_count() == before


def test_hostile_literals_are_stored_verbatim(federation: Store) -> None:
    """A literal that looks like SPARQL must stay a literal (writes go through escaping)."""
    sneaky = '"} } ; DROP ALL ; INSERT DATA { GRAPH <urn:x> { <urn:a> <urn:b> "c'
    text = (RUNNER % 4).replace('rdfs:label "m"', "rdfs:label " + Literal(sneaky).n3())
    Registry(federation).register([("r", text)], MALLORY)
    rows = federation.select("SELECT ?l WHERE { <https://example.org/m/runner> <http://www.w3.org/2000/01/rdf-schema#label> ?l }")
    assert str(rows[0]["l"]) == sneaky
    assert int(federation.select(RUNNER_COUNT)[0]["n"]) == 6


def test_examples_register_part_by_party_in_dependency_order(store: Store) -> None:
    """Each part of the examples is registered by the party entitled to state it, once what it refers to
    exists; one registrant registering everyone's runners is refused (their owners did not)."""
    from kgsched.dev.parties import party_registrations
    from kgsched.registry.registration import load_ontology

    load_ontology(store)
    registry = Registry(store)
    parties = party_registrations(example_documents(), ADMIN)
    admin_part = [party for party, _ in parties].index(ADMIN)
    for party, turtle in parties[: admin_part + 1]:
        registry.register([(str(party), turtle)], party)
    before = store.quad_count()
    with pytest.raises(NotEntitled, match="ks:ownedBy"):
        registry.register([("runners.ttl", (EXAMPLES / "runners.ttl").read_bytes())], URIRef("https://example.org/reg/x"))
    assert store.quad_count() == before
    for party, turtle in parties[admin_part + 1:]:
        registry.register([(str(party), turtle)], party)
    assert int(store.select(RUNNER_COUNT)[0]["n"]) == 5
    registrants = {party for party, _ in parties}
    assert {URIRef("https://example.org/fed/org/unige"), URIRef("https://example.org/fed/person/carol"),
            ADMIN} <= registrants


def test_runner_referring_to_unregistered_site_is_rejected(store: Store) -> None:
    from kgsched.registry.registration import load_ontology

    load_ontology(store)
    before = store.quad_count()
    with pytest.raises(ShapeViolation) as caught:
        Registry(store).register([("r", RUNNER % 4)], MALLORY)
    assert "ks:Site" in caught.value.detail
    assert store.quad_count() == before


def test_empty_input_rejected(federation: Store) -> None:
    with pytest.raises(InvalidRequest):
        Registry(federation).register([("e", b"")], MALLORY)


def test_example_documents_parse() -> None:
    assert len(example_documents()) == 6
