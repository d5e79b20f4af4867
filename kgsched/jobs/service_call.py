"""What a service runner needs to call the remote process of a ks:WebService job (added to its grant).

The endpoint comes from the service runner's own description and the parameter → input mapping from
the workflow's parameters (``ks:processInput``, default the parameter's name); both are read only
when the service's owner says it offers the workflow (``ks:offersWorkflow``), the same condition the
planner's eligibility uses. The process id is the workflow's ``ks:implementation``.
"""

from __future__ import annotations

from typing import Any

from rdflib import URIRef

from kgsched.graph import queries
from kgsched.graph.store import Store
from kgsched.namespaces import KS


def service_call(store: Store, kind: URIRef | None, workflow: URIRef, runner: URIRef,
                 process: str | None) -> dict[str, Any] | None:
    """``{"endpoint", "process", "inputs": {parameter: input}}`` for a WebService job; None otherwise."""
    if kind != KS.WebService:
        return None
    rows = queries.select(store, "service-call", [{"workflow": workflow, "runner": runner}])
    if not rows:
        return None  # the runner is no service offering the workflow: it will say it cannot execute it
    inputs = {str(r["name"]): str(r["input"]) for r in rows if r.get("name") is not None}
    return {"endpoint": str(rows[0]["endpoint"]), "process": process, "inputs": inputs}
