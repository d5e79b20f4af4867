"""Claims per second through the job service, and what the naive single-update claim does instead.

    python bench/claim_bench.py                 # 1,000 jobs embedded, 500 remote, 20 clients
    python bench/claim_bench.py --quick         # a few seconds, for the smoke test

Set-ups (each on fresh stores in a temporary directory):

1. one ``kgsched serve`` process (waitress threads) on the embedded store (the in-memory queue index,
   kgsched.jobs.local_queue), 20 runner clients over HTTP: they claim every job, then report each;
2. one, then two ``kgsched serve`` replicas over one Oxigraph server, 20 runner clients spread over
   them, the same way: arbitrating by the claim protocol, then locking jobs in Redis
   (``KGSCHED_COORDINATION_URL``, kgsched.jobs.coordination; a redis-server started here);
3. the queue in-process (no HTTP, one thread), with the index and with the protocol;
4. the naive claim the issue measured — one ``DELETE {…} INSERT {…} WHERE {… LIMIT 1}`` per claim —
   from 20 threads without a lock, on the embedded store and on the Oxigraph server: how many jobs it
   hands out twice.

Claims per second are also given as a ratio to a baseline measured in the same run on the same
server (20 clients calling ``GET /health``), so figures from different machines compare. Over the
Oxigraph server, the CPU time each process (the SPARQL server, Redis, the clients, each replica)
spent per ``GET /health`` and per claim is printed too: on a machine whose cores all these share,
the claims' ratio to ``GET /health`` can be no better than the ratio of those totals. Nothing here
is asserted on time; the tests assert exactly-once, this prints speed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from rdflib import Literal, URIRef  # noqa: E402

from kgsched.dev.oxigraph_server import OxigraphServer  # noqa: E402
from kgsched.dev.redis_server import RedisServer  # noqa: E402
from kgsched.dev.workloads import LIGHT_CURVE_RUNNERS, queue_light_curves  # noqa: E402
from kgsched.graph.binding import check_iri  # noqa: E402
from kgsched.graph.store import EmbeddedStore, RemoteStore, Store  # noqa: E402
from kgsched.jobs.local_queue import LocalJobQueue  # noqa: E402
from kgsched.jobs.queue import JobQueue  # noqa: E402
from kgsched.namespaces import JOBS_GRAPH  # noqa: E402
from kgsched.registry.tokens import TokenStore  # noqa: E402
from service_support import ServeProcess, bearer, http, load_federation, result_for  # noqa: E402

ADMIN = URIRef("https://example.org/fed/admin")
LONG_LEASE = {"KGSCHED_LEASE_SECONDS": "3600"}  # the bench claims everything first, then reports


def prepare(store: Store, jobs: int, clients: int) -> list[str]:
    load_federation(store)
    queue_light_curves(store, JobQueue(store), jobs, tag=f"bench-{uuid.uuid4().hex}")
    tokens = TokenStore(store, ADMIN)
    return [tokens.issue(LIGHT_CURVE_RUNNERS[i % 3], ADMIN).secret for i in range(clients)]


def prepare_more(store: Store, jobs: int, clients: int) -> list[str]:
    """More jobs on a store already holding the federation (the second set-up over the same server)."""
    queue_light_curves(store, JobQueue(store), jobs, tag=f"bench-{uuid.uuid4().hex}")
    tokens = TokenStore(store, ADMIN)
    return [tokens.issue(LIGHT_CURVE_RUNNERS[i % 3], ADMIN).secret for i in range(clients)]


def hammer(urls: list[str], clients: int, work: Callable[[str, int], bool]) -> float:
    """``clients`` threads call ``work(url, i)`` until it returns False; returns the wall time."""
    def client(i: int) -> None:
        while work(urls[i % len(urls)], i):
            pass

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def baseline(urls: list[str], clients: int, requests: int) -> float:
    """Trivial requests per second (GET /health) on the same servers, with the same clients."""
    left = [requests]
    lock = threading.Lock()

    def work(url: str, _i: int) -> bool:
        with lock:
            if left[0] <= 0:
                return False
            left[0] -= 1
        http("GET", url + "/health")
        return True

    return requests / hammer(urls, clients, work)


def claim_all(urls: list[str], secrets: list[str], clients: int
              ) -> tuple[float, Counter[str], dict[int, list[tuple[str, str]]]]:
    """Every client claims until the queue answers 204; returns (seconds, claims per job, each client's
    (job, claim token) pairs)."""
    claimed: Counter[str] = Counter()
    held: dict[int, list[tuple[str, str]]] = {i: [] for i in range(clients)}
    lock = threading.Lock()

    def work(url: str, i: int) -> bool:
        status, body = http("POST", url + "/jobs/claim", headers=bearer(secrets[i]))
        if status == 503:
            return True
        if status != 200:
            return False
        with lock:
            claimed[body["job"]] += 1
            held[i].append((body["job"], body["claim_token"]))
        return True

    return hammer(urls, clients, work), claimed, held


def report_all(urls: list[str], secrets: list[str], clients: int, held: dict[int, list[tuple[str, str]]]
               ) -> tuple[float, Counter[str], int]:
    """Every client reports a success for each job it claimed (to the replica it claimed from); returns
    (seconds, results recorded per job, refusals)."""
    recorded: Counter[str] = Counter()
    refused = [0]
    reasons: Counter[str] = Counter()
    lock = threading.Lock()

    def work(url: str, i: int) -> bool:
        if not held[i]:
            return False
        job, token = held[i].pop()
        status, body = http("POST", f"{url}/jobs/{job}/result", body=result_for(token, job), headers=bearer(secrets[i]))
        with lock:
            if status == 200 and not body["already_recorded"]:
                recorded[job] += 1
            elif status != 200:
                refused[0] += 1
                reasons[f"{status} {str(body.get('detail') if isinstance(body, dict) else body)[:80]}"] += 1
        return True

    seconds = hammer(urls, clients, work)
    if reasons:
        print("  refusals:", dict(reasons.most_common(3)))
    return seconds, recorded, refused[0]


class CpuMeter:
    """CPU seconds (user + system) spent by each process of a set-up: where a request's cost goes."""

    def __init__(self, processes: dict[str, int]) -> None:
        import psutil

        self.processes = {name: psutil.Process(pid) for name, pid in processes.items()}

    def read(self) -> dict[str, float]:
        return {name: sum(p.cpu_times()[:2]) for name, p in self.processes.items()}

    @staticmethod
    def per_request(before: dict[str, float], after: dict[str, float], requests: int) -> str:
        parts = {name: 1000 * (after[name] - before[name]) / max(1, requests) for name in before}
        return ", ".join(f"{name} {ms:.2f}" for name, ms in parts.items()) + f"; total {sum(parts.values()):.2f}"


def service_run(label: str, urls: list[str], secrets: list[str], jobs: int, clients: int,
                meter: CpuMeter | None = None) -> dict[str, float]:
    health_requests = max(200, jobs // 2)
    cpu = [meter.read()] if meter else []
    reference = baseline(urls, clients, health_requests)
    cpu += [meter.read()] if meter else []
    seconds, claimed, held = claim_all(urls, secrets, clients)
    cpu += [meter.read()] if meter else []
    rate = sum(claimed.values()) / seconds
    twice = sum(1 for n in claimed.values() if n > 1)
    report_seconds, recorded, refused = report_all(urls, secrets, clients, held)
    report_rate = sum(recorded.values()) / report_seconds
    recorded_twice = sum(1 for n in recorded.values() if n > 1)
    counters: Counter[str] = Counter()
    modes = set()
    for url in urls:
        health = http("GET", url + "/health")[1]
        counters.update(health["queue"])
        modes.add(health.get("claim_mode"))
    print(f"{label}: {sum(claimed.values())} claims of {jobs} jobs in {seconds:.2f} s = {rate:.0f} claims/s; "
          f"baseline GET /health {reference:.0f} req/s; ratio {rate / reference:.3f}; "
          f"jobs claimed twice: {twice}; bids {counters['bids']}, withdrawn {counters['withdrawn']}, "
          f"contention answers {counters['contention']}; claim mode {'/'.join(sorted(map(str, modes)))}")
    print(f"{label}: {sum(recorded.values())} results recorded in {report_seconds:.2f} s = {report_rate:.0f} "
          f"reports/s; ratio {report_rate / reference:.3f}; jobs recorded twice: {recorded_twice}; "
          f"refused: {refused}")
    if meter:
        print(f"{label}: CPU ms per GET /health: {CpuMeter.per_request(cpu[0], cpu[1], health_requests)}")
        print(f"{label}: CPU ms per claim: {CpuMeter.per_request(cpu[1], cpu[2], sum(claimed.values()))}")
    return {"claims": rate, "reports": report_rate, "baseline": reference}


NAIVE = """PREFIX ks: <https://w3id.org/kgsched#>
DELETE {{ GRAPH <{graph}> {{ ?job ks:state ks:Queued }} }}
INSERT {{ GRAPH <{graph}> {{ ?job ks:state ks:Claimed ; ks:naiveClaim ?token }} }}
WHERE {{
  # @values
  {{ SELECT ?job WHERE {{ GRAPH <{graph}> {{ ?job ks:state ks:Queued }} }} LIMIT 1 }}
}}"""


def naive_run(label: str, store: Store, jobs: int, threads: int) -> None:
    """The single-update claim, from ``threads`` threads and no lock; counts jobs handed out twice."""
    from kgsched.graph.binding import bind

    load_federation(store)
    queue_light_curves(store, JobQueue(store), jobs, tag=f"naive-{uuid.uuid4().hex}")
    template = NAIVE.format(graph=check_iri(JOBS_GRAPH))
    claims = [0]
    lock = threading.Lock()
    per_thread = (jobs * 3) // (2 * threads)  # enough attempts to drain the queue

    def work(_url: str, _i: int) -> bool:
        with lock:
            if claims[0] >= per_thread * threads:
                return False
            claims[0] += 1
        store.update(bind(template, [{"token": Literal(uuid.uuid4().hex)}]))
        return True

    seconds = hammer(["-"] * threads, threads, work)
    rows = store.select("PREFIX ks: <https://w3id.org/kgsched#> SELECT ?job (COUNT(?t) AS ?n) "
                        "WHERE { GRAPH ?g { ?job ks:naiveClaim ?t } } GROUP BY ?job", [{"g": JOBS_GRAPH}])
    handed = sum(int(r["n"]) for r in rows)
    twice = sum(1 for r in rows if int(r["n"]) > 1)
    print(f"{label}: {handed} claims handed out for {len(rows)} of {jobs} jobs in {seconds:.2f} s "
          f"({handed / seconds:.0f} claims/s); jobs handed out more than once: {twice}")


def in_process_run(jobs: int, kind: type[JobQueue], label: str) -> None:
    """The queue alone (no HTTP, one thread): claim every job, then report every claim."""
    from kgsched.dev.workloads import fake_result
    from kgsched.provenance.recording import ResultReport

    with tempfile.TemporaryDirectory(prefix="kgsched-bench-") as tmp:
        store = EmbeddedStore(Path(tmp) / "store")
        load_federation(store)
        queue = kind(store)
        queue_light_curves(store, queue, jobs)
        started = time.perf_counter()
        grants = []
        while (grant := queue.claim(LIGHT_CURVE_RUNNERS[len(grants) % 3])) is not None:
            grants.append(grant)
        seconds = time.perf_counter() - started
        started = time.perf_counter()
        for grant in grants:
            placed = grant.claim
            queue.report(placed.job, placed.runner, placed.secret, ResultReport.from_json(fake_result(str(placed.job))))
        report_seconds = time.perf_counter() - started
        twice = len(grants) - len({g.claim.job for g in grants})
        store.close()
    print(f"in-process queue, {label} (embedded, 1 thread, no HTTP): {len(grants)} claims in {seconds:.2f} s = "
          f"{len(grants) / seconds:.0f} claims/s; {len(grants) / report_seconds:.0f} reports/s; "
          f"jobs claimed twice: {twice}")


def pid(process: Any) -> int:
    assert process is not None, "the server was not started"
    return int(process.pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--jobs-embedded", type=int, default=1000)
    parser.add_argument("--jobs-remote", type=int, default=500)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--naive-jobs", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for the smoke test")
    args = parser.parse_args()
    if args.quick:
        args.jobs_embedded, args.jobs_remote, args.clients, args.naive_jobs = 60, 40, 6, 100
    print(f"kgsched claim bench: {args.clients} clients, {os.cpu_count()} CPUs")

    with tempfile.TemporaryDirectory(prefix="kgsched-bench-") as tmp:
        directory = Path(tmp) / "store"
        store = EmbeddedStore(directory)
        secrets = prepare(store, args.jobs_embedded, args.clients)
        store.close()
        with ServeProcess("--store", str(directory), env=LONG_LEASE) as server:
            service_run("embedded, 1 serve process ", [server.url], secrets, args.jobs_embedded, args.clients)

    # The Oxigraph server keeps a thread per request for its query timeout (--timeout-s): at these
    # request rates a 60 s timeout piles up ~16,000 threads and the server dies (vm.max_map_count).
    with OxigraphServer(timeout_s=10) as oxigraph, RedisServer() as redis:
        endpoint = ("--endpoint", oxigraph.url)
        store = RemoteStore.from_url(oxigraph.url)
        load_federation(store)
        for mode, env in (("protocol", LONG_LEASE), ("redis", {**LONG_LEASE, "KGSCHED_COORDINATION_URL": redis.url})):
            suffix = "" if mode == "protocol" else "+Redis"
            secrets = prepare_more(store, args.jobs_remote, args.clients)
            shared = {"oxigraph": pid(oxigraph.process), "redis": pid(redis.process), "clients": os.getpid()}
            with ServeProcess(*endpoint, env=env) as only:
                one = service_run(f"remote, 1 replica/Oxigraph{suffix} ", [only.url], secrets, args.jobs_remote,
                                  args.clients, CpuMeter({**shared, "replica": pid(only.process)}))
            secrets = prepare_more(store, args.jobs_remote, args.clients)
            with ServeProcess(*endpoint, env=env) as first, ServeProcess(*endpoint, env=env) as second:
                two = service_run(f"remote, 2 replicas/Oxigraph{suffix}", [first.url, second.url], secrets,
                                  args.jobs_remote, args.clients,
                                  CpuMeter({**shared, "replica 1": pid(first.process),
                                            "replica 2": pid(second.process)}))
            print(f"two replicas against one over the same Oxigraph server ({mode}): claims "
                  f"x{two['claims'] / one['claims']:.2f}, reports x{two['reports'] / one['reports']:.2f}")
            if oxigraph.process is not None and oxigraph.process.poll() is not None:  # say why, then stop
                raise SystemExit(f"the Oxigraph server died: {oxigraph.process.stderr.read().decode()[-3000:]}")

    in_process_run(args.jobs_embedded, LocalJobQueue, "index")
    in_process_run(args.jobs_embedded, JobQueue, "protocol")
    with tempfile.TemporaryDirectory(prefix="kgsched-bench-") as tmp:
        store = EmbeddedStore(Path(tmp) / "store")
        naive_run(f"naive single-update claim, embedded store, {args.clients} threads, no lock", store,
                  args.naive_jobs, args.clients)
        store.close()
    with OxigraphServer() as oxigraph:
        naive_run(f"naive single-update claim, Oxigraph server, {args.clients} threads", RemoteStore.from_url(
            oxigraph.url), args.naive_jobs, args.clients)


if __name__ == "__main__":
    main()
