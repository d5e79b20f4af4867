"""Replicas that lock jobs in Redis (kgsched.jobs.coordination), against a real redis-server and a real
Oxigraph server: a job another replica is deciding is skipped, never taken twice; two replicas with
many threads each hand every job out exactly once and record each result once; an expired claim goes
to another runner and its late report is refused."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter

import pytest
from rdflib import URIRef

from kgsched.dev.redis_server import RedisServer
from kgsched.dev.workloads import LIGHT_CURVE_RUNNERS, fake_result, queue_light_curves
from kgsched.graph.store import RemoteStore, Store
from kgsched.jobs.coordination import CoordinatedJobQueue, JobLocks
from kgsched.jobs.queue import QueueSettings
from kgsched.jobs.states import Contention, LeaseLost
from kgsched.provenance.recording import ResultReport
from service_support import GENEVA, PARIS, load_federation

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
EXECUTIONS = """PREFIX ks: <https://w3id.org/kgsched#>
SELECT ?job (COUNT(DISTINCT ?execution) AS ?n) WHERE { ?execution ks:forJob ?job } GROUP BY ?job"""


def replica(store: Store, redis_server: RedisServer, clock=None, **settings: float) -> CoordinatedJobQueue:
    queue = CoordinatedJobQueue(store, QueueSettings(backoff_seconds=0, **settings), locks=JobLocks(redis_server.url))
    if clock is not None:
        queue.clock = clock
    return queue


def success(job: URIRef) -> ResultReport:
    return ResultReport.from_json(fake_result(str(job)))


def test_a_job_another_replica_is_deciding_is_skipped(remote_store: RemoteStore, redis_server: RedisServer) -> None:
    load_federation(remote_store)
    queue = replica(remote_store, redis_server, claim_rounds=2)
    [job] = queue_light_curves(remote_store, queue, 1)
    other = JobLocks(redis_server.url)
    with other.hold(f"job:{job}") as taken:
        assert taken
        with pytest.raises(Contention):
            queue.claim(GENEVA)
    grant = queue.claim(GENEVA)
    assert grant is not None and grant.claim.job == job
    assert queue.claim(PARIS) is None  # held


def test_two_replicas_with_threads_hand_out_and_record_every_job_once(remote_store: RemoteStore,
                                                                      redis_server: RedisServer) -> None:
    load_federation(remote_store)
    replicas = [replica(remote_store, redis_server), replica(RemoteStore(remote_store.query_endpoint), redis_server)]
    jobs = queue_light_curves(remote_store, replicas[0], 120)
    claimed: Counter[URIRef] = Counter()
    errors: list[BaseException] = []
    lock = threading.Lock()

    def client(i: int) -> None:
        queue = replicas[i % 2]
        runner = LIGHT_CURVE_RUNNERS[i % 3]
        try:
            while True:
                try:
                    grant = queue.claim(runner)
                except Contention:
                    continue
                if grant is None:
                    return
                with lock:
                    claimed[grant.claim.job] += 1
                replicas[(i + 1) % 2].report(grant.claim.job, runner, grant.claim.secret, success(grant.claim.job))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert claimed == Counter(jobs)
    counts = {row["job"]: int(row["n"]) for row in remote_store.select(EXECUTIONS)}
    assert counts == dict.fromkeys(jobs, 1)


def test_an_expired_claim_goes_to_another_runner_and_the_late_report_is_refused(
        remote_store: RemoteStore, redis_server: RedisServer) -> None:
    load_federation(remote_store)
    now = [T0]
    first = replica(remote_store, redis_server, lambda: now[0], lease_seconds=10, clock_skew_seconds=1)
    second = replica(RemoteStore(remote_store.query_endpoint), redis_server, lambda: now[0], lease_seconds=10,
                     clock_skew_seconds=1)
    [job] = queue_light_curves(remote_store, first, 1)
    grant = first.claim(GENEVA)
    assert grant is not None and second.claim(PARIS) is None
    now[0] = T0 + dt.timedelta(seconds=12)
    taken = second.claim(PARIS)
    assert taken is not None and taken.claim.job == job
    with pytest.raises(LeaseLost):
        first.report(job, GENEVA, grant.claim.secret, success(job))
    assert second.report(job, PARIS, taken.claim.secret, success(job)).state == "done"
    again = first.report(job, PARIS, taken.claim.secret, success(job))
    assert again.already


def test_a_claims_context_is_kept_for_the_next_claim_but_an_input_products_never_are(
        remote_store: RemoteStore, redis_server: RedisServer) -> None:
    from rdflib import RDF, Literal

    from kgsched.jobs.queue import NewJob
    from kgsched.namespaces import KS, KSID, PLANS_GRAPH
    from kgsched.registry.generation import bump_update

    load_federation(remote_store)
    queue = replica(remote_store, redis_server)
    upstream = queue_light_curves(remote_store, queue, 3, eligible=(PARIS,))
    grants = [queue.claim(PARIS) for _ in upstream]
    assert {g.claim.job for g in grants if g is not None} == set(upstream)
    # a claim after the first one's lease was given up reads the same expression's context from memory
    again = queue.context(upstream[0], URIRef("urn:test:another-claim"), PARIS, grants[0].claim.claimed_at,
                          grants[0].context.expression)
    assert again.literals == grants[0].context.literals and queue._expression_rows.hits == 1
    # an expression whose argument is the first light curve's product
    first = grants[0]
    combined, argument = KSID["expression/combined-test"], KSID["expression/combined-test/arg/soft"]
    remote_store.add_to_graph(PLANS_GRAPH, [
        (combined, RDF.type, KS.Expression), (combined, KS.workflow, URIRef("https://example.org/fed/workflow/combine")),
        (combined, KS.contentAddress, Literal("combined-test")), (combined, KS.argument, argument),
        (argument, KS.name, Literal("soft")), (argument, KS.expression, first.context.expression)])
    generation = queue.registry_generation()
    queue._expression_rows.get(remote_store, combined, generation)  # read before its input exists
    [down] = queue.enqueue([NewJob(combined, (GENEVA,), depends_on=(first.context.expression,))])
    queue.report(first.claim.job, PARIS, first.claim.secret, success(first.claim.job))
    taken = queue.claim(GENEVA)
    assert taken is not None and taken.claim.job == down
    [soft] = taken.context.inputs
    assert soft.entity is not None and soft.checksum  # the product made since, read at the claim
    # a registration changes the generation: what was kept under the old one is read again
    hits = queue._expression_rows.hits
    remote_store.update(bump_update())
    assert queue._expression_rows.get(remote_store, upstream_expression(queue, upstream[1]),
                                      queue.registry_generation())
    assert queue._expression_rows.hits == hits


def upstream_expression(queue: CoordinatedJobQueue, job: URIRef) -> URIRef:
    expression = queue.record(job).expression
    assert expression is not None
    return expression
