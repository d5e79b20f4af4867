"""``/credits``, ``/acknowledgements`` and ``/products/<id>/provenance``: who to thank, and the PROV behind it."""

from __future__ import annotations

import re

from flask import Blueprint, Response, jsonify, request
from rdflib import URIRef

from kgsched.errors import InvalidRequest, NotFound
from kgsched.graph.binding import check_iri
from kgsched.namespaces import KSID
from kgsched.provenance.recording import acknowledgements, credit_totals, product_provenance
from kgsched.service.negotiation import graph_response, negotiate
from kgsched.service.state import current

bp = Blueprint("credits", __name__)
_PRODUCT_ID = re.compile(r"^[0-9A-Za-z._-]{1,200}$")


@bp.get("/credits")
def credits() -> Response:
    """Credit totals per agent, by reason; ``?agent=IRI`` for one agent."""
    agent = request.args.get("agent")
    return jsonify({"agents": credit_totals(current().store, check_iri(agent) if agent else None)})


@bp.get("/acknowledgements")
def acknowledge() -> Response:
    """Everyone to thank for a product over its whole provenance chain (JSON, or text/plain: the sentence)."""
    product = request.args.get("product")
    if not product:
        raise InvalidRequest("give the product: /acknowledgements?product=IRI")
    result = acknowledgements(current().store, check_iri(product))
    if negotiate(["application/json", "text/plain"]) == "text/plain":
        return Response(result["sentence"] + "\n", mimetype="text/plain")
    return jsonify(result)


def product_iri(product_id: str) -> URIRef:
    if not _PRODUCT_ID.match(product_id):
        raise NotFound(f"no product {product_id!r}")
    return URIRef(KSID[f"product/{product_id}"])


@bp.get("/products/<product_id>/provenance")
def provenance(product_id: str) -> Response:
    """The product's PROV graph (executions, inputs, agents, credits), as Turtle, JSON-LD, N-Triples or RDF/XML."""
    iri = product_iri(product_id)
    try:
        graph = product_provenance(current().store, iri)
    except NotFound:
        raise NotFound(f"no product {product_id}") from None
    return graph_response(graph)
