"""Remote services in the local federation: a real pygeoapi, and runner agents in service mode.

Used by ``kgsched demo`` and the tests. The example service (Frank's light-curve variability, a
pygeoapi process plugin in ``examples/workflows/kgsched_examples/ogc_processes.py``) is served by
``kgsched.dev.ogc_server``; its description (``examples/services/variability-service.ttl``) is
rewritten with the endpoint the server actually listens on, then registered by the runner agent
that joins in service mode (``kgsched runner --service``), like any runner registering itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from rdflib import Literal, URIRef
from rdflib.namespace import XSD

from kgsched.dev.federation import EXAMPLES, FED, Federation
from kgsched.dev.ogc_server import OgcProcessesServer
from kgsched.graph.rdfio import parse_rdf
from kgsched.namespaces import KS, bind_prefixes

EXAMPLE_SERVICE = EXAMPLES / "services" / "variability-service.ttl"
EXAMPLE_SERVICE_RUNNER = FED + "runner/frank-variability-service"
EXAMPLE_PROCESSES = {"light-curve-variability": "kgsched_examples.ogc_processes.LightCurveVariability"}


def start_example_service(workdir: Path, processes: dict[str, str] | None = None,
                          python_path: list[str] | None = None) -> OgcProcessesServer:
    """A real OGC API – Processes server (pygeoapi) with the example process, on a free port."""
    return OgcProcessesServer(processes or EXAMPLE_PROCESSES, [str(EXAMPLES / "workflows"), *(python_path or [])],
                              directory=workdir / "ogc-service").start()


def with_endpoint(template: Path, endpoint: str, target: Path, runner: str | None = None) -> Path:
    """The service description with its ks:endpoint set to where the server listens."""
    graph = parse_rdf(template.read_bytes(), source=template.name)
    bind_prefixes(graph)
    services = [s for s in graph.subjects(KS.endpoint, None) if runner is None or str(s) == runner]
    for service in services:
        graph.remove((service, KS.endpoint, None))
        graph.add((URIRef(service), KS.endpoint, Literal(endpoint, datatype=XSD.anyURI)))
    target.write_text(graph.serialize(format="turtle"))
    return target


def start_service_runner(federation: Federation, name: str, config: Path, *,
                         extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """``kgsched runner --service`` for the service runner ``runner/<name>`` described in ``config``."""
    args = [sys.executable, "-m", "kgsched", "runner", "--service", "--server", federation.url,
            "--token", federation.admin_token, "--config", str(config), "--runner", FED + "runner/" + name,
            "--storage", str(federation.workdir / f"products-{name}"), "--data-dir", str(federation.examples),
            "--poll", "0.2", "--grace", "5"]
    log = open(federation.workdir / f"runner-{name}.log", "wb")  # noqa: SIM115 - closed by federation.stop()
    federation._logs.append(log)
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, **(extra_env or {})))
    federation.runners[name] = process
    federation._wait_until(lambda: federation.runner_registered(name), f"service runner {name} to register")
    return process
