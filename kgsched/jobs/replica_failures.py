"""A runner reports the replicas of its job's inputs it could not read; the service marks them so.

``POST /jobs/<id>/replica-failures`` ``{claim_token, failures: [{replica, status, reason}]}`` with
``status`` one of ``unreachable`` (no answer from the storage or server), ``missing`` (it answered
that it does not hold the bytes) or ``corrupt`` (the bytes do not have the recorded checksum).

Who may mark a replica bad — the attack, thought through. A mark takes a product out of the cache
(once no replica of it is available), so whoever could mark at will could make the federation
recompute anything, or starve a requester of results. So a mark counts only when

* it comes from a runner with its own token, **holding a live claim** of the job (fenced by the claim
  token exactly like a heartbeat or a result: another runner's job is 403, a lease that ran out 409);
* every replica it names is a replica of **one of that job's input products** (the ones its claim
  offered to fetch): any other replica is 403 and nothing at all is written;
* the claim has not reported its result yet (a failure is found while staging, before the result).

A runner can only be handed a job by the planner's and late binding's rules, so it can mark only the
inputs of jobs it was able and allowed to run, and only while it runs them. What a lying holder can do
is what it could do anyway with that job — report an unhandled exception, or a wrong result: here,
cost a recomputation of that job's inputs. It cannot make the system believe bytes are good, read
anything, or touch other products. Every mark names its reporter (``ks:statusReportedBy``), time and
reason, so an operator sees who marked what; and the next result that stores the same bytes in the
same place makes the replica available again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rdflib import URIRef

from kgsched.errors import InvalidRequest
from kgsched.graph.binding import check_iri
from kgsched.jobs.queue import JobQueue
from kgsched.jobs.states import LeaseLost, NotYourJob
from kgsched.provenance import replicas
from kgsched.provenance.replicas import FAILURE_STATUS, MAX_REASON_CHARS

MAX_FAILURES = 64


@dataclass(frozen=True)
class ReplicaFailure:
    replica: URIRef
    status: str
    reason: str

    @classmethod
    def from_json(cls, payload: Any) -> ReplicaFailure:
        if not isinstance(payload, Mapping) or not {"replica", "status"} <= set(payload) <= {"replica", "status",
                                                                                                "reason"}:
            raise InvalidRequest("each failure is an object with replica, status and (optionally) reason")
        status, reason = payload["status"], payload.get("reason", "")
        if status not in FAILURE_STATUS:
            raise InvalidRequest(f"status must be one of {', '.join(FAILURE_STATUS)}; got {status!r}")
        if not isinstance(reason, str):
            raise InvalidRequest("reason must be a string")
        if not isinstance(payload["replica"], str):
            raise InvalidRequest("replica must be the IRI of a replica the claim offered")
        return cls(check_iri(payload["replica"]), status, reason.strip()[:MAX_REASON_CHARS])


def parse_failures(payload: Any) -> list[ReplicaFailure]:
    if not isinstance(payload, list) or not payload or len(payload) > MAX_FAILURES:
        raise InvalidRequest(f"failures must be a list of 1 to {MAX_FAILURES} objects")
    return [ReplicaFailure.from_json(item) for item in payload]


def report_failures(queue: JobQueue, job: URIRef, runner: URIRef, claim_token: str,
                    failures: Sequence[ReplicaFailure], *, token: URIRef | None = None,
                    one_job: bool = False) -> dict[str, Any]:
    """Mark the replicas the claim's holder could not read; all or nothing (see the module docstring)."""
    with queue.store.write_lock:
        record = queue.record(job)
        claim = queue.own_claim(record, runner, claim_token, token, one_job)
        now = queue.clock()
        if not claim.live(now, queue.settings.clock_skew_seconds):
            raise LeaseLost("the claim's lease ran out (or it was handed back); replica failures are reported "
                            "only while the job is held")
        if claim.outcomes:
            raise LeaseLost("this claim already reported its result; replica failures come before it")
        offered = queue.context(job, claim.iri, runner, claim.claimed_at).offered_replicas()
        unknown = sorted(str(f.replica) for f in failures if f.replica not in offered)
        if unknown:
            raise NotYourJob(f"not a replica of this job's inputs: {', '.join(unknown)}; a runner reports only "
                             "replicas its claim offered")
        marked: dict[str, list[str]] = {}
        for status in sorted({f.status for f in failures}):
            chosen = [f for f in failures if f.status == status]
            reason = "; ".join(sorted({f.reason for f in chosen if f.reason})) or f"reported {status} by {runner}"
            replicas.set_status(queue.store, [f.replica for f in chosen], FAILURE_STATUS[status], reason=reason,
                                reported_by=runner, now=now)
            marked[status] = sorted(str(f.replica) for f in chosen)
        queue.inputs_changed()
    return {"job": str(job).rsplit("/", 1)[-1], "marked": marked}
