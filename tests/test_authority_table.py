"""The authority table covers the whole vocabulary, and docs/authority.md names every term it covers;
the statement checks refuse what only the service may state, without touching a store."""

from __future__ import annotations

from pathlib import Path

import pytest
from rdflib import Graph, URIRef
from rdflib.namespace import OWL, RDF

from kgsched import resources
from kgsched.errors import NotEntitled
from kgsched.namespaces import KS
from kgsched.registry import authority

DOC = (Path(__file__).resolve().parent.parent / "docs" / "authority.md").read_text()


def vocabulary_properties() -> list[URIRef]:
    ontology = resources.ontology_graph()
    return sorted(p for kind in (OWL.ObjectProperty, OWL.DatatypeProperty)
                  for p in ontology.subjects(RDF.type, kind) if str(p).startswith(str(KS)))


@pytest.mark.parametrize("prop", vocabulary_properties(), ids=lambda p: p.split("#")[-1])
def test_every_property_of_the_vocabulary_has_an_authority_and_is_documented(prop: URIRef) -> None:
    assert prop in authority.PREDICATES, f"{prop} is not in kgsched.registry.authority.PREDICATES"
    assert f"`ks:{prop.split('#')[-1]}`" in DOC, f"docs/authority.md does not name ks:{prop.split('#')[-1]}"


@pytest.mark.parametrize("turtle", [
    "<https://x.example/p> <https://w3id.org/kgsched#valueOf> <https://x.example/e> .",
    "<https://x.example/p> a <https://w3id.org/kgsched#DataProduct> .",
    "<https://x.example/w> <https://w3id.org/kgsched#verifiedBy> <https://x.example/carol> .",
    "<https://x.example/e> <http://www.w3.org/ns/prov#wasAssociatedWith> <https://x.example/r> .",
    "<https://x.example/C> <http://www.w3.org/2000/01/rdf-schema#subClassOf> <https://w3id.org/kgsched#Runner> .",
    "<https://w3id.org/kgsched/id/product/x> <http://www.w3.org/2000/01/rdf-schema#label> \"x\" .",
    "<https://x.example/p> <https://w3id.org/kgsched#madeUp> \"x\" .",
])
def test_statements_only_the_service_may_make_are_refused(turtle: str) -> None:
    with pytest.raises(NotEntitled):
        authority.check_statements(Graph().parse(data=turtle, format="turtle"), URIRef("https://x.example/bob"))


def test_a_registrants_own_description_passes() -> None:
    data = Graph().parse(data="""
        @prefix ks: <https://w3id.org/kgsched#> .
        <https://x.example/w> a ks:Workflow ; ks:version "1" ; ks:implementation "m:f" .
        <https://x.example/v> a ks:WorkflowVerification ; ks:verifiedWorkflow <https://x.example/other> .
        <https://x.example/bob> <http://www.w3.org/ns/org#memberOf> <https://x.example/group> .
    """, format="turtle")
    authority.check_statements(data, URIRef("https://x.example/bob"))
