"""Results as PROV and credits (pure), acknowledgements and credit totals (over the store)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from rdflib import Literal, URIRef
from rdflib.namespace import PROV

from kgsched.dev.workloads import fake_result, queue_light_curves
from kgsched.errors import InvalidRequest, NotFound
from kgsched.graph.store import Store
from kgsched.jobs.queue import JobQueue
from kgsched.namespaces import KS
from kgsched.provenance.recording import (
    ExecutionContext,
    InputUsed,
    ResultReport,
    acknowledgements,
    compute_credit,
    credit_entries,
    credit_totals,
    execution_graph,
    product_provenance,
)
from service_support import BOB, CAROL, DAVE, ERIN, GENEVA, PARIS, UNIGE, load_federation

CHECKSUM = "sha256:" + "ab" * 32
CONTEXT = ExecutionContext(
    job=URIRef("https://w3id.org/kgsched/id/job/j"), claim=URIRef("https://w3id.org/kgsched/id/job/j/claim/c"),
    expression=URIRef("https://w3id.org/kgsched/id/expression/e"), address="e" * 64,
    workflow=URIRef("https://example.org/fed/workflow/light-curve"), runner=GENEVA,
    claimed_at=dt.datetime(2030, 1, 1, tzinfo=dt.UTC), runner_owner=UNIGE,
    runner_storage=(URIRef("https://example.org/fed/storage/geneva-disk"),), authors=(BOB,), verifiers=(CAROL,),
    inputs=(InputUsed("events", "dataset", URIRef("https://example.org/fed/data/isgri"), providers=(ERIN,)),),
)


@pytest.mark.parametrize("payload, fragment", [
    ([], "JSON object"),
    ({"outcome": "meh", "duration_seconds": 1}, "outcome must be one of"),
    ({"outcome": "success", "duration_seconds": -1}, "duration_seconds"),
    ({"outcome": "success", "duration_seconds": True}, "duration_seconds"),
    ({"outcome": "success", "duration_seconds": 1, "size_bytes": 1, "checksum": CHECKSUM}, "location"),
    ({"outcome": "success", "duration_seconds": 1, "location": "x", "checksum": CHECKSUM}, "size_bytes"),
    ({"outcome": "success", "duration_seconds": 1, "location": "x", "size_bytes": 1, "checksum": "md5:1"}, "checksum"),
    ({"outcome": "unhandled_exception", "duration_seconds": 1, "location": "x"}, "generates no product"),
    ({"outcome": "success", "duration_seconds": 1, "colour": "red"}, "unknown field"),
    ({"outcome": "success", "duration_seconds": 1, "location": "x", "size_bytes": 1, "checksum": CHECKSUM,
      "storage": "not an iri"}, "not an absolute IRI"),
    ({"outcome": "unhandled_exception", "duration_seconds": 1, "started_at": "2030-01-01T00:00:00"}, "time zone"),
])
def test_bad_reports_are_refused_with_the_field_named(payload: object, fragment: str) -> None:
    with pytest.raises(InvalidRequest, match=fragment):
        ResultReport.from_json(payload)


def test_report_digest_is_stable_and_sensitive() -> None:
    a = ResultReport.from_json(fake_result("x"))
    assert a.digest() == ResultReport.from_json(dict(reversed(list(fake_result("x").items())))).digest()
    assert a.digest() != ResultReport.from_json(fake_result("y")).digest()


def test_execution_graph_is_prov_and_deterministic() -> None:
    report = ResultReport.from_json({**fake_result("x"), "duration_seconds": 90})
    graph, execution, product = execution_graph(CONTEXT, report)
    again, _, _ = execution_graph(CONTEXT, report)
    assert set(graph) == set(again)  # recording twice writes the same triples
    assert (product, PROV.wasGeneratedBy, execution) in graph
    assert (execution, PROV.used, URIRef("https://example.org/fed/data/isgri")) in graph
    assert graph.value(execution, PROV.endedAtTime) == Literal("2030-01-01T00:01:30.000000Z",
                                                               datatype=graph.value(execution, PROV.endedAtTime).datatype)
    assert graph.value(product, KS.storedAt) == CONTEXT.runner_storage[0]
    owed = {(agent, reason): amount for agent, reason, amount in credit_entries(CONTEXT, report)}
    assert owed == {(BOB, KS.WorkflowAuthorship): Decimal(1), (CAROL, KS.Verification): Decimal("0.5"),
                    (UNIGE, KS.ComputeContribution): Decimal("1.5"), (ERIN, KS.DataProvision): Decimal(1)}


def test_unhandled_exception_generates_no_product_and_earns_no_credit() -> None:
    report = ResultReport.from_json({"outcome": "unhandled_exception", "duration_seconds": 3, "error_message": "x"})
    graph, execution, product = execution_graph(CONTEXT, report)
    assert product is None and (execution, PROV.generated, None) not in graph
    assert credit_entries(CONTEXT, report) == []
    assert compute_credit(0.1) == Decimal("0.01")


def test_a_product_needs_a_storage() -> None:
    bare = ExecutionContext(**{**CONTEXT.__dict__, "runner_storage": ()})
    with pytest.raises(InvalidRequest, match="storage"):
        execution_graph(bare, ResultReport.from_json(fake_result("x")))


def test_acknowledgements_cover_the_whole_chain(store: Store) -> None:
    load_federation(store)
    queue = JobQueue(store)
    [job] = queue_light_curves(store, queue, 1)
    grant = queue.claim(PARIS)
    product = queue.report(job, PARIS, grant.claim.secret, ResultReport.from_json(fake_result("p"))).product
    result = acknowledgements(store, product)
    roles = {a["agent"]: a["roles"] for a in result["agents"]}
    assert roles == {str(BOB): ["author"], str(CAROL): ["verifier"], str(DAVE): ["compute"], str(ERIN): ["data"]}
    assert "Bob Okafor" in result["sentence"] and "Dave Moreau" in result["sentence"]
    totals = {t["agent"]: t for t in credit_totals(store)}
    assert totals[str(BOB)]["by_reason"] == {"workflow authorship": 1.0}
    assert credit_totals(store, ERIN)[0]["total"] == 1.0
    graph = product_provenance(store, product)
    assert (product, PROV.wasGeneratedBy, None) in graph
    with pytest.raises(NotFound):
        acknowledgements(store, URIRef("https://w3id.org/kgsched/id/product/none"))
