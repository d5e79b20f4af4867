"""The cost rules on hand-made facts (no graph): reuse vs recompute, runner choice, ties."""

from __future__ import annotations

import datetime as dt

import networkx as nx
from rdflib import URIRef
from rdflib.namespace import XSD

from kgsched.namespaces import KS
from kgsched.planning.expressions import Argument, Expression, RequestDag, WorkflowInfo, content_address, typed_literal
from kgsched.planning.facts import DatasetInfo, Eligibility, Facts, History, ProductInfo, RunnerInfo
from kgsched.planning.model import PlanOptions
from kgsched.planning.planner import decide

E = "https://example.org/t/"
NEAR, FAR = URIRef(E + "site/near"), URIRef(E + "site/far")
WORKFLOW = WorkflowInfo(URIRef(E + "wf"), "1", KS.PythonCallable, None, {}, estimated_duration=10.0,
                        estimated_output_bytes=1000)
REQUESTER = URIRef(E + "alice")


def one_node(seed: int = 1) -> RequestDag:
    arguments = (Argument("x", "literal", typed_literal("x", seed, XSD.integer)),)
    expression = Expression(content_address(WORKFLOW, arguments), WORKFLOW, arguments)
    dag = nx.DiGraph()
    dag.add_node(expression.address, expression=expression)
    return RequestDag(dag, expression)


def facts(*runners: RunnerInfo, products=(), bandwidth=None, load=None, history=None) -> Facts:
    f = Facts(now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    for r in runners:
        f.runners[r.iri] = r
    f.eligibility[WORKFLOW.iri] = [Eligibility(r.iri, True, True, True, True, True) for r in runners]
    f.bandwidth = bandwidth or {(NEAR, FAR): 1e3, (FAR, NEAR): 1e3, (NEAR, NEAR): 1e9, (FAR, FAR): 1e9}
    f.load = load or {}
    f.history = history or {}
    return f


def product_at(dag: RequestDag, site: URIRef, size: int) -> ProductInfo:
    return ProductInfo(URIRef(E + "product"), KS.Success, size, site, URIRef(E + "storage"),
                       runner=URIRef(E + "r-near"), owner=URIRef(E + "owner"))


R_NEAR = RunnerInfo(URIRef(E + "r-near"), NEAR, 4, 0, URIRef(E + "owner"))
R_FAR = RunnerInfo(URIRef(E + "r-far"), FAR, 4, 0, URIRef(E + "owner"))


def test_cheaper_to_recompute_beats_a_far_away_cached_copy() -> None:
    dag = one_node()
    f = facts(R_NEAR, products=())
    f.products[dag.root.iri] = [product_at(dag, FAR, 1_000_000)]  # 1 MB at 1 kB/s: 1,000 s away
    plan = decide(dag, f, REQUESTER, PlanOptions(deliver_to_site=NEAR))
    [step] = plan.steps
    assert step.decision == "recompute" and step.runner == R_NEAR.iri
    assert "beats moving cached" in step.reason


def test_a_near_cached_copy_beats_recomputing() -> None:
    dag = one_node()
    f = facts(R_NEAR)
    f.products[dag.root.iri] = [product_at(dag, FAR, 1_000)]  # 1 kB at 1 kB/s: 1 s away, recompute 10 s
    [step] = decide(dag, f, REQUESTER, PlanOptions(deliver_to_site=NEAR)).steps
    assert step.decision == "reuse"
    assert "recomputing would take" in step.reason


def test_runner_choice_weighs_queue_and_duration() -> None:
    dag = one_node()
    busy = RunnerInfo(URIRef(E + "busy"), NEAR, 1, 0, URIRef(E + "o"))
    idle = RunnerInfo(URIRef(E + "idle"), NEAR, 1, 0, URIRef(E + "o"))
    f = facts(busy, idle, load={busy.iri: 3})
    [step] = decide(dag, f, REQUESTER).steps
    assert step.runner == idle.iri
    slow_history = {(WORKFLOW.iri, idle.iri): History(1000.0, 5, None), (WORKFLOW.iri, busy.iri): History(10.0, 5, None)}
    [step] = decide(dag, facts(busy, idle, load={busy.iri: 3}, history=slow_history), REQUESTER).steps
    assert step.runner == busy.iri  # 3 queued x 60 s + 10 s beats 1,000 s measured on idle


def test_ties_go_to_the_runner_storing_less() -> None:
    dag = one_node()
    full = RunnerInfo(URIRef(E + "a-full"), NEAR, 4, 10**12, URIRef(E + "o"))
    empty = RunnerInfo(URIRef(E + "b-empty"), NEAR, 4, 0, URIRef(E + "o"))
    [step] = decide(dag, facts(full, empty), REQUESTER).steps
    assert step.runner == empty.iri


def test_data_locality_prefers_the_runner_holding_the_dataset() -> None:
    dataset = URIRef(E + "data")
    workflow = WorkflowInfo(URIRef(E + "wf"), "1", KS.PythonCallable, None, {}, estimated_duration=10.0)
    arguments = (Argument("d", "dataset", dataset),)
    expression = Expression(content_address(workflow, arguments), workflow, arguments)
    dag = nx.DiGraph()
    dag.add_node(expression.address, expression=expression)
    f = facts(R_NEAR, R_FAR)
    f.datasets[dataset] = DatasetInfo(dataset, FAR, 10_000_000, False, {R_NEAR.iri: False, R_FAR.iri: True})
    [step] = decide(RequestDag(dag, expression), f, REQUESTER).steps
    assert step.runner == R_FAR.iri
    near_offer = next(o for o in step.offers if o.runner == R_NEAR.iri)
    assert near_offer.bytes_to_move == 10_000_000


def test_plan_spreads_independent_nodes_over_runners() -> None:
    """Each choice adds to the runner's queue, so a wide plan does not pile onto one runner."""
    nodes = [one_node(i).root for i in range(8)]
    root_args = tuple(Argument(f"in{i}", "expression", n.address) for i, n in enumerate(nodes))
    root = Expression(content_address(WORKFLOW, root_args), WORKFLOW, root_args, [n.address for n in nodes])
    dag = nx.DiGraph()
    for node in nodes:
        dag.add_node(node.address, expression=node)
        dag.add_edge(node.address, root.address)
    dag.add_node(root.address, expression=root)
    one_core = [RunnerInfo(URIRef(E + f"r{i}"), NEAR, 1, 0, URIRef(E + "o")) for i in range(4)]
    plan = decide(RequestDag(dag, root), facts(*one_core), REQUESTER)
    used = {step.runner for step in plan.steps if step.expression != root.iri}
    assert len(used) == 4


def irregular_dag() -> RequestDag:
    """Inputs of different depths and counts: root(a, b, c), a = f(d, e), c = f(d), b and d, e leaves
    (d shared by a and c), so one generation mixes nodes with one and with two inputs."""
    def node(name: str, *inputs: Expression) -> Expression:
        arguments = (Argument("name", "literal", typed_literal("name", name, XSD.string)),) + tuple(
            Argument(f"in{i}", "expression", child.address) for i, child in enumerate(inputs))
        return Expression(content_address(WORKFLOW, arguments), WORKFLOW, arguments, sorted({c.address for c in inputs}))

    d, e, b = node("d"), node("e"), node("b")
    a, c = node("a", d, e), node("c", d)
    root = node("root", a, b, c)
    dag = nx.DiGraph()
    for expression in (d, e, b, a, c, root):
        dag.add_node(expression.address, expression=expression)
        for child in expression.inputs:
            dag.add_edge(child, expression.address)
    return RequestDag(dag, root)


def irregular_facts(dag: RequestDag) -> Facts:
    f = facts(R_NEAR, R_FAR, RunnerInfo(URIRef(E + "r-near-2"), NEAR, 1, 0, URIRef(E + "owner")))
    middle = next(x for x in dag.expressions() if len(x.inputs) == 2)
    f.products[middle.iri] = [product_at(dag, FAR, 50_000)]
    return f


def test_estimate_per_generation_equals_the_node_by_node_rule() -> None:
    """The vectorised estimate gives, for every node, what the rule computed node by node gives:
    inputs ready at a site when the slowest input can be there; a value available at a site by
    moving a usable copy or by computing it at the best site and moving the output."""
    import numpy as np

    from kgsched.planning.cost import CostModel

    dag = irregular_dag()
    model = CostModel(irregular_facts(dag), PlanOptions())
    states = model.estimate(dag.expressions())
    inverse, avail = model.network.inverse, {}
    for expression in dag.expressions():
        products, _ = model.usable_products(expression)
        ready = np.zeros(len(model.network.sites))
        for child in expression.inputs:
            ready = np.maximum(ready, avail[child])
        reuse = np.full(len(model.network.sites), np.inf)
        for product in products:
            reuse = np.minimum(reuse, product.size_bytes * inverse[model.network.index[product.site]])
        size = model.output_bytes(expression, products)
        recompute = ((model.pool(expression).base + ready)[:, None] + size * inverse).min(axis=0)
        avail[expression.address] = np.minimum(reuse, recompute)
        state = states[expression.address]
        assert np.allclose(state.ready, ready)
        assert np.isclose(state.cheapest, avail[expression.address].min())


def test_estimate_blocks_do_not_change_the_plan(monkeypatch) -> None:
    """The estimate bounds its memory by splitting wide generations into blocks; one node per block
    must give the same plan as whole generations."""
    import kgsched.planning.cost as cost

    dag = irregular_dag()
    whole = decide(dag, irregular_facts(dag), REQUESTER, PlanOptions(deliver_to_site=NEAR))
    monkeypatch.setattr(cost, "_ESTIMATE_BLOCK", 1)
    split = decide(dag, irregular_facts(dag), REQUESTER, PlanOptions(deliver_to_site=NEAR))
    summary = [(s.expression, s.decision, s.runner, s.product, s.estimated_cost_seconds) for s in whole.steps]
    assert summary == [(s.expression, s.decision, s.runner, s.product, s.estimated_cost_seconds) for s in split.steps]
    assert {s.decision for s in whole.steps} >= {"recompute"}


def test_the_chosen_runners_offer_is_recorded_first() -> None:
    """Four runners at four sites; the request prefers r3, which has 20 jobs queued. The preference
    wins, and its offer must be among those the plan records (it used to record r0, r1 and r2, the
    best three by finish, while choosing r3)."""
    sites = [URIRef(E + f"site/{i}") for i in range(4)]
    runners = [RunnerInfo(URIRef(E + f"r{i}"), site, 4, 0, URIRef(E + "o")) for i, site in enumerate(sites)]
    preferred = runners[3].iri
    f = facts(*runners, bandwidth={(a, b): 1e6 for a in sites for b in sites}, load={preferred: 20})
    [step] = decide(one_node(), f, REQUESTER, PlanOptions(preferred_runner=preferred)).steps
    assert step.decision == "recompute" and step.runner == preferred
    assert step.runner in {offer.runner for offer in step.offers}
    assert step.offers[0].runner == step.runner and "preferred runner" in step.reason
    assert len(step.offers) == PlanOptions().max_offers_recorded


def test_offers_are_ranked_by_the_objective_that_chooses() -> None:
    """The output must reach the delivery site: a runner there that finishes later beats runners that
    finish sooner far away, and the offers are recorded in the order the choice made them."""
    from dataclasses import replace

    from kgsched.planning.decision import Candidate, objective

    sites = [URIRef(E + f"site/{i}") for i in range(4)]
    runners = [RunnerInfo(URIRef(E + f"r{i}"), site, 4, 0, URIRef(E + "o")) for i, site in enumerate(sites)]
    slow = {(a, b): (1e9 if a == b else 10.0) for a in sites for b in sites}  # 1,000 B output: 100 s away
    f = facts(*runners, bandwidth=slow, load={runners[3].iri: 1})  # r3 waits 15 s for its queue
    [step] = decide(one_node(), f, REQUESTER, PlanOptions(deliver_to_site=sites[3])).steps
    assert step.runner == runners[3].iri
    assert step.offers[0].runner == step.runner
    assert step.offers[0].finish_seconds > step.offers[1].finish_seconds  # it finishes later ...
    assert [o.delivered_seconds for o in step.offers] == sorted(o.delivered_seconds for o in step.offers)
    # ... and the objective puts the preferred runner first, then the earliest delivery, then less storage
    a = Candidate(False, 5.0, 10, "a", 0, 0, 1.0, 1.0)
    preferred, smaller = replace(a, delivered=9.0, preferred=True), replace(a, storage_bytes=1, name="b")
    assert sorted([a, smaller, preferred], key=objective) == [preferred, smaller, a]


def test_the_rules_import_no_store() -> None:
    """The plan model, cost model, decision and words are pure: importing them (in a fresh
    interpreter) loads neither the store nor pyoxigraph nor the fact-gathering queries."""
    import subprocess
    import sys

    code = ("import sys; import kgsched.planning.model, kgsched.planning.cost, kgsched.planning.decision, "
            "kgsched.planning.words; print(sorted(m for m in ('pyoxigraph', 'kgsched.graph.store', "
            "'kgsched.graph.queries', 'kgsched.planning.facts', 'kgsched.planning.expressions') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"
