"""``kgsched runner --service``: the runner agent acting for a remote OGC API – Processes service.

Who calls the remote service: a runner agent in service mode, not the kgsched service. Reasons:

* the kgsched service makes no outbound requests to URLs that registrants chose — otherwise any
  registrant could point an endpoint at an internal address and have the service call it (SSRF),
  and a slow remote job would hold one of the service's request threads for its whole duration;
* the claim/lease/heartbeat/report protocol stays the only way results enter the graph: the agent
  claims the service's jobs with the service's runner token, calls the remote API, stores the
  result in its own content-addressed storage (checksum verified, served over HTTP like any
  product) and reports it; the service records PROV with the remote service (the ks:ServiceRunner)
  as the associated agent, acting for its owner (``ks:ownedBy`` ⊑ ``prov:actedOnBehalfOf``), who
  earns the compute credit;
* the service's owner decides where the calls come from (their own machine, next to the service).

The remote service is registered as a ks:ServiceRunner (its owner, site, capacity, trust); this
module only checks, on start, that the description is one and that its endpoint answers.
"""

from __future__ import annotations

from rdflib import Graph, URIRef
from rdflib.namespace import RDF

from kgsched.namespaces import KS
from kgsched.runner.ogc import OgcProcessesClient, ServiceCallError


class ServiceModeError(Exception):
    """The runner cannot start in (or without) service mode; the message says why."""


def check_mode(description: Graph, runner: URIRef, service_mode: bool) -> str | None:
    """The endpoint of a service runner started with --service; None for an ordinary runner."""
    is_service = (runner, RDF.type, KS.ServiceRunner) in description
    if is_service and not service_mode:
        raise ServiceModeError(f"{runner} is a ks:ServiceRunner: start it with 'kgsched runner --service' "
                               "so that it executes jobs by calling its remote service")
    if not is_service:
        if service_mode:
            raise ServiceModeError(f"--service needs a ks:ServiceRunner with a ks:endpoint; {runner} is not one")
        return None
    endpoint = description.value(runner, KS.endpoint)
    if endpoint is None:
        raise ServiceModeError(f"{runner} has no ks:endpoint (the base URL of its OGC API - Processes)")
    return str(endpoint)


def check_endpoint(endpoint: str, offered: list[str] | None = None) -> list[str]:
    """The process ids the service lists; a clear error if it does not answer or lacks an offered process."""
    try:
        ids = OgcProcessesClient(endpoint, timeout=10).process_ids()
    except ServiceCallError as exc:
        raise ServiceModeError(str(exc)) from exc
    missing = sorted(set(offered or []) - set(ids))
    if missing:
        raise ServiceModeError(f"the service at {endpoint} lists no process {', '.join(missing)} "
                               f"(it lists: {', '.join(ids) or 'none'})")
    return ids
