"""Stalled work: a queued job that no registered runner is able and allowed to run now.

A plan is made against the federation of its moment; runners then leave (deregistered, tokens revoked)
or stop trusting a verifier, and a queued job may be left with nobody who could ever claim it. Such a
job is *stalled*. Nothing changes in the graph for it — it is a view, computed when someone asks
(``GET /plans/<id>/jobs``, ``GET /jobs``), with the same rules late binding applies at claim time
(kgsched.jobs.late_binding: runner-eligibility.rq and datasets.rq), so "stalled" means exactly "no
runner's claim could find it". A job is stalled, too, when an input it waits for can no longer be read
(every copy of its product lost) and no job is recomputing it. The requester may then re-plan
(kgsched.jobs.replan), which recomputes what is lost.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable

from rdflib import URIRef

from kgsched.graph import queries
from kgsched.graph.store import Store
from kgsched.jobs.contact import last_contacts
from kgsched.jobs.late_binding import readers_of
from kgsched.namespaces import JOBS_GRAPH, PLANS_GRAPH
from kgsched.planning.facts import Eligibility
from kgsched.planning.words import no_able_runner, short


def _true(term: object) -> bool:
    return str(term) in ("true", "1")


def stalled_reasons(store: Store, jobs: Iterable[URIRef], *, now: dt.datetime | None = None,
                    silence_seconds: float | None = None, jobs_graph: URIRef = JOBS_GRAPH,
                    plans: URIRef = PLANS_GRAPH) -> dict[URIRef, str]:
    """For each of ``jobs`` (queued ones: the caller passes only those) that no registered runner may run
    now, why: "waiting for a runner able to …". Given ``now`` and ``silence_seconds``, a job whose able
    runners have all been out of touch longer than that (kgsched.jobs.contact) is stalled too. Jobs some
    runner may run are left out."""
    jobs = sorted(set(jobs))
    if not jobs:
        return {}
    rows = queries.select(store, "job-requirements", [{"job": j, "jobs": jobs_graph, "plans": plans} for j in jobs])
    need: dict[URIRef, tuple[URIRef, URIRef, URIRef]] = {}
    excluded: dict[URIRef, set[URIRef]] = defaultdict(set)
    for row in rows:
        need[row["job"]] = (row["expression"], row["workflow"], row["requester"])
        if row.get("excluded") is not None:
            excluded[row["job"]].add(row["excluded"])
    eligibility: dict[tuple[URIRef, URIRef], list[Eligibility]] = defaultdict(list)
    by_requester: dict[URIRef, set[URIRef]] = defaultdict(set)
    for _expression, workflow, requester in need.values():
        by_requester[requester].add(workflow)
    for requester, workflows in sorted(by_requester.items()):
        for row in queries.select(store, "runner-eligibility",
                                  [{"workflow": w, "requester": requester} for w in sorted(workflows)]):
            eligibility[(row["workflow"], requester)].append(Eligibility(
                row["runner"], _true(row["supportsKind"]), _true(row["enoughCores"]), _true(row["enoughMemory"]),
                _true(row["trustsVerifier"]), _true(row["servesRequester"])))
    readers = readers_of(store, {expression for expression, _w, _r in need.values()}, plans)
    reasons: dict[URIRef, str] = {}
    silent: dict[URIRef, set[URIRef]] = {}
    for job, (expression, workflow, requester) in sorted(need.items()):
        rows_for = sorted(eligibility.get((workflow, requester), []), key=lambda e: e.runner)
        able = {e.runner for e in rows_for if e.able}
        prefix = f"waiting for a runner able to run {short(workflow)} for {short(requester)}: "
        if not able:
            reasons[job] = prefix + no_able_runner(workflow, rows_for)
            continue
        if expression in readers:
            datasets, may_read = readers[expression]
            able &= may_read
            if not able:
                reasons[job] = prefix + (f"no able runner may read {', '.join(short(d) for d in sorted(datasets))}")
                continue
        if not able - excluded.get(job, set()):
            gone = ", ".join(short(r) for r in sorted(able))
            reasons[job] = prefix + f"every able runner ({gone}) already failed or refused it"
            continue
        if now is not None and silence_seconds is not None:
            able -= excluded.get(job, set())
            silent.setdefault(job, able)
    lost = lost_inputs(store, [j for j in need if j not in reasons], jobs_graph)
    if silent:
        contacts = last_contacts(store, {r for able in silent.values() for r in able}, jobs_graph)
        horizon = now - dt.timedelta(seconds=silence_seconds)  # type: ignore[operator]
        for job, able in silent.items():
            if not any(r in contacts and contacts[r] > horizon for r in able):
                names = ", ".join(short(r) for r in sorted(able))
                workflow, requester = need[job][1], need[job][2]
                reasons[job] = (f"waiting for a runner able to run {short(workflow)} for {short(requester)}: "
                                f"the able runners ({names}) have not been in touch for {silence_seconds:g} s")
    reasons.update(lost)  # a lost input needs a re-plan whoever is in touch
    return reasons


def lost_inputs(store: Store, jobs: Iterable[URIRef], jobs_graph: URIRef = JOBS_GRAPH) -> dict[URIRef, str]:
    """Jobs waiting for an input whose every product lost its copies (no replica available) while no job
    is recomputing it: nothing will ever make the input readable again, short of a re-plan."""
    jobs = sorted(set(jobs))
    if not jobs:
        return {}
    rows = queries.select(store, "job-unreadable-inputs", [{"job": j, "jobs": jobs_graph} for j in jobs])
    inputs = sorted({row["input"] for row in rows})
    if not inputs:
        return {}
    active = {row["expression"] for row in queries.select(
        store, "active-jobs", [{"expression": e, "jobs": jobs_graph} for e in inputs])}
    lost: dict[URIRef, list[URIRef]] = defaultdict(list)
    for row in rows:
        if row["input"] not in active:
            lost[row["job"]].append(row["input"])
    return {job: (f"waiting for its input {', '.join(short(i) for i in sorted(set(expressions)))}: no copy of its "
                  "product can be read any more (every replica is missing, unreachable, corrupt or gone) and "
                  "nothing is recomputing it; re-plan to recompute it")
            for job, expressions in lost.items()}
