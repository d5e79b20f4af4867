"""Late binding: a queued job may be claimed by any runner able and allowed to run it *when it claims*.

A plan lists, per job, the runners that were able when it was made (``ks:eligibleRunner``) and the one
it chose (``ks:chosenRunner``). The federation does not stand still: a volunteer joins after the plan,
an anonymous job-token runner is started *for* a queued job. So once a job has waited
``PREFERENCE_SECONDS`` (the planner's runners' head start), any other runner may bid for it — if, at
that moment, it passes the planner's own rules, read from the graphs of whoever may state them:

* ``queries/runner-eligibility.rq``: kind (a service offering the workflow), cores, memory, a trusted
  verifier's verification of the workflow as it is now, whom the runner serves, its believed owner;
* ``queries/datasets.rq``: every dataset the job reads directly is one the runner holds or can read,
  and a compute-to-data dataset only at its site with the registrant's grant.

This module only *finds* candidates (a hint, like ``job-candidates.rq``): who holds a job is still decided
by the bid-then-check protocol of ``kgsched.jobs.queue``, which it does not touch.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from rdflib import URIRef

from kgsched.clock import dt_literal
from kgsched.graph import queries
from kgsched.graph.store import Store
from kgsched.namespaces import JOBS_GRAPH, PLANS_GRAPH


def _true(term: object) -> bool:
    return str(term) in ("true", "1")


def late_candidates(store: Store, runner: URIRef, now: dt.datetime, preference_seconds: float,
                    jobs: URIRef = JOBS_GRAPH, plans: URIRef = PLANS_GRAPH) -> list[URIRef]:
    """Queued jobs the plan did not list ``runner`` for, queued at least ``preference_seconds`` ago, that
    ``runner`` is able and allowed to run now (the planner's rules, applied to this runner alone)."""
    cutoff = now - dt.timedelta(seconds=preference_seconds)
    rows = queries.select(store, "job-candidates-late",
                          [{"runner": runner, "jobs": jobs, "plans": plans, "cutoff": dt_literal(cutoff)}])
    if not rows:
        return []
    able = able_for(store, runner, {(row["workflow"], row["requester"]) for row in rows})
    rows = [row for row in rows if (row["workflow"], row["requester"]) in able]
    readable = reads_all_datasets(store, runner, {row["expression"] for row in rows}, plans)
    return list(dict.fromkeys(row["job"] for row in rows if row["expression"] in readable))


def able_for(store: Store, runner: URIRef, pairs: set[tuple[URIRef, URIRef]]) -> set[tuple[URIRef, URIRef]]:
    """The (workflow, requester) pairs ``runner`` is able and allowed to run (queries/runner-eligibility.rq)."""
    by_requester: dict[URIRef, set[URIRef]] = defaultdict(set)
    for workflow, requester in pairs:
        by_requester[requester].add(workflow)
    able: set[tuple[URIRef, URIRef]] = set()
    for requester, workflows in sorted(by_requester.items()):
        rows = queries.select(store, "runner-eligibility",
                              [{"workflow": w, "requester": requester} for w in sorted(workflows)])
        able |= {(row["workflow"], requester) for row in rows if row["runner"] == runner and _true(row["able"])}
    return able


def reads_all_datasets(store: Store, runner: URIRef, expressions: set[URIRef], plans: URIRef = PLANS_GRAPH
                       ) -> set[URIRef]:
    """The expressions all of whose datasets ``runner`` may read."""
    readers = readers_of(store, expressions, plans)
    return {e for e in expressions if e not in readers or runner in readers[e][1]}


def readers_of(store: Store, expressions: set[URIRef], plans: URIRef = PLANS_GRAPH
               ) -> dict[URIRef, tuple[set[URIRef], set[URIRef]]]:
    """For each expression that reads datasets directly: (those datasets, the runners that may read all
    of them) — queries/datasets.rq: held or readable, and a compute-to-data dataset only at its site with
    its registrant's grant. Expressions reading no dataset are left out (any runner will do)."""
    if not expressions:
        return {}
    needs: dict[URIRef, set[URIRef]] = defaultdict(set)
    for row in queries.select(store, "expression-datasets",
                              [{"expression": e, "plans": plans} for e in sorted(expressions)]):
        needs[row["expression"]].add(row["dataset"])
    datasets = sorted({d for ds in needs.values() for d in ds})
    readers: dict[URIRef, set[URIRef]] = defaultdict(set)
    if datasets:
        for row in queries.select(store, "datasets", {"dataset": datasets}):
            if row.get("reader") is not None:
                readers[row["dataset"]].add(row["reader"])
    result: dict[URIRef, tuple[set[URIRef], set[URIRef]]] = {}
    for expression, ds in needs.items():
        may = set.intersection(*(readers.get(d, set()) for d in ds))
        result[expression] = (ds, may)
    return result
