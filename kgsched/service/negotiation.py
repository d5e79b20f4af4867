"""Content negotiation for RDF responses and request bodies, through werkzeug's Accept parsing."""

from __future__ import annotations

from flask import Response, request
from rdflib import Graph

from kgsched.service.errors import NotAcceptable

#: What a graph can be served as, best first (the first is the default for */* or no Accept).
GRAPH_OFFERS = {
    "text/turtle": "turtle",
    "application/ld+json": "json-ld",
    "application/n-triples": "nt",
    "application/rdf+xml": "xml",
    "application/json": "json-ld",
    "text/plain": "nt",
}


def negotiate(offers: list[str]) -> str:
    """The offer the client prefers; the first offer without an Accept header; 406 if none fits."""
    if not request.headers.get("Accept"):
        return offers[0]
    best = request.accept_mimetypes.best_match(offers)
    if best is None:
        raise NotAcceptable(f"cannot answer with {request.headers.get('Accept')!r}; offered: {', '.join(offers)}")
    return best


def graph_response(graph: Graph, status: int = 200) -> Response:
    media_type = negotiate(list(GRAPH_OFFERS))
    body = graph.serialize(format=GRAPH_OFFERS[media_type])
    return Response(body, status=status, mimetype=media_type)


def request_media_type() -> str:
    return (request.mimetype or "").lower()
