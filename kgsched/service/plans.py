"""``/plans``: plan a request with the planner (kgsched.planning.planner), record the plan, queue its jobs.

The body is the request as JSON (``{"workflow": IRI, "args": {...}}``, or
``{"request": {...}, "options": {...}}`` with planner options) or a Turtle ks:Request. The requester
is the bearer token's agent. Each recompute step becomes a job (kgsched.jobs.queue.enqueue_plan),
unless its expression already has a job queued or running.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response, jsonify, request, url_for
from rdflib import URIRef

from kgsched.errors import InvalidRequest, NotFound
from kgsched.graph import queries
from kgsched.graph.binding import check_iri
from kgsched.graph.rdfio import parse_rdf
from kgsched.jobs.queue import job_id
from kgsched.jobs.replan import link_revision, recorded_request, refresh_active_jobs
from kgsched.namespaces import JOBS_GRAPH, KSID, PLANS_GRAPH, bind_prefixes
from kgsched.planning.model import PlanOptions
from kgsched.planning.planner import plan_request, store_plan
from kgsched.service.auth import require_identity
from kgsched.service.errors import Forbidden, UnsupportedMediaType
from kgsched.service.jobs import with_stalls
from kgsched.service.negotiation import graph_response
from kgsched.service.state import current

bp = Blueprint("plans", __name__)
_PLAN_ID = re.compile(r"^[0-9a-f]{32}$")


def plan_iri(plan_id: str) -> URIRef:
    if not _PLAN_ID.match(plan_id):
        raise NotFound(f"no plan {plan_id!r}")
    return URIRef(KSID[f"plan/{plan_id}"])


def read_request() -> tuple[Any, dict[str, Any], str | None]:
    """(request, options, requester named in the body) from a JSON or Turtle body."""
    media_type = (request.mimetype or "").lower()
    if media_type == "application/json":
        payload = request.get_json(silent=True)
        if not isinstance(payload, dict):
            raise InvalidRequest("the body must be a JSON object: the request, or {\"request\": …, \"options\": …}")
        if "request" in payload:
            unknown = set(payload) - {"request", "options", "requester"}
            if unknown:
                raise InvalidRequest(f"unknown field(s): {', '.join(sorted(unknown))}")
            options = payload.get("options") or {}
            if not isinstance(options, dict):
                raise InvalidRequest("options must be a JSON object")
            return payload["request"], options, payload.get("requester")
        return payload, {}, None
    if media_type in ("text/turtle", "application/x-turtle"):
        return parse_rdf(request.get_data(), fmt="turtle", source="request body"), {}, None
    raise UnsupportedMediaType(f"send the request as JSON or Turtle, not {request.mimetype or 'nothing'}")


@bp.post("/plans")
def create() -> tuple[Response, int]:
    identity = require_identity()
    body, options, requester_named = read_request()
    requester = identity.agent
    if requester_named is not None:
        if not identity.admin:
            raise Forbidden("only the administrator may plan on behalf of another requester")
        requester = check_iri(requester_named)
    state = current()
    plan = plan_request(state.store, body, requester, PlanOptions.from_mapping(options))
    store_plan(state.store, plan)
    jobs = state.queue.enqueue_plan(plan)
    for job in jobs:
        job["url"] = url_for("jobs.describe", job_id=job["job"])
    response = jsonify({"plan": plan.to_json(), "jobs": jobs})
    response.headers["Location"] = url_for(".show", plan_id=str(plan.iri).rsplit("/", 1)[-1])
    return response, 201


@bp.get("/plans/<plan_id>")
def show(plan_id: str) -> Response:
    """The recorded plan (request, steps, decisions, reasons) as RDF."""
    graph = queries.construct(current().store, "plan-graph", [{"plan": plan_iri(plan_id), "g": PLANS_GRAPH}])
    if len(graph) == 0:
        raise NotFound(f"no plan {plan_id}")
    bind_prefixes(graph)
    return graph_response(graph)


@bp.get("/plans/<plan_id>/jobs")
def plan_jobs(plan_id: str) -> Response:
    """The jobs the plan queued, with their current state; a queued job no registered runner may run now
    says so in ``stalled`` (kgsched.jobs.stalls), and the requester may re-plan."""
    iri = plan_iri(plan_id)
    queue = current().queue
    rows = queries.select(current().store, "plan-jobs", [{"plan": iri, "jobs": JOBS_GRAPH}])
    jobs = [queue.describe(row["job"]) | {"url": url_for("jobs.describe", job_id=job_id(row["job"]))}
            for row in rows]
    with_stalls(jobs)
    stalled = any(job["stalled"] for job in jobs)
    return jsonify({"plan": str(iri), "jobs": jobs, "stalled": stalled,
                    **({"replan_url": url_for(".replan", plan_id=plan_id)} if stalled else {})})


@bp.post("/plans/<plan_id>/replan")
def replan(plan_id: str) -> tuple[Response, int]:
    """Decide the plan's request again against today's federation and cache (kgsched.jobs.replan): what
    is done is reused, a job still queued gets the new plan's runners. Only the plan's requester or the
    administrator may."""
    identity = require_identity()
    old = plan_iri(plan_id)
    state = current()
    request_graph, requester = recorded_request(state.store, old)
    if not identity.admin and identity.agent != requester:
        raise Forbidden("only the plan's requester or the administrator may re-plan it")
    plan = plan_request(state.store, request_graph, requester)
    store_plan(state.store, plan)
    link_revision(state.store, plan.iri, old)
    refreshed = set(refresh_active_jobs(state.queue, plan))
    jobs = state.queue.enqueue_plan(plan)
    for job in jobs:
        job["url"] = url_for("jobs.describe", job_id=job["job"])
        job["refreshed"] = URIRef(job["job_iri"]) in refreshed
    response = jsonify({"plan": plan.to_json(), "jobs": jobs, "revision_of": str(old)})
    response.headers["Location"] = url_for(".show", plan_id=str(plan.iri).rsplit("/", 1)[-1])
    return response, 201
