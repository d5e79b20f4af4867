"""The embedded store's queue (kgsched.jobs.local_queue): an in-memory index decides claims with one write,
and keeps every rule of the protocol — exactly once, lease expiry, maxAttempts, exclusions, one-job
tokens, late binding — and the graph still records everything (a queue rebuilt from it agrees)."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from rdflib import URIRef

from kgsched.dev.workloads import LIGHT_CURVE_RUNNERS, fake_result, light_curve_expressions, queue_light_curves
from kgsched.graph.store import EmbeddedStore, Store
from kgsched.jobs.local_queue import LocalJobQueue
from kgsched.jobs.queue import JobQueue, NewJob, QueueSettings
from kgsched.jobs.states import LeaseLost, NotYourJob
from kgsched.namespaces import PLANS_GRAPH
from kgsched.provenance.recording import ResultReport
from kgsched.registry.tokens import TokenStore
from service_support import ALICE_LAPTOP, GENEVA, PARIS, load_federation

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
ADMIN = URIRef("https://example.org/fed/admin")
EXECUTIONS = """PREFIX ks: <https://w3id.org/kgsched#>
SELECT ?job (COUNT(DISTINCT ?execution) AS ?n) WHERE { ?execution ks:forJob ?job } GROUP BY ?job"""


@pytest.fixture
def store() -> Store:
    return load_federation(EmbeddedStore(None))


def queue(store: Store, now: list[dt.datetime], **settings: float) -> LocalJobQueue:
    return LocalJobQueue(store, QueueSettings(backoff_seconds=0, **settings), clock=lambda: now[0])


def success(job: URIRef) -> ResultReport:
    return ResultReport.from_json(fake_result(str(job)))


def test_every_job_is_claimed_and_recorded_once_and_the_graph_agrees(store: Store) -> None:
    now = [T0]
    q = queue(store, now)
    jobs = queue_light_curves(store, q, 40)
    grants = []
    while (grant := q.claim(LIGHT_CURVE_RUNNERS[len(grants) % 3])) is not None:
        grants.append(grant)
    assert Counter(g.claim.job for g in grants) == Counter(jobs)
    assert {grant.context.expression for grant in grants} == {q.record(j).expression for j in jobs}
    # a queue rebuilt from the graph sees the same claims: nothing is claimable while they are live
    assert queue(store, now).claim(GENEVA) is None
    for grant in grants:
        receipt = q.report(grant.claim.job, grant.claim.runner, grant.claim.secret, success(grant.claim.job))
        assert receipt.state == "done" and not receipt.already
    again = q.report(grants[0].claim.job, grants[0].claim.runner, grants[0].claim.secret, success(grants[0].claim.job))
    assert again.already
    counts = {row["job"]: int(row["n"]) for row in store.select(EXECUTIONS)}
    assert counts == dict.fromkeys(jobs, 1)
    assert JobQueue(store).list("done") and not JobQueue(store).list("queued")


def test_an_expired_claim_goes_to_another_runner_and_the_late_report_is_refused(store: Store) -> None:
    now = [T0]
    q = queue(store, now, lease_seconds=10, clock_skew_seconds=1)
    [job] = queue_light_curves(store, q, 1)
    first = q.claim(GENEVA)
    assert first is not None and q.claim(PARIS) is None  # held
    now[0] = T0 + dt.timedelta(seconds=12)
    second = q.claim(PARIS)
    assert second is not None and second.claim.job == job
    with pytest.raises(LeaseLost):
        q.report(job, GENEVA, first.claim.secret, success(job))
    assert q.report(job, PARIS, second.claim.secret, success(job)).state == "done"


def test_max_attempts_fails_the_job_and_a_heartbeat_keeps_it(store: Store) -> None:
    now = [T0]
    q = queue(store, now, lease_seconds=10, clock_skew_seconds=0, max_attempts=2)
    [job] = queue_light_curves(store, q, 1)
    grant = q.claim(GENEVA)
    assert grant is not None
    now[0] = T0 + dt.timedelta(seconds=5)
    q.heartbeat(job, GENEVA, grant.claim.secret)  # lease now runs to t = 15 s
    now[0] = T0 + dt.timedelta(seconds=12)
    assert q.claim(PARIS) is None
    now[0] = T0 + dt.timedelta(seconds=16)
    assert q.claim(PARIS) is not None  # the second attempt
    now[0] = T0 + dt.timedelta(seconds=40)
    assert q.claim(ALICE_LAPTOP) is None  # two claims ended without a result: the job failed
    assert q.describe(job)["state"] == "failed"
    assert queue(store, now).claim(GENEVA) is None


def test_an_unhandled_exception_excludes_the_runner_and_another_takes_the_job(store: Store) -> None:
    now = [T0]
    q = queue(store, now)
    [job] = queue_light_curves(store, q, 1, eligible=(GENEVA, PARIS))
    grant = q.claim(GENEVA)
    assert grant is not None and grant.claim.job == job
    report = ResultReport.from_json({"outcome": "unhandled_exception", "duration_seconds": 1.0,
                                     "error_message": "boom"})
    assert q.report(job, GENEVA, grant.claim.secret, report).state == "queued"
    assert q.claim(GENEVA) is None  # excluded
    taken = q.claim(PARIS)
    assert taken is not None and taken.claim.job == job


def test_a_one_job_token_claims_once(store: Store) -> None:
    now = [T0]
    q = queue(store, now)
    queue_light_curves(store, q, 2)
    token = TokenStore(store, ADMIN).issue(GENEVA, ADMIN, one_job=True).iri
    assert q.claim(GENEVA, token, one_job=True) is not None
    with pytest.raises(NotYourJob):
        q.claim(GENEVA, token, one_job=True)


def test_jobs_waiting_for_inputs_are_not_claimable_until_a_product_exists(store: Store) -> None:
    now = [T0]
    q = queue(store, now)
    [up] = queue_light_curves(store, q, 1, eligible=(PARIS,))
    graph, [later] = light_curve_expressions(1, start=5)
    store.add_to_graph(PLANS_GRAPH, graph)
    [down] = q.enqueue([NewJob(later, (GENEVA,), depends_on=(q.record(up).expression,))])
    assert q.claim(GENEVA) is None
    grant = q.claim(PARIS)
    assert grant is not None and grant.claim.job == up
    q.report(up, PARIS, grant.claim.secret, success(up))
    taken = q.claim(GENEVA)
    assert taken is not None and taken.claim.job == down


def test_late_binding_after_the_head_start_and_a_replan_reaches_the_index(store: Store) -> None:
    from kgsched.jobs.replan import refresh_active_jobs
    from kgsched.planning.planner import plan_request, store_plan
    from planner_support import ALICE, combined, runner

    plan = plan_request(store, combined(), ALICE)
    store_plan(store, plan)
    now = [T0]
    q = queue(store, now, preference_seconds=30)
    paris, geneva = runner("paris-cluster"), runner("geneva-batch")
    steps = [s for s in plan.steps if s.decision == "recompute"]
    q.enqueue([NewJob(s.expression, (paris,), paris, plan.iri, tuple(s.depends_on)) for s in steps])
    now[0] = T0 + dt.timedelta(seconds=15)
    assert q.claim(geneva) is None  # the plan's runner's head start
    now[0] = T0 + dt.timedelta(seconds=31)
    grant = q.claim(geneva)
    assert grant is not None and grant.claim.runner == geneva
    assert str(geneva) not in q.describe(grant.claim.job)["eligible_runners"]
    # a new plan naming geneva reaches the index at once (kgsched.jobs.replan calls reload)
    refresh_active_jobs(q, replace_runner(plan, geneva))
    rebuilt = queue(store, now, preference_seconds=30)
    assert {job: e.eligible for job, e in q._jobs.items()} == {job: e.eligible for job, e in rebuilt._jobs.items()}
    assert all(geneva in e.eligible for e in q._jobs.values())


def replace_runner(plan, runner_iri):  # noqa: ANN001, ANN201 - a plan whose recompute steps name another runner
    from dataclasses import replace

    return replace(plan, steps=[replace(s, runner=runner_iri, candidates=[runner_iri]) for s in plan.steps])
