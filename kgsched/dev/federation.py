"""A whole federation on one machine, as real processes: the service on an embedded store and runner
agents at two sites. ``kgsched demo`` drives it, and so does the end-to-end test.

Everything talks to the service over HTTP exactly as separate machines would; the class only starts
and stops processes and wraps the REST calls the demo makes.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rdflib import URIRef

from kgsched.dev.oxigraph_server import free_port
from kgsched.dev.parties import party_registrations
from kgsched.dev.processes import stop_process
from kgsched.graph import queries
from kgsched.graph.binding import bind
from kgsched.resources import examples_dir
from kgsched.runner.agent import ServiceClient, ServiceError

#: The example federation, packaged with kgsched (kgsched/data/examples), so the demo runs from any directory.
EXAMPLES = examples_dir()
FED = "https://example.org/fed/"
ADMIN_REGISTRANT = FED + "admin"
BASE_FILES = ("people.ttl", "sites.ttl", "datasets.ttl", "workflows.ttl", "verifications.ttl")
#: The three runners the demo starts, at two sites: Geneva (two) and Paris (one).
DEMO_RUNNERS = ("geneva-batch", "alice-laptop", "paris-cluster")
#: What the demo's runner owners allow (kgsched.runner.policy): the example workflows' module, and
#: ``python -m`` of it for the command-line periodogram. Trusted verifiers come from runners.ttl.
DEMO_POLICY: tuple[str, ...] = ("--allow-module", "kgsched_examples", "--allow-executable", "python",
                                 "--allow-notebook", "notebooks")


@dataclass
class Federation:
    workdir: Path
    examples: Path = EXAMPLES
    service_env: dict[str, str] = field(default_factory=dict)
    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    port: int = field(default_factory=free_port)
    service: subprocess.Popen[bytes] | None = None
    runners: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin(self) -> ServiceClient:
        return ServiceClient(self.url, self.admin_token)

    # -- processes -------------------------------------------------------------------------------
    def start_service(self, lease_seconds: float | None = None) -> None:
        env = dict(os.environ, KGSCHED_ADMIN_TOKEN=self.admin_token, **self.service_env)
        if lease_seconds is not None:
            env["KGSCHED_LEASE_SECONDS"] = str(lease_seconds)
        log = open(self.workdir / "service.log", "wb")  # noqa: SIM115 - closed in stop()
        self.service = subprocess.Popen(
            [sys.executable, "-m", "kgsched", "serve", "--store", str(self.workdir / "store"),
             "--port", str(self.port)], stdout=log, stderr=subprocess.STDOUT, env=env)
        self._logs = [log]
        self._wait_for(f"{self.url}/openapi.json", "the service")

    def start_runner(self, name: str, *, extra_env: dict[str, str] | None = None, storage: str | None = None,
                     once: bool = False, listen: str | None = None,
                     policy: Sequence[str] = DEMO_POLICY, extra_args: Sequence[str] = ()) -> subprocess.Popen[bytes]:
        """Start ``kgsched runner`` for a runner of examples/runners.ttl; ``policy`` are its policy options
        (``--allow-module``, ``--allow-executable``, ``--trust-verifier``, ``--policy``)."""
        args = [sys.executable, "-m", "kgsched", "runner", "--server", self.url, "--token", self.admin_token,
                "--config", str(self.examples / "runners.ttl"), "--runner", FED + "runner/" + name,
                "--storage", str(self.workdir / (storage or f"products-{name}")), "--data-dir", str(self.examples),
                "--workflow-path", str(self.examples / "workflows"), "--poll", "0.2", "--grace", "5"]
        args += list(policy) + list(extra_args)
        if once:
            args.append("--once")
        if listen:
            args += ["--listen", listen]
        log = open(self.workdir / f"runner-{name}.log", "wb")  # noqa: SIM115 - closed in stop()
        self._logs.append(log)
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                   env=dict(os.environ, **(extra_env or {})))
        self.runners[name] = process
        self._wait_until(lambda: self.runner_registered(name), f"runner {name} to register")
        return process

    def runner_registered(self, name: str) -> bool:
        rows = self.named("runner-site", [{"r": URIRef(FED + "runner/" + name)}])
        process = self.runners.get(name)
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"runner {name} exited: {(self.workdir / f'runner-{name}.log').read_text()[-2000:]}")
        return bool(rows)

    def stop_runner(self, name: str, sig: int = signal.SIGTERM) -> None:
        stop_process(self.runners.pop(name), timeout=20, sig=sig)

    def stop(self) -> None:
        for name in list(self.runners):
            self.stop_runner(name)
        stop_process(self.service, timeout=20)
        for log in getattr(self, "_logs", []):
            log.close()

    def __enter__(self) -> Federation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _wait_for(self, url: str, what: str, timeout: float = 30) -> None:
        def ready() -> bool:
            if self.service is not None and self.service.poll() is not None:
                raise RuntimeError(f"{what} exited: {(self.workdir / 'service.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2):
                    return True
            except OSError:
                return False

        self._wait_until(ready, what, timeout)

    @staticmethod
    def _wait_until(condition: Any, what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.1)
        raise TimeoutError(f"waited {timeout:.0f} s for {what}")

    # -- the REST calls the demo makes -----------------------------------------------------------
    def register_base(self) -> list[dict[str, Any]]:
        """People, sites, datasets, workflows and verifications, each registered as the party entitled to
        state it (the administrator acting for each, as each would with its own token): people describe
        themselves, the administrator the sites, datasets and workflows, Carol her verifications."""
        documents = [(name, (self.examples / name).read_bytes()) for name in BASE_FILES]
        return [self.admin.register(turtle, as_registrant=str(party))
                for party, turtle in party_registrations(documents)]

    def declare_storage(self, name: str, site: str, *, directory: str | None = None, endpoint: str | None = None,
                        bucket: str | None = None, prefix: str = "") -> None:
        """The administrator (who registers the sites) declares a site's storage ``storage/<name>`` a shared
        directory or an S3 bucket, replacing its description; runners that ks:usesStorage it write there."""
        from rdflib import Graph, Literal
        from rdflib.namespace import RDF, XSD

        from kgsched.namespaces import KS

        storage = URIRef(FED + "storage/" + name)
        graph = Graph()
        graph.add((storage, RDF.type, KS.Storage))
        graph.add((storage, KS.atSite, URIRef(FED + "site/" + site)))
        graph.add((storage, KS.layer, Literal("disk")))
        if directory is not None:
            graph.add((storage, KS.directory, Literal(directory)))
        if endpoint is not None:
            graph.add((storage, KS.s3Endpoint, Literal(endpoint, datatype=XSD.anyURI)))
            graph.add((storage, KS.bucket, Literal(bucket)))
            graph.add((storage, KS.keyPrefix, Literal(prefix)))
        self.admin.register(graph.serialize(format="turtle").encode(), as_registrant=ADMIN_REGISTRANT)

    def deregister_runner_owner(self, owner: str) -> dict[str, Any]:
        """The owner withdraws its registration (its runners with it): they have left the federation."""
        return self.admin.call("DELETE", "/registrations", query={"as": owner})[1]

    def token_for(self, agent: str) -> str:
        return self.admin.issue_token(agent, "demo")

    def submit(self, token: str, request: dict[str, Any]) -> dict[str, Any]:
        status, body = ServiceClient(self.url, token).call("POST", "/plans", request)
        return body

    def jobs(self, ids: list[str]) -> list[dict[str, Any]]:
        return [self.admin.call("GET", f"/jobs/{job}")[1] for job in ids]

    def wait_for_jobs(self, ids: list[str], timeout: float = 120, progress: Any = None) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            states = self.jobs(ids)
            if progress is not None:
                progress(states)
            if all(job["state"] in ("done", "failed") for job in states):
                return states
            if time.monotonic() > deadline:
                raise TimeoutError(f"jobs still running after {timeout:.0f} s: {states}")
            time.sleep(0.2)

    def select(self, query: str, values: Any = None) -> list[dict[str, str]]:
        """A SELECT at the public endpoint; values are bound client-side as a checked VALUES block."""
        text = bind(query, values)
        request = urllib.request.Request(f"{self.url}/sparql", data=text.encode(), method="POST",
                                         headers={"Content-Type": "application/sparql-query",
                                                  "Accept": "application/sparql-results+json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            result = json.load(response)
        return [{k: v["value"] for k, v in row.items()} for row in result["results"]["bindings"]]

    def named(self, name: str, values: Any = None) -> list[dict[str, str]]:
        return self.select(queries.get(name).text, values)

    def product_of(self, expression: str) -> dict[str, str] | None:
        rows = self.named("cached-products", {"expression": [URIRef(expression)]})
        return rows[0] if rows else None

    def fetch(self, location: str) -> bytes:
        with urllib.request.urlopen(location, timeout=30) as response:
            return response.read()

    def credits(self) -> dict[str, Any]:
        return self.admin.call("GET", "/credits")[1]

    def acknowledgements(self, product: str) -> dict[str, Any]:
        return self.admin.call("GET", "/acknowledgements", query={"product": product})[1]


def new_workdir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="kgsched-federation-")


__all__ = ["DEMO_POLICY", "DEMO_RUNNERS", "EXAMPLES", "FED", "Federation", "ServiceError", "new_workdir"]
