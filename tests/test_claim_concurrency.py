"""Exactly-once claims under real concurrency, over HTTP, as the issue asks:

(i)  one ``kgsched serve`` process (waitress threads) on the embedded store, 20 runner clients, 1,000 jobs;
(ii) two ``kgsched serve`` replicas over one Oxigraph server, 20 runner clients, 500 jobs — arbitrating
     by the claim protocol, and locking jobs in Redis (kgsched.jobs.coordination).

In both, every job is claimed and reported exactly once; one client stops mid-job, its lease runs out,
another runner claims the job and finishes it, and the stopped client's late result is refused. The
naive single-update claim fails these tests (it hands jobs out twice: bench/claim_bench.py shows how
often); tests/test_jobqueue.py checks the checker itself catches duplicates."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from rdflib import URIRef

from kgsched.dev.oxigraph_server import OxigraphServer
from kgsched.dev.workloads import LIGHT_CURVE_RUNNERS, queue_light_curves
from kgsched.graph.store import EmbeddedStore, RemoteStore, Store
from kgsched.jobs.queue import JobQueue
from kgsched.registry.tokens import TokenStore
from service_support import ServeProcess, bearer, check_exactly_once, http, load_federation, result_for

CLIENTS = 20
LEASE = {"KGSCHED_LEASE_SECONDS": "5", "KGSCHED_CLOCK_SKEW_SECONDS": "0.5"}
EXECUTIONS_PER_JOB = """PREFIX ks: <https://w3id.org/kgsched#>
SELECT ?job (COUNT(DISTINCT ?execution) AS ?n) WHERE { ?execution ks:forJob ?job } GROUP BY ?job"""
DONE_JOBS = """PREFIX ks: <https://w3id.org/kgsched#>
SELECT (COUNT(DISTINCT ?job) AS ?n) WHERE { GRAPH ?g { ?job ks:state ks:Done } }"""


def prepare(store: Store, jobs: int) -> tuple[list[str], list[str]]:
    """The federation, ``jobs`` queued light curves, and one token per client (spread over 3 runners)."""
    load_federation(store)
    iris = queue_light_curves(store, JobQueue(store), jobs)
    admin = URIRef("https://example.org/fed/admin")
    tokens = TokenStore(store, admin)
    secrets = [tokens.issue(LIGHT_CURVE_RUNNERS[i % 3], admin).secret for i in range(CLIENTS)]
    return [str(j).rsplit("/", 1)[1] for j in iris], secrets


@dataclass
class Run:
    claims: list[str] = field(default_factory=list)
    reports: list[str] = field(default_factory=list)
    errors: list[Any] = field(default_factory=list)
    abandoned: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def run_clients(urls: list[str], secrets: list[str], total: int, deadline_s: float = 150) -> Run:
    """20 runner clients claim and report until every job is done; client 0 abandons its first job."""
    run = Run()
    stop = threading.Event()

    def client(i: int) -> None:
        headers = bearer(secrets[i])
        rng = random.Random(i)
        finished = 0
        while not stop.is_set():
            claim_url = urls[i % len(urls)]
            status, body = http("POST", claim_url + "/jobs/claim", headers=headers)
            if status in (204, 503):
                time.sleep(0.02 + rng.random() * 0.05)
                continue
            if status != 200:
                run.errors.append(("claim", status, body))
                continue
            job, token = body["job"], body["claim_token"]
            with run.lock:
                run.claims.append(job)
                if i == 0 and not run.abandoned:
                    run.abandoned[job] = {"token": token, "url": claim_url}
                    continue  # this client "crashes" mid-job: no heartbeat, no result
            report_url = urls[(i + finished) % len(urls)]  # results may go to any replica
            finished += 1
            if finished % 10 == 0:
                status, beat = http("POST", f"{report_url}/jobs/{job}/heartbeat", body={"claim_token": token},
                                    headers=headers)
                if status != 200:
                    run.errors.append(("heartbeat", status, beat))
            status, receipt = http("POST", f"{report_url}/jobs/{job}/result", body=result_for(token, job),
                                   headers=headers)
            if status != 200 or receipt["already_recorded"]:
                run.errors.append(("result", status, receipt))
                continue
            with run.lock:
                run.reports.append(job)
                if len(run.reports) == total:
                    stop.set()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    stop.wait(deadline_s)
    stop.set()
    for thread in threads:
        thread.join(30)
    return run


def check_run(run: Run, jobs: list[str], late_url: str) -> None:
    assert run.errors == [], run.errors[:5]
    assert len(run.abandoned) == 1
    [(job, abandoned)] = run.abandoned.items()
    problems = check_exactly_once(run.claims, run.reports, jobs, abandoned={job: 1})
    assert problems == [], problems[:10]
    # the crashed client comes back: its lease ran out and another runner finished the job
    status, body = http("POST", f"{late_url}/jobs/{job}/result", body=result_for(abandoned["token"], job),
                        headers=bearer_for_job(run, job))
    assert status == 409, body
    assert "lease ran out" in body["detail"] or "done" in body["detail"]


def bearer_for_job(run: Run, job: str) -> dict[str, str]:
    return run.abandoned[job]["headers"]


def check_store(store: Store, jobs: list[str]) -> None:
    counts = {str(r["job"]).rsplit("/", 1)[1]: int(r["n"]) for r in store.select(EXECUTIONS_PER_JOB)}
    assert set(counts) == set(jobs) and set(counts.values()) == {1}
    assert int(store.select(DONE_JOBS)[0]["n"]) == len(jobs)


def test_one_threaded_service_on_the_embedded_store_20_clients_1000_jobs(tmp_path: Path) -> None:
    directory = tmp_path / "store"
    store = EmbeddedStore(directory)
    jobs, secrets = prepare(store, 1000)
    store.close()
    with ServeProcess("--store", str(directory), env=LEASE, threads=8) as server:
        assert http("GET", server.url + "/health")[1]["claim_mode"] == "index"
        run = run_clients([server.url], secrets, len(jobs))
        for job in run.abandoned:
            run.abandoned[job]["headers"] = bearer(secrets[0])
        check_run(run, jobs, server.url)
    store = EmbeddedStore(directory)
    check_store(store, jobs)
    store.close()


@pytest.mark.parametrize("coordination", ["protocol", "redis"])
def test_two_replicas_over_one_oxigraph_server_20_clients_500_jobs(coordination: str,
                                                                  request: pytest.FixtureRequest) -> None:
    env = dict(LEASE)
    if coordination == "redis":  # replicas lock jobs in Redis (kgsched.jobs.coordination)
        env["KGSCHED_COORDINATION_URL"] = request.getfixturevalue("redis_server").url
    with OxigraphServer() as oxigraph:
        store = RemoteStore.from_url(oxigraph.url)
        jobs, secrets = prepare(store, 500)
        endpoint = ("--endpoint", oxigraph.url)
        with ServeProcess(*endpoint, env=env, threads=8) as first, ServeProcess(*endpoint, env=env, threads=8) \
                as second:
            modes = {http("GET", url + "/health")[1]["claim_mode"] for url in (first.url, second.url)}
            assert modes == {"coordinated" if coordination == "redis" else "protocol"}
            urls = [first.url, second.url]
            run = run_clients(urls, secrets, len(jobs))
            [(job, abandoned)] = run.abandoned.items()
            abandoned["headers"] = bearer(secrets[0])
            other_replica = urls[1 - urls.index(abandoned["url"])]
            check_run(run, jobs, other_replica)
        check_store(store, jobs)
