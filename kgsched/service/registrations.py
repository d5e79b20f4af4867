"""``/registrations``: a registrant registers Turtle, reads and deletes its own graph.

Registration is the registry's (strict Oxigraph parse, SHACL on the graph as it would become,
ownership, one update); this blueprint only maps HTTP onto it: the registrant is the bearer token's
agent (the administrator may act for another with ``?as=IRI``), a rejection is 400/403/422 and leaves
the store exactly as it was, a body over MAX_CONTENT_LENGTH is 413. A runner the registration (or
the deletion) removes has left: the replicas its product server held are marked gone
(kgsched.provenance.replicas), so the planner stops offering products only it had.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request, url_for
from rdflib import URIRef

from kgsched.errors import NotFound
from kgsched.graph.binding import check_iri
from kgsched.provenance import replicas
from kgsched.registry.registration import registrant_graph
from kgsched.registry.tokens import Identity
from kgsched.service.auth import require_identity
from kgsched.service.errors import Forbidden, UnsupportedMediaType
from kgsched.service.negotiation import graph_response
from kgsched.service.state import current

bp = Blueprint("registrations", __name__)

BODY_FORMATS = {"text/turtle": "turtle", "application/x-turtle": "turtle", "application/n-triples": "nt"}


def registrant_for(identity: Identity) -> URIRef:
    acting_for = request.args.get("as")
    if acting_for is None:
        return identity.agent
    if not identity.admin:
        raise Forbidden("only the administrator may act for another registrant ('as')")
    return check_iri(acting_for)


@bp.post("/registrations")
def register() -> tuple[Response, int]:
    identity = require_identity()
    fmt = BODY_FORMATS.get((request.mimetype or "").lower())
    if fmt is None:
        raise UnsupportedMediaType(f"register Turtle (text/turtle) or N-Triples, not {request.mimetype or 'nothing'}")
    registrant = registrant_for(identity)
    data = request.get_data()
    graph = registrant_graph(registrant)
    before = replicas.runners_in_graph(current().store, graph)
    result = current().registry.register([("request body", data)], registrant, fmt=fmt)
    if before:  # runners the new description dropped have left (one small query when it dropped none)
        dropped = set(before) - set(replicas.runners_in_graph(current().store, graph))
        current().runners_left(dropped)
    response = jsonify(result.to_dict())
    response.headers["Location"] = url_for(".mine")
    return response, 201


@bp.get("/registrations")
def mine() -> Response:
    registrant = registrant_for(require_identity())
    graph = current().registry.registered(registrant)
    if len(graph) == 0:
        raise NotFound(f"nothing is registered by {registrant}")
    return graph_response(graph)


@bp.delete("/registrations")
def unregister() -> Response:
    registrant = registrant_for(require_identity())
    before = replicas.runners_in_graph(current().store, registrant_graph(registrant))
    removed = current().registry.unregister(registrant)
    current().runners_left(before)  # their runner-local replicas are gone
    if removed == 0:
        raise NotFound(f"nothing is registered by {registrant}")
    return jsonify({"registrant": str(registrant), "removed": removed})
