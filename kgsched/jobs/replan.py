"""Re-planning: decide a recorded plan's request again, against today's federation and cache.

``POST /plans/<id>/replan`` (the plan's requester or the administrator) calls these. What is done
stays done: the products it made are in the cache, and the planner reuses them. The rest is decided
anew. A recompute step whose expression still has a queued or claimed job keeps that job (never a
second one for the same expression), and the job gains the new plan's runners as eligible
(``ks:eligibleRunner``, only ever added: who may bid is a hint, the claim protocol decides who holds),
the new plan's choice (``ks:chosenRunner``) and the new plan (``ks:fromPlan``); every other recompute
step gets a new job. The new plan is a ``prov:wasRevisionOf`` the old one, in the plans graph.
"""

from __future__ import annotations

from rdflib import Graph, URIRef

from kgsched.errors import NotFound
from kgsched.graph import queries
from kgsched.graph.store import Store
from kgsched.graph.updates import data_update
from kgsched.jobs.queue import JobQueue
from kgsched.namespaces import KS, PLANS_GRAPH, PROV
from kgsched.planning.expressions import MAX_DEPTH
from kgsched.planning.model import Plan


def recorded_request(store: Store, plan: URIRef, plans: URIRef = PLANS_GRAPH) -> tuple[Graph, URIRef]:
    """The plan's request as a Turtle-form ks:Request graph (root expression and every expression below
    it, as recorded), and its requester. NotFound for an unknown plan."""
    rows = queries.select(store, "plan-request", [{"plan": plan, "plans": plans}])
    if not rows:
        raise NotFound(f"no plan {plan}")
    request, root, requester = rows[0]["request"], rows[0]["root"], rows[0]["requester"]
    graph = Graph()
    graph.add((request, KS.rootExpression, root))
    seen: set[URIRef] = set()
    frontier = {root}
    for _level in range(MAX_DEPTH + 2):
        if not frontier:
            break
        seen |= frontier
        part = queries.construct(store, "expression-descriptions",
                                 [{"expression": e, "plans": plans} for e in sorted(frontier)])
        graph += part
        frontier = {o for o in part.objects(None, KS.expression) if isinstance(o, URIRef)} - seen
    return graph, requester


def refresh_active_jobs(queue: JobQueue, plan: Plan) -> list[URIRef]:
    """Give the queued or claimed jobs of the new plan's recompute steps the new plan's runners, choice
    and plan (one update, under the write lock); returns the jobs refreshed."""
    steps = [s for s in plan.steps if s.decision == "recompute"]
    if not steps:
        return []
    with queue.store.write_lock:
        rows = queries.select(queue.store, "active-jobs",
                              [{"expression": s.expression, "jobs": queue.graph} for s in steps])
        active = {row["expression"]: row["job"] for row in rows}
        insert: list[tuple[URIRef, URIRef, URIRef]] = []
        delete: list[tuple[URIRef, URIRef, URIRef]] = []
        for step in steps:
            job = active.get(step.expression)
            if job is None:
                continue
            eligible, chosen = queue.runners(job)
            runners = list(step.candidates) or ([step.runner] if step.runner is not None else [])
            insert += [(job, KS.eligibleRunner, r) for r in runners if r not in eligible]
            insert.append((job, KS.fromPlan, plan.iri))
            if step.runner is not None and step.runner != chosen:
                if chosen is not None:
                    delete.append((job, KS.chosenRunner, chosen))
                insert.append((job, KS.chosenRunner, step.runner))
        if insert:
            queue.store.update(data_update(insert={queue.graph: insert}, delete={queue.graph: delete}))
            queue.reload(sorted(set(active.values())))
    return sorted(set(active.values()))


def link_revision(store: Store, new: URIRef, old: URIRef, plans: URIRef = PLANS_GRAPH) -> None:
    store.update(data_update(insert={plans: [(new, PROV.wasRevisionOf, old)]}))
