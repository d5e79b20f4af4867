"""Helpers for the job-queue and service tests: the example federation loaded in milliseconds, apps,
tokens, runners, fake results, and the exactly-once checker the concurrency tests share."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from rdflib import URIRef

from conftest import ADMIN, ROOT, example_documents, register_examples
from kgsched.dev.oxigraph_server import free_port
from kgsched.dev.processes import stop_process
from kgsched.graph.store import EmbeddedStore, Store
from kgsched.registry.registration import load_ontology

FED = "https://example.org/fed/"
ADMIN_TOKEN = "test-admin-token-0123456789"
ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
GENEVA = URIRef(FED + "runner/geneva-batch")
PARIS = URIRef(FED + "runner/paris-cluster")
ALICE_LAPTOP = URIRef(FED + "runner/alice-laptop")
VOLUNTEER = URIRef(FED + "runner/garching-volunteer")
ALICE = URIRef(FED + "person/alice")
BOB = URIRef(FED + "person/bob")
CAROL = URIRef(FED + "person/carol")
DAVE = URIRef(FED + "person/dave")
ERIN = URIRef(FED + "person/erin")
UNIGE = URIRef(FED + "org/unige")
KGSCHED = str(Path(sys.executable).parent / "kgsched")


@functools.cache
def federation_dump() -> tuple[tuple[str, str], ...]:
    """(graph, N-Triples) of the ontology and the examples registered by their parties, built once."""
    store = EmbeddedStore(None)
    load_ontology(store)
    register_examples(store)
    return tuple((str(g), store.graph(g).serialize(format="nt")) for g in store.named_graphs())


def load_federation(store: Store) -> Store:
    """The same graphs as conftest's ``federation`` fixture, without re-running SHACL each test."""
    for graph, data in federation_dump():
        store.bulk_load(data, URIRef(graph), "application/n-triples")
    return store


@contextlib.contextmanager
def federation_app(store: Store, **config: Any) -> Iterator[Flask]:
    """A real Flask app over ``store`` loaded with the example federation (admin token, 30 s leases)."""
    from kgsched.service import close_app, create_app

    load_federation(store)
    app = create_app({"STORE_INSTANCE": store, "ADMIN_TOKEN": ADMIN_TOKEN,
                      "ADMIN_AGENT": FED + "admin", "LEASE_SECONDS": 30, **config})
    try:
        yield app
    finally:
        close_app(app)


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def result_for(claim_token: str, name: str = "x", **overrides: Any) -> dict[str, Any]:
    """A success report a runner would send for a job (product bytes named after ``name``)."""
    from kgsched.dev.workloads import fake_result

    return {"claim_token": claim_token, **fake_result(name), **overrides}


def check_exactly_once(claims: Iterable[str], reports: Iterable[str], jobs: Iterable[str],
                       abandoned: Mapping[str, int] | None = None) -> list[str]:
    """Problems with a run: a job claimed more often than it was abandoned + 1, a job reported other
    than once, a job never finished. Empty when every job was claimed and reported exactly once."""
    abandoned = abandoned or {}
    claimed, reported = Counter(claims), Counter(reports)
    problems = []
    for job in sorted(set(jobs)):
        if claimed[job] != 1 + abandoned.get(job, 0):
            problems.append(f"{job} claimed {claimed[job]} times")
        if reported[job] != 1:
            problems.append(f"{job} reported {reported[job]} times")
    extra = set(claimed) - set(jobs)
    problems += [f"{job} claimed but not queued" for job in sorted(extra)]
    return problems


# --------------------------------------------------------------------------------------------------
# A real `kgsched serve` process
# --------------------------------------------------------------------------------------------------

class ServeProcess:
    """``kgsched serve`` on a free port, stopped by its process id."""

    def __init__(self, *store_args: str, env: Mapping[str, str] | None = None, threads: int = 8) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = {**os.environ, "KGSCHED_ADMIN_TOKEN": ADMIN_TOKEN, "KGSCHED_ADMIN_AGENT": str(ADMIN),
                       **(env or {})}
        # a file, not a pipe: a pipe nobody reads fills up and stalls the server when it logs
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [KGSCHED, "serve", *store_args, "--port", str(self.port), "--threads", str(threads)],
            stdout=self.log, stderr=self.log, env=environment, cwd=ROOT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"kgsched serve exited: {self.output()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("kgsched serve did not become ready in 30 s")

    def output(self) -> str:
        """What the server logged so far (for failure messages)."""
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    def stop(self) -> None:
        stop_process(self.process, timeout=15)
        if not self.log.closed:
            self.log.close()

    def __enter__(self) -> ServeProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def http(method: str, url: str, *, body: Any = None, headers: Mapping[str, str] | None = None,
         timeout: float = 30) -> tuple[int, Any]:
    """(status, parsed JSON or None) of one request; errors are answers, not exceptions."""
    data = None
    all_headers = dict(headers or {})
    if body is not None:
        data = json.dumps(body).encode()
        all_headers.setdefault("Content-Type", "application/json")
    request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, json.loads(raw) if raw else None


def utc(seconds: float = 0) -> dt.datetime:
    return dt.datetime(2030, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=seconds)


def register_examples_over_http(url: str) -> None:
    """The example federation over HTTP, each part registered as its party (the administrator acting
    for each with ``?as=``, as each party would with its own token)."""
    import urllib.parse

    from kgsched.dev.parties import party_registrations

    for party, turtle in party_registrations(example_documents(), ADMIN):
        request = urllib.request.Request(f"{url}/registrations?as={urllib.parse.quote(str(party))}", data=turtle,
                                         method="POST", headers={**ADMIN_HEADERS, "Content-Type": "text/turtle"})
        with urllib.request.urlopen(request, timeout=60) as response:
            assert response.status == 201
