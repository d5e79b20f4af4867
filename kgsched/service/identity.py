"""``/tokens`` and ``/whoami``: issuing, listing and revoking bearer tokens.

The administrator (token from configuration) issues tokens for any agent. Any other agent may issue
tokens for itself and for the runners it owns (docs/authority.md: ks:ownedBy counts when the owner
registered the runner or authorised its registrant) — a runner owner hands its runners their tokens
without the administrator. A token for a runner is a *runner token*, pinned to the registrant graph
that describes the runner: it acts only as that runner (claims and reports jobs) and stops working
when the runner is removed. A token for an anonymous job-token runner is always a one-job token.
The secret is in the 201 answer only; the graph keeps its SHA-256.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request
from rdflib import URIRef

from kgsched.errors import InvalidRequest, NotFound
from kgsched.graph import queries
from kgsched.graph.binding import check_iri
from kgsched.namespaces import KS
from kgsched.registry.generation import registry_cache
from kgsched.registry.tokens import token_iri
from kgsched.service.auth import require_identity
from kgsched.service.errors import Forbidden, UnsupportedMediaType
from kgsched.service.state import current, request_generation

bp = Blueprint("identity", __name__)


def json_object(allowed: set[str]) -> dict[str, Any]:
    """The request's JSON object body, with only the allowed keys (400 otherwise, 415 if not JSON)."""
    if (request.mimetype or "").lower() != "application/json":
        raise UnsupportedMediaType(f"send JSON (application/json), not {request.mimetype or 'nothing'}")
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        raise InvalidRequest("the body must be a JSON object")
    unknown = set(payload) - allowed
    if unknown:
        raise InvalidRequest(f"unknown field(s): {', '.join(sorted(unknown))}; known: {', '.join(sorted(allowed))}")
    return payload


def runner_kinds(agent: Any) -> frozenset:
    """The runner kinds the agent is registered as (empty: not a runner). Checked on every request
    against the registry generation read for it (kgsched.registry.generation): a runner that is
    deregistered stops being one at once, on every replica."""
    store = current().store
    return registry_cache(store).get(
        ("runner-kinds", agent),
        lambda: frozenset(row["kind"] for row in queries.select(store, "runner-kind", [{"runner": agent}])),
        checked=request_generation())


@bp.post("/tokens")
def issue() -> tuple[Response, int]:
    """Tokens for the caller itself, or — runner tokens — for a runner whose believed owner is the
    caller, pinned to the graph that describes it (the administrator may issue either for anyone)."""
    identity = require_identity()
    payload = json_object({"agent", "one_job", "label"})
    agent = check_iri(payload.get("agent", str(identity.agent)))
    one_job = payload.get("one_job", False)
    label = payload.get("label")
    if not isinstance(one_job, bool):
        raise InvalidRequest("one_job must be true or false")
    if label is not None and not isinstance(label, str):
        raise InvalidRequest("label must be a string")
    registrations = queries.select(current().store, "runner-registration", [{"runner": agent}])
    issued_under = None
    if registrations:
        registration = registrations[0]
        if not identity.admin and registration["owner"] != identity.agent:
            raise Forbidden("you may issue tokens only for yourself and for runners you own (ks:ownedBy you, "
                            "registered by you or by an agent you authorise)")
        issued_under = registration["g"]
        if any(row["kind"] == KS.AnonymousJobTokenRunner for row in registrations):
            one_job = True
    elif not identity.admin and agent != identity.agent:
        raise Forbidden("you may issue tokens only for yourself and for runners you own")
    issued = current().tokens.issue(agent, identity.agent, one_job=one_job, label=label, issued_under=issued_under)
    return jsonify(issued.to_json()), 201


@bp.get("/tokens")
def list_tokens() -> Response:
    identity = require_identity()
    agent = request.args.get("agent")
    if identity.admin:
        return jsonify({"tokens": current().tokens.tokens_of(check_iri(agent) if agent else None)})
    if agent is not None and check_iri(agent) != identity.agent:
        raise Forbidden("you may list only your own tokens")
    return jsonify({"tokens": current().tokens.tokens_of(identity.agent)})


@bp.delete("/tokens/<token_id>")
def revoke(token_id: str) -> Response:
    identity = require_identity()
    iri = token_iri(token_id)
    record = current().tokens.describe(iri)
    if record is None:
        raise NotFound(f"no token {token_id}")
    if not (identity.admin or record["agent"] == str(identity.agent) or record["issued_by"] == str(identity.agent)):
        raise Forbidden("you may revoke only your own tokens and those you issued")
    current().tokens.revoke(iri)
    # a runner left with no token cannot serve its products any more (kgsched.provenance.replicas)
    current().runners_left([URIRef(str(record["agent"]))])
    return jsonify({"revoked": token_id})


@bp.get("/whoami")
def whoami() -> Response:
    identity = require_identity(allow_one_job=True, allow_runner=True)
    body = identity.to_json()
    body["runner_kinds"] = sorted(str(k) for k in runner_kinds(identity.agent))
    return jsonify(body)
