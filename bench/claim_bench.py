"""Claims per second through the job service, and what the naive single-update claim does instead.

    python bench/claim_bench.py                 # 1,000 jobs embedded, 500 remote, 20 clients
    python bench/claim_bench.py --quick         # a few seconds, for the smoke test

Set-ups (each on fresh stores in a temporary directory):

1. one ``kgsched serve`` process (waitress threads) on the embedded store, 20 runner clients over HTTP;
2. two ``kgsched serve`` replicas over one Oxigraph server, 20 runner clients spread over both;
3. for reference, the queue in-process (no HTTP), one thread;
4. the naive claim the issue measured — one ``DELETE {…} INSERT {…} WHERE {… LIMIT 1}`` per claim —
   from 20 threads without a lock, on the embedded store and on the Oxigraph server: how many jobs it
   hands out twice.

Claims per second are also given as a ratio to a baseline measured in the same run on the same
server (20 clients calling ``GET /health``), so figures from different machines compare. Nothing here
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from rdflib import Literal, URIRef  # noqa: E402

from kgsched.dev.oxigraph_server import OxigraphServer  # noqa: E402
from kgsched.dev.workloads import LIGHT_CURVE_RUNNERS, queue_light_curves  # noqa: E402
from kgsched.graph.binding import check_iri  # noqa: E402
from kgsched.graph.store import EmbeddedStore, RemoteStore, Store  # noqa: E402
from kgsched.jobs.queue import JobQueue  # noqa: E402
from kgsched.namespaces import JOBS_GRAPH  # noqa: E402
from kgsched.registry.tokens import TokenStore  # noqa: E402
from service_support import ServeProcess, bearer, http, load_federation  # noqa: E402

ADMIN = URIRef("https://example.org/fed/admin")
LONG_LEASE = {"KGSCHED_LEASE_SECONDS": "3600"}  # the bench claims and never reports


def prepare(store: Store, jobs: int, clients: int) -> list[str]:
    load_federation(store)
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


def claim_all(urls: list[str], secrets: list[str], clients: int) -> tuple[float, Counter[str]]:
    """Every client claims until the queue answers 204; returns (seconds, claims per job)."""
    claimed: Counter[str] = Counter()
    lock = threading.Lock()

    def work(url: str, i: int) -> bool:
        status, body = http("POST", url + "/jobs/claim", headers=bearer(secrets[i]))
        if status == 503:
            return True
        if status != 200:
            return False
        with lock:
            claimed[body["job"]] += 1
        return True

    return hammer(urls, clients, work), claimed


def service_run(label: str, urls: list[str], secrets: list[str], jobs: int, clients: int) -> None:
    reference = baseline(urls, clients, max(200, jobs // 2))
    seconds, claimed = claim_all(urls, secrets, clients)
    rate = sum(claimed.values()) / seconds
    twice = sum(1 for n in claimed.values() if n > 1)
    counters: Counter[str] = Counter()
    for url in urls:
        counters.update(http("GET", url + "/health")[1]["queue"])
    print(f"{label}: {sum(claimed.values())} claims of {jobs} jobs in {seconds:.2f} s = {rate:.0f} claims/s; "
          f"baseline GET /health {reference:.0f} req/s; ratio {rate / reference:.3f}; "
          f"jobs claimed twice: {twice}; bids {counters['bids']}, withdrawn {counters['withdrawn']}, "
          f"contention answers {counters['contention']}")


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


def in_process_run(jobs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="kgsched-bench-") as tmp:
        store = EmbeddedStore(Path(tmp) / "store")
        load_federation(store)
        queue = JobQueue(store)
        queue_light_curves(store, queue, jobs)
        started = time.perf_counter()
        count = 0
        while queue.claim(LIGHT_CURVE_RUNNERS[count % 3]) is not None:
            count += 1
        seconds = time.perf_counter() - started
        store.close()
    print(f"in-process queue (embedded, 1 thread, no HTTP): {count} claims in {seconds:.2f} s = "
          f"{count / seconds:.0f} claims/s")


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

    with OxigraphServer() as oxigraph:
        store = RemoteStore.from_url(oxigraph.url)
        secrets = prepare(store, args.jobs_remote, args.clients)
        endpoint = ("--endpoint", oxigraph.url)
        with ServeProcess(*endpoint, env=LONG_LEASE) as first, ServeProcess(*endpoint, env=LONG_LEASE) as second:
            service_run("remote, 2 replicas/Oxigraph", [first.url, second.url], secrets, args.jobs_remote,
                        args.clients)

    in_process_run(args.jobs_embedded)
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
