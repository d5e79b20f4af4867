"""Registration throughput, and what a large registration does to claims, beside pySHACL alone.

    python bench/registration_bench.py            # 100,000 triples; 1,000 small registrations, 20 clients
    python bench/registration_bench.py --quick    # a few seconds, for the smoke test

1. one registration of ~100,000 triples (runners, datasets, workflows; kgsched.dev.registrations) into an
   on-disk embedded store holding the example federation, in-process: triples/s, with the time of each
   phase (parse, validation, preconditions, write); the baseline is pySHACL alone validating the same
   data (with the same context), measured in the same run;
2. 1,000 small registrations (one runner, dataset and workflow each, 39 triples) sent by 20 clients, each
   its own registrant, to one ``kgsched serve`` process: registrations/s; baseline: pySHACL alone
   validating the same bodies one after another;
3. a runner claiming jobs, one claim after another, through the same server while the 100,000-triple
   registration is sent to it: the claims' p50/p99/max latency during the registration, beside the
   same claims on the idle server; meanwhile other registrants register small bodies (their latency).

Targets (issue 15, this 2-core machine): 100,000 triples in ≤ 2 s; ≥ 100 small registrations/s with 20
clients; a claim's p99 ≤ 0.5 s during the large registration. The bench prints; it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from rdflib import URIRef  # noqa: E402

from kgsched.dev.registrations import TRIPLES_PER_UNIT, registration_body  # noqa: E402
from kgsched.dev.workloads import LIGHT_CURVE_RUNNERS, queue_light_curves  # noqa: E402
from kgsched.graph.store import EmbeddedStore  # noqa: E402
from kgsched.jobs.queue import JobQueue  # noqa: E402
from kgsched.registry.registration import Registry, validate_graph  # noqa: E402
from kgsched.registry.tokens import TokenStore  # noqa: E402
from service_support import ADMIN_TOKEN, FED, ServeProcess, bearer, http, load_federation  # noqa: E402

ADMIN = URIRef(FED + "admin")
ALICE = URIRef(FED + "person/alice")
SERVER_ENV = {"KGSCHED_MAX_CONTENT_LENGTH": "100000000", "KGSCHED_LEASE_SECONDS": "3600"}


def register_http(url: str, body: bytes, registrant: str) -> int:
    request = urllib.request.Request(
        f"{url}/registrations?{urllib.parse.urlencode({'as': registrant})}", data=body, method="POST",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "text/turtle"})
    try:
        with urllib.request.urlopen(request, timeout=900) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        exc.read()
        return exc.code


def large(triples: int) -> None:
    units = triples // TRIPLES_PER_UNIT + 1
    body = registration_body(units, tag="large")
    with tempfile.TemporaryDirectory(prefix="kgsched-bench-") as tmp:
        store = load_federation(EmbeddedStore(Path(tmp) / "store"))
        registry = Registry(store)
        mark = time.perf_counter()
        parsed = registry.parse([("body", body)])
        parse_seconds = time.perf_counter() - mark
        mark = time.perf_counter()
        prepared = registry.prepare([("body", body)], ALICE)
        prepare_seconds = time.perf_counter() - mark
        mark = time.perf_counter()
        with registry.lock:
            registry.check_preconditions(prepared)
        preconditions_seconds = time.perf_counter() - mark
        mark = time.perf_counter()
        registry.write_checked(prepared)
        write_seconds = time.perf_counter() - mark
        total = prepare_seconds + preconditions_seconds + write_seconds
        count = len(prepared.data)
        # the baseline: pySHACL alone on the same data and context
        context = registry.context_for(parsed)
        mark = time.perf_counter()
        outcome = validate_graph(parsed, context)
        shacl_seconds = time.perf_counter() - mark
        assert outcome.conforms
        store.close()
    print(f"large registration : {count:,} triples in {total:.2f} s = {count / total:,.0f} triples/s "
          f"(parse and validate {prepare_seconds:.2f} s, of which parsing {parse_seconds:.2f} s; preconditions "
          f"{preconditions_seconds:.2f} s; write {write_seconds:.2f} s)")
    print(f"  pySHACL alone    : {count:,} triples validated in {shacl_seconds:.2f} s = "
          f"{count / shacl_seconds:,.0f} triples/s; ratio registration/pySHACL {shacl_seconds / total:.2f}x; "
          f"target ≤ 2 s: {'met' if total <= 2 else 'NOT met'}")


def small(registrations: int, clients: int) -> None:
    # each registrant registers its own runners (docs/authority.md), describing itself the first time
    bodies = [registration_body(1, tag=f"small{i}", owner=f"{FED}bench/registrant-{i % clients}", describe_owner=True)
              for i in range(registrations)]
    with tempfile.TemporaryDirectory(prefix="kgsched-bench-") as tmp:
        directory = Path(tmp) / "store"
        store = load_federation(EmbeddedStore(directory))
        registry = Registry(store)
        contexts = [registry.context_for(registry.parse([("b", body)])) for body in bodies[:100]]
        parsed = [registry.parse([("b", body)]) for body in bodies[:100]]
        mark = time.perf_counter()
        for data, context in zip(parsed, contexts, strict=True):
            validate_graph(data, context)
        shacl_rate = len(parsed) / (time.perf_counter() - mark)
        store.close()
        with ServeProcess("--store", str(directory), env=SERVER_ENV, threads=max(8, clients)) as server:
            left = list(enumerate(bodies))
            lock = threading.Lock()
            statuses: list[int] = []

            def client(index: int) -> None:
                while True:
                    with lock:
                        if not left:
                            return
                        number, body = left.pop()
                    status = register_http(server.url, body, f"{FED}bench/registrant-{number % clients}")
                    with lock:
                        statuses.append(status)

            threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            seconds = time.perf_counter() - started
    accepted = statuses.count(201)
    rate = accepted / seconds
    print(f"small registrations: {accepted} of {registrations} accepted from {clients} clients in {seconds:.2f} s = "
          f"{rate:.0f} registrations/s (target ≥ 100: {'met' if rate >= 100 else 'NOT met'})")
    print(f"  pySHACL alone    : {shacl_rate:.0f} validations/s of the same bodies (one thread); ratio "
          f"{rate / shacl_rate:.2f}x")


def claims_during_large(triples: int, jobs: int) -> None:
    body = registration_body(triples // TRIPLES_PER_UNIT + 1, tag="during")
    with tempfile.TemporaryDirectory(prefix="kgsched-bench-") as tmp:
        directory = Path(tmp) / "store"
        store = load_federation(EmbeddedStore(directory))
        queue_light_curves(store, JobQueue(store), jobs, tag="bench-during")
        secret = TokenStore(store, ADMIN).issue(LIGHT_CURVE_RUNNERS[0], ADMIN).secret
        store.close()
        with ServeProcess("--store", str(directory), env=SERVER_ENV) as server:
            def claim() -> float:
                mark = time.perf_counter()
                status, _ = http("POST", server.url + "/jobs/claim", headers=bearer(secret), timeout=600)
                assert status in (200, 204, 503), status
                return time.perf_counter() - mark

            idle = [claim() for _ in range(20)]
            done = threading.Event()
            outcome: dict[str, float | int] = {}

            def big() -> None:
                mark = time.perf_counter()
                outcome["status"] = register_http(server.url, body, str(ALICE))
                outcome["seconds"] = time.perf_counter() - mark
                done.set()

            others: list[float] = []

            def other_registrants() -> None:
                number = 0
                while not done.is_set():
                    mark = time.perf_counter()
                    other = f"{FED}bench/other-{number}"
                    status = register_http(server.url, registration_body(1, tag=f"other{number}", owner=other,
                                                                         describe_owner=True), other)
                    assert status == 201, status
                    others.append(time.perf_counter() - mark)
                    number += 1
                    done.wait(0.2)

            thread = threading.Thread(target=big)
            thread.start()
            side = threading.Thread(target=other_registrants)
            side.start()
            during = []
            while not done.is_set():
                during.append(claim())
            thread.join()
            side.join()
    during.sort()
    p99 = during[min(len(during) - 1, int(len(during) * 0.99))]
    print(f"claims during a {triples:,}-triple registration ({outcome['seconds']:.1f} s, status {outcome['status']}): "
          f"{len(during)} claims, p50 {statistics.median(during) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
          f"max {during[-1] * 1000:.0f} ms; idle server p50 {statistics.median(idle) * 1000:.0f} ms "
          f"(target p99 ≤ 500 ms: {'met' if p99 <= 0.5 else 'NOT met'})")
    if others:
        others.sort()
        print(f"  meanwhile        : {len(others)} small registrations by other registrants, p50 "
              f"{statistics.median(others) * 1000:.0f} ms, max {others[-1] * 1000:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--triples", type=int, default=100_000)
    parser.add_argument("--registrations", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for the smoke test")
    parser.add_argument("--only", choices=["large", "small", "claims"], default=None, help="run one part")
    args = parser.parse_args()
    if args.quick:
        args.triples, args.registrations, args.clients, args.jobs = 2000, 40, 4, 200
    print(f"kgsched registration bench: {os.cpu_count()} CPUs")
    if args.only in (None, "large"):
        large(args.triples)
    if args.only in (None, "small"):
        small(args.registrations, args.clients)
    if args.only in (None, "claims"):
        claims_during_large(args.triples, args.jobs)


if __name__ == "__main__":
    main()
