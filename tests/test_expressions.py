"""Content addresses: equal requests agree, anything that changes the value changes the address,
and arguments are checked against the workflow's parameters."""

from __future__ import annotations

import json

import pytest
from rdflib import URIRef

from kgsched.errors import InvalidRequest
from kgsched.graph.store import Store
from kgsched.planning.expressions import build_dag, canonical_form
from kgsched.registry.registration import Registry
from planner_support import FED, ISGRI, combined, light_curve


def root_address(store: Store, request) -> str:
    return build_dag(store, request).root.address


def test_equal_requests_get_equal_addresses_whatever_the_spelling(federation: Store) -> None:
    a = light_curve(20, 40)
    b = {"args": {"energy_max_kev": 40.0, "events": {"dataset": ISGRI}, "energy_min_kev": "20.00"},
         "workflow": FED + "workflow/light-curve"}
    assert root_address(federation, a) == root_address(federation, b)


def test_default_equals_omitted(federation: Store) -> None:
    assert root_address(federation, light_curve(20, 40)) == root_address(federation, light_curve(20, 40, time_bin_s=100))
    assert root_address(federation, light_curve(20, 40)) != root_address(federation, light_curve(20, 40, time_bin_s=10))


def test_nested_expression_change_changes_the_root(federation: Store) -> None:
    assert root_address(federation, combined()) != root_address(federation, combined(hard=light_curve(40, 101)))


def test_shared_subexpression_is_one_node(federation: Store) -> None:
    same = light_curve(20, 40)
    dag = build_dag(federation, combined(soft=same, hard=same))
    assert dag.dag.number_of_nodes() == 2


def test_new_workflow_version_never_shares_addresses(federation: Store) -> None:
    from conftest import ADMIN, EXAMPLES

    before = root_address(federation, light_curve(20, 40))
    text = (EXAMPLES / "workflows.ttl").read_text().replace('ks:version "1.0.0"', 'ks:version "1.1.0"', 1)
    Registry(federation).register([("workflows.ttl", text)], ADMIN)
    assert root_address(federation, light_curve(20, 40)) != before


def test_canonical_form_is_documented_json(federation: Store) -> None:
    expression = build_dag(federation, light_curve(20, 40)).root
    document = json.loads(canonical_form(expression.workflow, expression.arguments))
    assert document["form"] == 1
    assert document["version"] == "1.0.0"
    assert document["environment"] == "python:3.11"
    assert [a[0] for a in document["args"]] == sorted(a[0] for a in document["args"])
    assert ["energy_min_kev", "literal", "20.0", "http://www.w3.org/2001/XMLSchema#decimal"] in document["args"]


@pytest.mark.parametrize("request_json, message", [
    ({"workflow": FED + "workflow/nope", "args": {}}, "unknown workflow"),
    ({"workflow": FED + "workflow/light-curve", "args": {"events": {"dataset": ISGRI}, "energy_min_kev": 1,
                                                        "energy_max_kev": 2, "colour": "blue"}}, "no parameter(s) colour"),
    ({"workflow": FED + "workflow/light-curve", "args": {"events": {"dataset": ISGRI}, "energy_min_kev": 1}},
     "needs argument 'energy_max_kev'"),
    ({"workflow": FED + "workflow/light-curve", "args": {"events": {"dataset": ISGRI}, "energy_min_kev": "low",
                                                        "energy_max_kev": 2}}, "must be a decimal number"),
    ({"workflow": FED + "workflow/spectrum-fit", "args": {"events": {"dataset": ISGRI}, "n_bins": 2.5}},
     "must be an integer"),
    ({"workflow": FED + "workflow/light-curve", "args": {"events": 5, "energy_min_kev": 1, "energy_max_kev": 2}},
     "takes data"),
    ({"workflow": "not an iri", "args": {}}, "not an absolute IRI"),
    ({"workflow": FED + "workflow/light-curve", "args": [], "extra": 1}, "unknown key"),
])
def test_bad_arguments_are_refused_clearly(federation: Store, request_json, message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        build_dag(federation, request_json)
    assert message in caught.value.detail


def test_turtle_request_gives_the_same_address(federation: Store) -> None:
    from kgsched.graph.rdfio import parse_rdf

    turtle = f"""
    @prefix ks: <https://w3id.org/kgsched#> .
    @prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
    [] a ks:Request ; ks:requestedBy <{FED}person/alice> ; ks:rootExpression _:e .
    _:e a ks:Expression ; ks:workflow <{FED}workflow/light-curve> ;
        ks:argument [ ks:name "events" ; ks:dataset <{ISGRI}> ] ,
                    [ ks:name "energy_min_kev" ; ks:value 20 ] ,
                    [ ks:name "energy_max_kev" ; ks:value "40.0"^^xsd:decimal ] .
    """
    assert root_address(federation, parse_rdf(turtle)) == root_address(federation, light_curve(20, 40))


def test_dataset_argument_must_be_an_iri(federation: Store) -> None:
    with pytest.raises(InvalidRequest):
        build_dag(federation, light_curve(1, 2, dataset="has space"))
    assert URIRef(ISGRI)


def test_canonical_form_and_address_are_pinned() -> None:
    """Form 1's bytes and hash, fixed: an optimisation or refactoring that changed them would make
    every cached product unreachable, so a change must come with a new form number."""
    from rdflib.namespace import XSD

    from kgsched.planning.expressions import Argument, WorkflowInfo, content_address, typed_literal

    workflow = WorkflowInfo(URIRef("https://example.org/workflow/spectrum"), "2.1",
                            URIRef("https://w3id.org/kgsched#PythonCallable"), 'registry.example/spéctrum:2 "quoted"', {})
    arguments = (Argument("bins", "literal", typed_literal("bins", 64, XSD.integer)),
                 Argument("label", "literal", typed_literal("label", 'Crab "nebula" — ☉', XSD.string)),
                 Argument("events", "dataset", URIRef("https://example.org/data/isgri")),
                 Argument("band", "expression", "ab" * 32),
                 Argument("e_min", "literal", typed_literal("e_min", "20.00", XSD.decimal)))
    assert canonical_form(workflow, arguments) == (
        '{"args":[["band","expression","' + "ab" * 32 + '"],'
        '["bins","literal","64","http://www.w3.org/2001/XMLSchema#integer"],'
        '["e_min","literal","20.0","http://www.w3.org/2001/XMLSchema#decimal"],'
        '["events","dataset","https://example.org/data/isgri"],'
        '["label","literal","Crab \\"nebula\\" — ☉","None"]],'
        '"environment":"registry.example/spéctrum:2 \\"quoted\\"","form":1,"version":"2.1",'
        '"workflow":"https://example.org/workflow/spectrum"}').encode("utf-8")
    assert content_address(workflow, arguments) == "f3af2697eb9b74d00ba5bcf2a927d11b28638976a5a9fd34294a50b91cafd248"
    bare = WorkflowInfo(URIRef("https://example.org/workflow/x"), "1", URIRef("https://w3id.org/kgsched#PythonCallable"),
                        None, {})
    assert canonical_form(bare, ()) == b'{"args":[],"environment":null,"form":1,"version":"1",' \
                                       b'"workflow":"https://example.org/workflow/x"}'
    assert content_address(bare, ()) == "93b3578ac0dabf109c240931c5d4ae512c75ed3b24f3f14b00df1b2fc669eaf0"
