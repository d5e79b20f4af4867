"""The planner: for every node of a request's DAG, reuse a cached product, recompute it on a chosen
runner, or say why it cannot — and explain the decision in words.

This module is the entry point: :func:`plan_request` checks the request, gathers the facts in a few
batched SPARQL queries (kgsched.planning.facts) and calls :func:`decide`; :func:`store_plan` writes
the plan. The rules are pure functions of the facts, in modules with one job each, so they are
unit-tested without a graph and benchmarked against a plain-dict feed:

* kgsched.planning.model — the plan, its steps and offers, as JSON and RDF;
* kgsched.planning.cost — the cost model: sites and bandwidth, runner pools, the inputs-first estimate;
* kgsched.planning.decision — the decision pass and its objective;
* kgsched.planning.words — the sentences that explain each decision.

How a plan is made
    1. *Cost of availability* (inputs first): for every node and every site, the estimated seconds
       until the node's value could be at that site — by moving a usable cached copy there, or by
       computing it on an able runner (queue wait + time to bring its inputs + expected duration) and
       moving the output. Both use the sites' bandwidths.
    2. *Decisions* (root first, demand-driven): the root is needed; a needed node takes the cheaper of
       reusing and recomputing at the sites where its consumers run. A recomputed node needs its
       inputs at its runner's site; a reused node needs nothing upstream. So when a node is
       recomputed, everything downstream of it that needs it is recomputed too, and nothing upstream
       that is cached and usable is.
    3. Runner choice, like dask.distributed's ``decide_worker`` extended with duration: one objective
       (kgsched.planning.decision.objective) — the request's preferred runner, else the earliest the
       output could be where it is needed (queue wait + bytes missing / bandwidth + expected duration
       + moving the output), ties to the runner storing less — chooses the runner and ranks the
       offers recorded. Choices add to the runner's queue for later nodes of the same plan.

What counts as cache: products of successes and of analysis exceptions (scientific no-results are
results), unexpired, not older than the request's maximum age, made by a runner the requester's
policy trusts (default: any registered runner; optionally only runners of listed owners), so a
poisoned cache entry from an unknown producer does not spread.
"""

from __future__ import annotations

import datetime as dt
import gc
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from rdflib import Graph, URIRef

from kgsched.graph.store import Store
from kgsched.namespaces import KSID, PLANS_GRAPH
from kgsched.planning.cost import CostModel
from kgsched.planning.decision import Decider
from kgsched.planning.expressions import RequestDag, build_dag
from kgsched.planning.facts import Facts, gather_facts
from kgsched.planning.model import Plan, PlanOptions


def decide(dag: RequestDag, facts: Facts, requester: URIRef, options: PlanOptions | None = None,
           request_json: dict[str, Any] | None = None) -> Plan:
    """The pure part: a plan from a DAG and the facts about it."""
    options = options or PlanOptions()
    token = uuid.uuid4().hex
    plan_iri = URIRef(KSID[f"plan/{token}"])
    steps, skipped = Decider(dag, CostModel(facts, options)).decide(plan_iri)
    return Plan(plan_iri, URIRef(KSID[f"request/{token}"]), requester, dag.root.iri, facts.now, steps,
                dag.expressions(), options, skipped, request_json)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Planning allocates hundreds of thousands of small, acyclic objects; the cyclic collector's
    full passes over them took a quarter of a 10,000-node plan (measured). Nothing planning makes
    needs it, so it waits until the plan is made (and catches up on its own afterwards)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def plan_request(store: Store, request: Mapping[str, Any] | Graph, requester: URIRef,
                 options: PlanOptions | None = None, now: dt.datetime | None = None) -> Plan:
    """Check the request, gather the facts in a few batched queries, decide."""
    with gc_paused():
        dag = build_dag(store, request)
        facts = gather_facts(store, dag, requester, now)
        request_json = dict(request) if isinstance(request, Mapping) else None
        return decide(dag, facts, requester, options, request_json)


def store_plan(store: Store, plan: Plan) -> None:
    """Write the request, its expressions and the plan into the plans graph, in one update."""
    store.add_to_graph(PLANS_GRAPH, plan.to_graph())
