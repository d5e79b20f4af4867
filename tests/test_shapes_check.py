"""The compiled shapes (registration's fast path) give pySHACL's verdict, resource by resource, on the
examples, the invalid corpus, and a corpus of one-mistake variants of every kind of resource; and a
registration refused on the fast path still carries pySHACL's report."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from rdflib import URIRef

from conftest import EXAMPLES, MALLORY, example_documents
from kgsched.dev.registrations import registration_body
from kgsched.errors import KgschedError, ShapeViolation
from kgsched.graph.store import EmbeddedStore, Store
from kgsched.registry.registration import Registry, validate_graph
from kgsched.registry.shapes_check import Index, compiled_shapes, ontology_index, spo_index, violations
from service_support import load_federation

PREFIXES = """@prefix ks: <https://w3id.org/kgsched#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix fed: <https://example.org/fed/> .
@prefix m: <https://example.org/m/> .
"""
RUNNER = ("m:r a ks:JobRunner ; rdfs:label \"r\" ; ks:ownedBy fed:person\\/alice ; ks:atSite fed:site\\/geneva ; "
          "ks:cores 4 ; ks:memoryBytes 1000 ; ks:supports ks:PythonCallable ; ks:serves ks:Anyone .")
DATASET = ("m:d a ks:Dataset ; rdfs:label \"d\" ; ks:heldAt fed:site\\/geneva ; ks:sizeBytes 10 ; "
           "ks:providedBy fed:person\\/erin .")
WORKFLOW = ("m:w a ks:Workflow ; rdfs:label \"w\" ; ks:version \"1\" ; ks:implementationKind ks:PythonCallable ; "
            "ks:implementation \"a:b\" ; ks:author fed:person\\/bob ; "
            "ks:parameter [ ks:name \"x\" ; ks:parameterType xsd:decimal ] .")
VARIANTS = {
    "runner": RUNNER,
    "runner-no-label": RUNNER.replace('rdfs:label "r" ;', ""),
    "runner-two-owners": RUNNER.replace("ks:ownedBy fed:person\\/alice", "ks:ownedBy fed:person\\/alice, fed:person\\/bob"),
    "runner-owner-literal": RUNNER.replace("ks:ownedBy fed:person\\/alice", 'ks:ownedBy "alice"'),
    "runner-site-a-person": RUNNER.replace("fed:site\\/geneva", "fed:person\\/bob"),
    "runner-zero-cores": RUNNER.replace("ks:cores 4", "ks:cores 0"),
    "runner-decimal-cores": RUNNER.replace("ks:cores 4", "ks:cores 4.0"),
    "runner-string-memory": RUNNER.replace("ks:memoryBytes 1000", 'ks:memoryBytes "1000"'),
    "runner-zero-memory": RUNNER.replace("ks:memoryBytes 1000", "ks:memoryBytes 0"),
    "runner-bad-support": RUNNER.replace("ks:supports ks:PythonCallable", "ks:supports ks:Fortran"),
    "runner-no-kind": RUNNER.replace("a ks:JobRunner", "a ks:Runner"),
    "runner-two-kinds": RUNNER.replace("a ks:JobRunner", "a ks:JobRunner, ks:UserRunner"),
    "runner-holds-a-site": RUNNER + " m:r ks:holds fed:site\\/geneva .",
    "runner-serves-nobody": RUNNER.replace("; ks:serves ks:Anyone", ""),
    "runner-storage-negative": RUNNER + " m:r ks:storageBytes -1 .",
    "runner-untyped-extra": RUNNER + ' m:r rdfs:comment "anything" ; ks:unknownProperty 3 .',
    "dataset": DATASET,
    "dataset-negative": DATASET.replace("ks:sizeBytes 10", "ks:sizeBytes -10"),
    "dataset-bad-checksum": DATASET + ' m:d ks:checksum "sha256:XYZ" .',
    "dataset-good-checksum": DATASET + f' m:d ks:checksum "sha256:{"a" * 64}" .',
    "dataset-never-leaves-string": DATASET + ' m:d ks:neverLeavesSite "yes" .',
    "dataset-location-iri": DATASET + " m:d ks:location <https://example.org/x> .",
    "dataset-location-uri": DATASET + ' m:d ks:location "https://x"^^xsd:anyURI .',
    "dataset-location-lang": DATASET + ' m:d ks:location "x"@en .',
    "dataset-stored-at-site": DATASET + " m:d ks:storedAt fed:site\\/geneva .",
    "workflow": WORKFLOW,
    "workflow-no-version": WORKFLOW.replace('ks:version "1" ;', ""),
    "workflow-empty-version": WORKFLOW.replace('ks:version "1"', 'ks:version ""'),
    "workflow-bad-parameter-name": WORKFLOW.replace('ks:name "x"', 'ks:name "9x"'),
    "workflow-parameter-no-type": WORKFLOW.replace("; ks:parameterType xsd:decimal", ""),
    "workflow-parameter-bad-type": WORKFLOW.replace("xsd:decimal ]", "ks:Nothing ]"),
    "workflow-parameter-default-iri": WORKFLOW.replace("xsd:decimal ]", "xsd:decimal ; ks:defaultValue m:x ]"),
    "workflow-duration-string": WORKFLOW + ' m:w ks:estimatedDurationSeconds "long" .',
    "workflow-duration-double": WORKFLOW + " m:w ks:estimatedDurationSeconds 1.5e1 .",
    "workflow-duration-negative": WORKFLOW + " m:w ks:estimatedDurationSeconds -1.5 .",
    "workflow-author-literal": WORKFLOW.replace("ks:author fed:person\\/bob", 'ks:author "bob"'),
    "site": "m:s a ks:Site ; rdfs:label \"s\" ; ks:bandwidthBytesPerSecond 10 .",
    "site-zero-bandwidth": "m:s a ks:Site ; rdfs:label \"s\" ; ks:bandwidthBytesPerSecond 0 .",
    "link-to-self-defined-site": ("m:s a ks:Site ; rdfs:label \"s\" . m:l a ks:NetworkLink ; ks:fromSite m:s ; "
                                  "ks:toSite fed:site\\/geneva ; ks:bandwidthBytesPerSecond 5.5 ."),
    "link-missing-to": "m:l a ks:NetworkLink ; ks:fromSite fed:site\\/geneva ; ks:bandwidthBytesPerSecond 5 .",
    "person": "m:p a <http://xmlns.com/foaf/0.1/Person> ; <http://xmlns.com/foaf/0.1/name> \"P\" .",
    "person-name-lang": "m:p a <http://xmlns.com/foaf/0.1/Person> ; <http://xmlns.com/foaf/0.1/name> \"P\"@en .",
    "argument-two-values": ("m:e a ks:Expression ; ks:workflow fed:workflow\\/light-curve ; ks:contentAddress "
                            f"\"{'0' * 64}\" ; ks:argument [ ks:name \"a\" ; ks:value 1 ; ks:dataset "
                            "fed:data\\/isgri-events-rev2670 ] ."),
    "argument-one-value": ("m:e a ks:Expression ; ks:workflow fed:workflow\\/light-curve ; ks:contentAddress "
                           f"\"{'0' * 64}\" ; ks:argument [ ks:name \"a\" ; ks:value 1 ] ."),
    "credit-neither": ("m:c a ks:CreditEntry ; ks:creditedTo fed:person\\/bob ; ks:amount 1 ; "
                       "ks:creditReason ks:Verification ."),
}


@pytest.fixture(scope="module")
def store() -> Iterator[Store]:
    store = load_federation(EmbeddedStore(None))
    yield store
    store.close()


def verdicts(store: Store, text: str | bytes) -> tuple[set[URIRef], set[URIRef]]:
    """(focus nodes the compiled shapes refuse, focus nodes pySHACL refuses)."""
    registry = Registry(store)
    data = registry.parse([("t", text)])
    context = registry.context_for(data)
    shapes = compiled_shapes()
    assert shapes is not None, "the project's shapes compile"
    fast = {v.focus for v in violations(Index([data.spo, spo_index(context), ontology_index()]),
                                        data.subjects(), shapes)}
    outcome = validate_graph(data.to_graph(), context)
    slow = {URIRef(r["focusNode"]) for r in outcome.results} if not outcome.conforms else set()
    return {f for f in fast if isinstance(f, URIRef)}, slow


VALID = {"argument-one-value", "dataset", "dataset-good-checksum", "dataset-location-uri",
         "link-to-self-defined-site", "person", "runner", "runner-two-kinds", "runner-untyped-extra", "site",
         "workflow", "workflow-duration-double"}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_compiled_shapes_agree_with_pyshacl(store: Store, name: str) -> None:
    fast, slow = verdicts(store, PREFIXES + VARIANTS[name])
    assert fast == slow
    assert bool(slow) == (name not in VALID)  # the corpus refuses what it means to refuse


def test_they_agree_on_the_examples_and_the_generated_bodies(store: Store) -> None:
    for name, text in [*example_documents(), ("bench", registration_body(3))]:
        assert verdicts(store, text) == (set(), set()), name


@pytest.mark.parametrize("path", sorted((EXAMPLES / "invalid").glob("*.ttl")), ids=lambda p: p.name)
def test_they_agree_on_the_invalid_corpus(store: Store, path) -> None:
    try:
        fast, slow = verdicts(store, path.read_bytes())
    except KgschedError:
        return  # refused before validation (syntax, literals, ...), on both paths
    assert fast == slow


def test_a_refusal_on_the_fast_path_carries_pyshacls_report(store: Store) -> None:
    text = PREFIXES + VARIANTS["runner-zero-cores"] + "\n" + DATASET
    with pytest.raises(ShapeViolation) as caught:
        Registry(store).register([("t", text)], MALLORY)
    [result] = caught.value.results
    assert result["focusNode"] == "https://example.org/m/r" and result["path"].endswith("#cores")
    assert "ValidationReport" in caught.value.report_turtle
