"""Late binding on the embedded store and an Oxigraph server: after the planner's runners' head start, a runner the plan
did not name may claim a queued job — only if the planner's own rules let it run the job *now*."""

from __future__ import annotations

import datetime as dt

import pytest
from rdflib import URIRef

from conftest import register_examples
from kgsched.graph.store import Store
from kgsched.jobs.late_binding import late_candidates
from kgsched.jobs.queue import JobQueue, NewJob, QueueSettings
from kgsched.planning.planner import plan_request, store_plan
from kgsched.registry.registration import load_ontology
from planner_support import ALICE, combined, runner

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
HEAD_START = 30.0


@pytest.fixture(params=["embedded", "remote"])
def federation(request: pytest.FixtureRequest) -> Store:
    """The example federation on the embedded store and an Oxigraph server. Not Virtuoso: on main,
    queries/runner-eligibility.rq (which late binding reuses, as the planner does) already fails there
    with SQ074 (tests/test_planner.py fails the same way), so the lead's fix for that query covers both."""
    store = request.getfixturevalue(f"{request.param}_store")
    load_ontology(store)
    register_examples(store)
    return store


def queue_for_paris(store: Store) -> tuple[JobQueue, set[URIRef]]:
    """Alice's combined light curve, planned and queued with Paris as the only runner the plan names."""
    plan = plan_request(store, combined(), ALICE)
    store_plan(store, plan)
    moments = iter([T0])
    queue = JobQueue(store, QueueSettings(preference_seconds=HEAD_START), clock=lambda: next(moments, T0))
    paris = runner("paris-cluster")
    steps = [s for s in plan.steps if s.decision == "recompute"]
    iris = queue.enqueue([NewJob(s.expression, (paris,), paris, plan.iri, tuple(s.depends_on)) for s in steps])
    return queue, {iri for s, iri in zip(steps, iris, strict=True) if not s.depends_on}  # the light curves


def test_a_runner_the_plan_did_not_name_may_bid_after_the_head_start_if_able_now(federation: Store) -> None:
    _queue, light_curves = queue_for_paris(federation)
    geneva = runner("geneva-batch")
    # within the head start: only the plan's runners
    assert late_candidates(federation, geneva, T0 + dt.timedelta(seconds=HEAD_START - 1), HEAD_START) == []
    later = T0 + dt.timedelta(seconds=HEAD_START + 1)
    found = set(late_candidates(federation, geneva, later, HEAD_START))
    assert found == light_curves and len(found) == 2  # the combination waits for its inputs
    # the plan's own runner is not a late candidate (it finds its jobs the ordinary way)
    assert late_candidates(federation, runner("paris-cluster"), later, HEAD_START) == []
    # the Garching volunteer may not read the event list; Alice's session neither
    assert late_candidates(federation, runner("garching-volunteer"), later, HEAD_START) == []
    assert late_candidates(federation, runner("alice-session"), later, HEAD_START) == []


def test_the_claim_takes_a_late_job_only_after_the_head_start(federation: Store) -> None:
    queue, _jobs = queue_for_paris(federation)
    geneva = runner("geneva-batch")
    queue.clock = lambda: T0 + dt.timedelta(seconds=HEAD_START / 2)
    assert queue.claim(geneva) is None
    queue.clock = lambda: T0 + dt.timedelta(seconds=HEAD_START + 1)
    grant = queue.claim(geneva)
    assert grant is not None and grant.claim.runner == geneva
    assert queue.describe(grant.claim.job)["state"] == "claimed"
    assert str(geneva) not in queue.describe(grant.claim.job)["eligible_runners"]
