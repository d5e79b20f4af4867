"""Every planner rule, on the example federation in a real store (both store kinds for the core
rules), plus the pure cost rules on hand-made facts."""

from __future__ import annotations

import datetime as dt

import pytest
from rdflib import URIRef

from kgsched.graph.store import Store
from kgsched.namespaces import KS
from kgsched.planning.expressions import build_dag
from kgsched.planning.model import PlanOptions
from kgsched.planning.planner import plan_request, store_plan
from kgsched.registry.registration import Registry, validate_graph
from planner_support import (
    ALICE,
    BOB,
    ERIN,
    FED,
    SPI,
    add_failed_execution,
    add_product,
    combined,
    light_curve,
    runner,
)


def decisions(plan) -> dict[str, str]:
    return {step.address: step.decision for step in plan.steps}


def addresses(store: Store, request: dict) -> dict[str, str]:
    """Role → address for the combined request (soft, hard, root)."""
    dag = build_dag(store, request)
    root = dag.root
    args = {a.name: str(a.value) for a in root.arguments}
    return {"soft": args["soft"], "hard": args["hard"], "root": root.address}


def test_nothing_cached_recomputes_everything_where_the_data_is(federation: Store) -> None:
    plan = plan_request(federation, combined(), ALICE)
    assert plan.summary() == {"reuse": 0, "recompute": 3, "cannot": 0}
    by_workflow = {str(s.workflow).rsplit("/", 1)[-1]: s for s in plan.steps}
    # the light curves run at Geneva, where the event list is held or readable
    for step in plan.steps:
        if "light-curve" in str(step.workflow) and "combine" not in str(step.workflow):
            assert step.runner in {runner("geneva-batch"), runner("alice-laptop"), runner("paris-cluster")}
            assert step.offers and step.offers[0].finish_seconds <= step.offers[-1].finish_seconds
    assert by_workflow["combine-light-curves"].runner is not None
    assert plan.steps[-1].expression == plan.root


def test_exact_reuse_hit(federation: Store) -> None:
    roles = addresses(federation, combined())
    from kgsched.planning.expressions import expression_iri

    product = add_product(federation, expression_iri(roles["root"]), runner("geneva-batch"))
    plan = plan_request(federation, combined(), ALICE)
    root = plan.step_for(plan.root)
    assert root.decision == "reuse" and root.product == product
    assert plan.summary()["recompute"] == 0
    assert "reused" in root.reason


def test_rerun_after_everything_cached_reuses_every_node(federation: Store) -> None:
    from kgsched.planning.expressions import expression_iri

    for address in addresses(federation, combined()).values():
        add_product(federation, expression_iri(address), runner("geneva-batch"))
    plan = plan_request(federation, combined(), ALICE)
    assert plan.summary() == {"reuse": 3, "recompute": 0, "cannot": 0}


def test_changed_argument_recomputes_exactly_its_downstream_cone(federation: Store) -> None:
    from kgsched.planning.expressions import expression_iri

    for address in addresses(federation, combined()).values():
        add_product(federation, expression_iri(address), runner("geneva-batch"))
    changed = combined(hard=light_curve(40, 150))
    roles = addresses(federation, changed)
    plan = plan_request(federation, changed, ALICE)
    assert decisions(plan) == {roles["soft"]: "reuse", roles["hard"]: "recompute", roles["root"]: "recompute"}


def test_expired_product_is_recomputed(federation: Store) -> None:
    from kgsched.planning.expressions import expression_iri

    request = light_curve(20, 40)
    address = build_dag(federation, request).root.address
    add_product(federation, expression_iri(address), runner("geneva-batch"),
                expires=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    step = plan_request(federation, request, ALICE).steps[0]
    assert step.decision == "recompute"
    assert "expired" in step.reason


def test_analysis_exception_product_is_reused(federation: Store) -> None:
    from kgsched.planning.expressions import expression_iri

    request = light_curve(20, 40)
    address = build_dag(federation, request).root.address
    product = add_product(federation, expression_iri(address), runner("geneva-batch"), outcome=KS.AnalysisException)
    step = plan_request(federation, request, ALICE).steps[0]
    assert (step.decision, step.product) == ("reuse", product)
    assert "analysis exception" in step.reason


def test_unhandled_exception_execution_is_never_cache(federation: Store) -> None:
    from kgsched.planning.expressions import expression_iri

    request = light_curve(20, 40)
    address = build_dag(federation, request).root.address
    add_failed_execution(federation, expression_iri(address), runner("geneva-batch"))
    step = plan_request(federation, request, ALICE).steps[0]
    assert step.decision == "recompute" and step.reason.startswith("not cached")


def test_compute_to_data_dataset_only_at_its_site(federation: Store) -> None:
    plan = plan_request(federation, light_curve(80, 8000, dataset=SPI), ALICE)
    [step] = plan.steps
    assert step.decision == "recompute"
    assert step.runner == runner("paris-cluster")
    assert step.candidates == [runner("paris-cluster")]


def test_compute_to_data_refuses_a_runner_elsewhere_even_if_it_may_read(federation: Store) -> None:
    """A Geneva runner granted read access to the restricted dataset still may not run on it."""
    text = (FED_RUNNER % ("geneva-reader", "geneva", "ks:canRead <" + SPI + "> ;"))
    Registry(federation).register([("r", text)], URIRef(FED + "person/dave"))
    step = plan_request(federation, light_curve(80, 8000, dataset=SPI), ALICE).steps[0]
    assert runner("geneva-reader") not in step.candidates


def test_group_runner_serves_only_its_group(federation: Store) -> None:
    step = plan_request(federation, light_curve(80, 8000, dataset=SPI), ERIN).steps[0]
    assert step.decision == "cannot"
    assert "spi-acs-rates-2023" in step.reason
    isgri = plan_request(federation, light_curve(20, 40), ERIN).steps[0]
    assert runner("paris-cluster") not in isgri.candidates
    assert runner("alice-laptop") not in isgri.candidates  # a user runner serves only its user


FED_RUNNER = """
@prefix ks: <https://w3id.org/kgsched#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
<https://example.org/fed/runner/%s> a ks:JobRunner ; rdfs:label "test runner" ;
    ks:ownedBy <https://example.org/fed/person/dave> ; ks:atSite <https://example.org/fed/site/%s> ;
    ks:cores 512 ; ks:memoryBytes 1000000000000 ; ks:supports ks:PythonCallable ; ks:serves ks:Anyone ;
    %s
    ks:trusts <https://example.org/fed/person/carol> .
"""


def test_runner_not_trusting_the_verifier_is_never_chosen(federation: Store) -> None:
    text = FED_RUNNER.replace("person/carol> .", "person/bob> .") % (
        "fast-but-distrustful", "geneva", "ks:holds <https://example.org/fed/data/isgri-events-rev2670> ;")
    Registry(federation).register([("r", text)], URIRef(FED + "person/dave"))
    plan = plan_request(federation, combined(), ALICE)
    for step in plan.steps:
        assert runner("fast-but-distrustful") not in step.candidates
        assert step.runner != runner("fast-but-distrustful")


def test_no_able_runner_says_why(federation: Store) -> None:
    request = {"workflow": FED + "workflow/periodogram",
               "args": {"light_curve": light_curve(20, 40), "min_period_s": 10}}
    step = plan_request(federation, request, ALICE).step_for(build_dag(federation, request).root.iri)
    assert step.decision == "cannot"
    assert "0 trust one of its verifiers" in step.reason


def test_force_recompute_ignores_cache(federation: Store) -> None:
    from kgsched.planning.expressions import expression_iri

    request = light_curve(20, 40)
    add_product(federation, expression_iri(build_dag(federation, request).root.address), runner("geneva-batch"))
    step = plan_request(federation, request, ALICE, PlanOptions(force_recompute=True)).steps[0]
    assert step.decision == "recompute" and "forced" in step.reason


def test_max_age(federation: Store) -> None:
    from kgsched.planning.expressions import expression_iri

    request = light_curve(20, 40)
    add_product(federation, expression_iri(build_dag(federation, request).root.address), runner("geneva-batch"),
                generated=dt.datetime.now(dt.UTC) - dt.timedelta(days=2))
    assert plan_request(federation, request, ALICE).steps[0].decision == "reuse"
    step = plan_request(federation, request, ALICE, PlanOptions(max_age_seconds=3600)).steps[0]
    assert step.decision == "recompute" and "maximum age" in step.reason


def test_preferred_runner(federation: Store) -> None:
    step = plan_request(federation, light_curve(20, 40), ALICE,
                        PlanOptions(preferred_runner=runner("paris-cluster"))).steps[0]
    assert step.runner == runner("paris-cluster")
    assert "preferred" in step.reason


def test_poisoned_cache_entry_from_unregistered_runner_is_not_reused(federation: Store) -> None:
    from kgsched.planning.expressions import expression_iri

    request = light_curve(20, 40)
    add_product(federation, expression_iri(build_dag(federation, request).root.address),
                URIRef("https://evil.example/runner"))
    step = plan_request(federation, request, ALICE).steps[0]
    assert step.decision == "recompute" and "not made by a registered runner" in step.reason


def test_trusted_owners_policy(federation: Store) -> None:
    from kgsched.planning.expressions import expression_iri

    request = light_curve(20, 40)
    add_product(federation, expression_iri(build_dag(federation, request).root.address), runner("alice-laptop"))
    only_unige = PlanOptions(trusted_owners=frozenset({URIRef(FED + "org/unige")}))
    assert plan_request(federation, request, BOB, only_unige).steps[0].decision == "recompute"
    only_alice = PlanOptions(trusted_owners=frozenset({ALICE}))
    assert plan_request(federation, request, BOB, only_alice).steps[0].decision == "reuse"


def test_plan_rdf_conforms_to_the_shapes_and_is_stored(federation: Store) -> None:
    plan = plan_request(federation, combined(), ALICE)
    graph = plan.to_graph()
    context = Registry(federation).context_for(graph)
    outcome = validate_graph(graph, context)
    assert outcome.conforms, outcome.report_text
    before = federation.quad_count()
    store_plan(federation, plan)
    assert federation.quad_count() == before + len(graph)
    rows = federation.select(
        "SELECT ?d ?r WHERE { ?p <https://w3id.org/kgsched#step> ?s . ?s <https://w3id.org/kgsched#decision> ?d ;"
        " <https://w3id.org/kgsched#reason> ?r }", [{"p": plan.iri}])
    assert len(rows) == 3 and all(row["d"] == KS.Recompute for row in rows)


def test_planning_history_replaces_the_authors_estimate(federation: Store) -> None:
    from kgsched.planning.expressions import expression_iri

    other = light_curve(1, 2)
    store_plan(federation, plan_request(federation, other, ALICE))  # as the service does before jobs run
    add_product(federation, expression_iri(build_dag(federation, other).root.address), runner("geneva-batch"),
                duration=7.0)
    step = plan_request(federation, light_curve(20, 40), ALICE).steps[0]
    offer = next(o for o in step.offers if o.runner == runner("geneva-batch"))
    assert offer.duration_seconds == pytest.approx(7.0)
    assert "run(s) on this runner" in offer.duration_source
