"""``/jobs``: runners claim jobs under a lease, send heartbeats and report results.

The protocol (who holds a job, fencing, idempotent reports) is kgsched.jobs.queue's, argued in
docs/claim-protocol.md. Here: the caller must be a registered runner with its own token (an
anonymous job-token runner with a one-job token); a runner acts only on jobs it claimed.

``POST /jobs/claim`` → 200 with the job (claim token, lease, workflow, arguments), 204 when nothing
is claimable, 503 when every bid collided (retry). ``POST /jobs/<id>/heartbeat`` and
``/jobs/<id>/result`` carry the claim token; a lease that ran out is 409, another runner's job 403.
``POST /jobs/<id>/replica-failures`` ``{claim_token, failures}``: the holder reports replicas of the
job's inputs it could not read, and the service marks them (kgsched.jobs.replica_failures).
``POST /jobs/<id>/refuse`` ``{claim_token, reason}`` hands a claimed job back unrun because the
runner owner's local policy does not allow it (kgsched.runner.policy): the claim is released with the
reason, the runner excluded for the job, and the job queued again without spending an attempt.
A reported product ``location`` must lie under the runner's own ``ks:productEndpoint`` or the
``ks:baseUrl`` of a storage it ``ks:usesStorage`` (400 otherwise, nothing written).
"""

from __future__ import annotations

import math
from typing import Any

from flask import Blueprint, Response, jsonify, request, url_for
from rdflib import URIRef

from kgsched.clock import iso, utcnow
from kgsched.errors import InvalidRequest
from kgsched.graph.binding import check_iri
from kgsched.jobs.queue import job_iri
from kgsched.jobs.replica_failures import parse_failures, report_failures
from kgsched.jobs.stalls import stalled_reasons
from kgsched.namespaces import KS
from kgsched.provenance.recording import ResultReport
from kgsched.registry.tokens import Identity
from kgsched.service.auth import require_identity
from kgsched.service.errors import Forbidden
from kgsched.service.identity import json_object, runner_kinds
from kgsched.service.state import current

bp = Blueprint("jobs", __name__)


def require_runner() -> Identity:
    identity = require_identity(allow_one_job=True, allow_runner=True)
    if identity.admin:
        raise Forbidden("the administrator token is not a runner's; use the runner's own token")
    kinds = runner_kinds(identity.agent)
    if not kinds:
        raise Forbidden(f"{identity.agent} is not a registered runner")
    if KS.AnonymousJobTokenRunner in kinds and not identity.one_job:
        raise Forbidden("an anonymous job-token runner claims only with a one-job token")
    return identity


def in_touch(identity: Identity) -> None:
    """Note the runner's contact (kgsched.jobs.contact) — only after a call that succeeded, so a refused
    call changes nothing."""
    current().contacts.note(identity.agent)


@bp.post("/jobs/claim")
def claim() -> Response:
    identity = require_runner()
    grant = current().queue.claim(identity.agent, identity.token, identity.one_job)
    in_touch(identity)
    if grant is None:
        return Response(status=204)
    body = grant.to_json()
    job = body["job"]
    body.update(url=url_for(".describe", job_id=job), heartbeat_url=url_for(".heartbeat", job_id=job),
                result_url=url_for(".result", job_id=job), refuse_url=url_for(".refuse", job_id=job))
    return jsonify(body)


@bp.post("/jobs/<job_id>/heartbeat")
def heartbeat(job_id: str) -> Response:
    job = job_iri(job_id)
    identity = require_runner()
    payload = json_object({"claim_token", "progress"})
    progress = payload.get("progress")
    if progress is not None and (isinstance(progress, bool) or not isinstance(progress, int | float)
                                 or not math.isfinite(progress)):
        raise InvalidRequest("progress must be a number between 0 and 1")
    until = current().queue.heartbeat(job, identity.agent, payload.get("claim_token", ""), token=identity.token,
                                      one_job=identity.one_job, progress=progress)
    in_touch(identity)
    return jsonify({"job": job_id, "lease_until": iso(until)})


@bp.post("/jobs/<job_id>/result")
def result(job_id: str) -> Response:
    job = job_iri(job_id)
    identity = require_runner()
    payload = json_object(set(ResultReport.FIELDS))
    report = ResultReport.from_json(payload)
    receipt = current().queue.report(job, identity.agent, payload.get("claim_token", ""), report,
                                     token=identity.token, one_job=identity.one_job)
    in_touch(identity)
    return jsonify(receipt.to_json())


@bp.post("/jobs/<job_id>/refuse")
def refuse(job_id: str) -> Response:
    job = job_iri(job_id)
    identity = require_runner()
    payload = json_object({"claim_token", "reason"})
    receipt = current().queue.refuse(job, identity.agent, payload.get("claim_token", ""), payload.get("reason"),
                                     token=identity.token, one_job=identity.one_job)
    in_touch(identity)
    return jsonify(receipt)


@bp.post("/jobs/<job_id>/replica-failures")
def replica_failures(job_id: str) -> Response:
    """The holder of a live claim reports replicas of the job's inputs it could not read
    (kgsched.jobs.replica_failures says why only it, and only those)."""
    job = job_iri(job_id)
    identity = require_runner()
    payload = json_object({"claim_token", "failures"})
    failures = parse_failures(payload.get("failures"))
    answer = report_failures(current().queue, job, identity.agent, payload.get("claim_token", ""), failures,
                             token=identity.token, one_job=identity.one_job)
    in_touch(identity)
    return jsonify(answer)


def with_stalls(jobs: list[dict[str, Any]]) -> None:
    """Add ``stalled`` (the reason, or None) to each job described: only queued jobs can be stalled."""
    queued = [URIRef(job["job_iri"]) for job in jobs if job["state"] == "queued"]
    state = current()
    reasons = stalled_reasons(state.store, queued, now=utcnow(), silence_seconds=state.silence_seconds)
    for job in jobs:
        job["stalled"] = reasons.get(URIRef(job["job_iri"]))


@bp.get("/jobs/<job_id>")
def describe(job_id: str) -> Response:
    described = current().queue.describe(job_iri(job_id))
    with_stalls([described])
    return jsonify(described)


@bp.get("/jobs")
def list_jobs() -> Response:
    state = request.args.get("state")
    runner = request.args.get("runner")
    jobs: list[dict[str, Any]] = current().queue.list(state, check_iri(runner) if runner else None)  # type: ignore[arg-type]
    with_stalls(jobs)
    return jsonify({"jobs": jobs, "count": len(jobs)})
