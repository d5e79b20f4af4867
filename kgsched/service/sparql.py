"""``/sparql``: a read-only SPARQL 1.1 Protocol endpoint over the whole graph (the query page at ``/``
is kgsched.service.page).

Protocol: the query comes as ``?query=`` (GET), in a form body (POST
``application/x-www-form-urlencoded``) or as the body itself (POST ``application/sparql-query``);
any other body type is 415, a query both in the URL and in the body 400, an update 403.
``default-graph-uri`` / ``named-graph-uri`` choose the dataset. Results are negotiated from the
Accept header: SPARQL JSON, XML, CSV or TSV for SELECT/ASK; Turtle, N-Triples, JSON-LD or RDF/XML
for CONSTRUCT/DESCRIBE. ``HEAD`` answers like ``GET`` without the body; every answer carries
``Access-Control-Allow-Origin: *`` and a CORS preflight (``OPTIONS``) is answered, so browser-based
SPARQL tools on other sites can query it (read-only, no credentials); a browser asking for HTML
(``GET /sparql?query=…`` from the address bar) is sent to the query page with that query; relative
IRIs in a query resolve against the endpoint's own URL (its base IRI).

Every query passes the cheap pre-check of kgsched.graph.guard first (size, tokens, nesting of every
operator kind, chains, paths, SERVICE only to allowlisted endpoints), but the service does not rely
on it: on an on-disk store the query runs in a worker process (kgsched.service.query_workers) that
opens the store read-only, so a crash or a runaway kills only that worker — at the deadline it is
killed, its slot freed and a replacement started; over a remote store the remote server evaluates and
the request gives up at the deadline. At most QUERY_WORKERS queries run at once (503 "busy" past
that); results past MAX_RESULT_BYTES are a 400. Only an in-memory store (tests, QUERY_ISOLATION=thread)
evaluates in the service's own threads, with the limits of ``run_limited``.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, current_app, redirect, request, url_for

from kgsched.errors import InvalidRequest, KgschedError
from kgsched.graph.binding import check_iri
from kgsched.graph.guard import check_query
from kgsched.service.errors import Busy, Forbidden, QueryTimeout, ResultTooLarge, UnsupportedMediaType
from kgsched.service.negotiation import negotiate
from kgsched.service.query_workers import evaluate_isolated, query_limits
from kgsched.service.state import current

bp = Blueprint("sparql", __name__)

#: Accepted media type → the one served (aliases first resolve to their canonical type).
RESULT_OFFERS: dict[str, str] = {
    "application/sparql-results+json": "application/sparql-results+json",
    "application/json": "application/sparql-results+json",
    "application/sparql-results+xml": "application/sparql-results+xml",
    "application/xml": "application/sparql-results+xml",
    "text/xml": "application/sparql-results+xml",
    "text/csv": "text/csv",
    "text/tab-separated-values": "text/tab-separated-values",
}
GRAPH_OFFERS: dict[str, str] = {
    "text/turtle": "text/turtle",
    "application/n-triples": "application/n-triples",
    "application/ld+json": "application/ld+json",
    "application/rdf+xml": "application/rdf+xml",
    "application/json": "application/ld+json",
    "application/xml": "application/rdf+xml",
    "text/plain": "application/n-triples",
}
QUERY_FORMS = {"SELECT", "ASK", "CONSTRUCT", "DESCRIBE"}
UPDATE_FORMS = {"INSERT", "DELETE", "LOAD", "CLEAR", "CREATE", "DROP", "COPY", "MOVE", "ADD", "WITH"}
_PROLOGUE = re.compile(r"\s*(?:#[^\n]*(?:\n|$)|PREFIX\s+[^\s:]*:\s*<[^>\s]*>|BASE\s*<[^>\s]*>)", re.IGNORECASE)
_KEYWORD = re.compile(r"\s*([A-Za-z]+)")


def query_form(text: str) -> str | None:
    """The first keyword after the prologue (comments, PREFIX, BASE): SELECT, ASK, …, or an update's."""
    position = 0
    while True:
        match = _PROLOGUE.match(text, position)
        if match is None or match.end() == position:
            break
        position = match.end()
    keyword = _KEYWORD.match(text, position)
    return keyword.group(1).upper() if keyword else None


def protocol_request() -> tuple[str, list[str], list[str]]:
    """The query and dataset of a SPARQL Protocol request, or the 4xx the protocol prescribes."""
    args = request.args
    if "update" in args:
        raise Forbidden("this endpoint is read-only: updates are refused")
    graphs_default, graphs_named = args.getlist("default-graph-uri"), args.getlist("named-graph-uri")
    if request.method in ("GET", "HEAD"):
        queries = args.getlist("query")
    else:
        media_type = (request.mimetype or "").lower()
        if media_type == "application/x-www-form-urlencoded":
            form = request.form
            if "update" in form:
                raise Forbidden("this endpoint is read-only: updates are refused")
            if "query" in form and "query" in args:
                raise InvalidRequest("the query is both in the URL and in the body; send it once")
            queries = form.getlist("query") or args.getlist("query")
            graphs_default += form.getlist("default-graph-uri")
            graphs_named += form.getlist("named-graph-uri")
        elif media_type == "application/sparql-query":
            charset = (request.mimetype_params.get("charset") or "utf-8").lower()
            if charset not in ("utf-8", "utf8"):
                raise InvalidRequest(f"the query body must be UTF-8, not {charset}")
            if "query" in args:
                raise InvalidRequest("the query is both in the URL and in the body; send it once")
            try:
                queries = [request.get_data().decode("utf-8")]
            except UnicodeDecodeError:
                raise InvalidRequest("the query body is not UTF-8") from None
        elif media_type == "application/sparql-update":
            raise Forbidden("this endpoint is read-only: updates are refused")
        else:
            raise UnsupportedMediaType(
                f"POST a query as application/sparql-query or application/x-www-form-urlencoded, not "
                f"{media_type or 'a body without Content-Type'}")
    if len(queries) != 1 or not queries[0].strip():
        raise InvalidRequest("exactly one non-empty 'query' is needed" if queries else "missing 'query'")
    for graph in graphs_default + graphs_named:
        check_iri(graph)
    return queries[0], graphs_default, graphs_named


class _LimitedBuffer:
    """Collects the serialised result; stops the query (by raising from ``write``) when it is too big
    or too late. pyoxigraph reports the raise as an OSError; ``reason`` says which limit it was."""

    def __init__(self, max_bytes: int, deadline: float) -> None:
        self.max_bytes, self.deadline = max_bytes, deadline
        self.parts: list[bytes] = []
        self.size = 0
        self.reason: str | None = None
        self.cancelled = threading.Event()

    def write(self, data: bytes) -> int:
        if self.cancelled.is_set() or time.monotonic() > self.deadline:
            self.reason = "timeout"
            raise OSError("query stopped: time limit")
        self.size += len(data)
        if self.size > self.max_bytes:
            self.reason = "size"
            raise OSError("query stopped: result size limit")
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass


def _slots() -> threading.BoundedSemaphore:
    slots = current_app.extensions.get("kgsched.query_slots")
    if slots is None:
        slots = current_app.extensions["kgsched.query_slots"] = threading.BoundedSemaphore(
            int(current_app.config["QUERY_WORKERS"]))
    return slots


def run_limited(work: Callable[[_LimitedBuffer], tuple[bytes, str]], timeout: float,
                max_bytes: int) -> tuple[bytes, str]:
    """Run ``work`` in a worker thread, answer by the deadline, keep the result under the size limit."""
    slots = _slots()
    if not slots.acquire(timeout=0.1):
        raise Busy("too many queries are running; retry in a moment")
    buffer = _LimitedBuffer(max_bytes, time.monotonic() + timeout)
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def worker() -> None:
        try:
            outcome["value"] = work(buffer)
        except BaseException as exc:  # reported to the request thread, without this thread's frames
            outcome["error"] = exc.with_traceback(None)
        finally:
            slots.release()
            done.set()

    threading.Thread(target=worker, name="kgsched-sparql", daemon=True).start()
    if not done.wait(timeout):
        buffer.cancelled.set()
        raise QueryTimeout(f"the query ran longer than {timeout:g} s; narrow it (LIMIT, more specific patterns)")
    if "error" in outcome:
        if buffer.reason == "size":
            raise ResultTooLarge(f"the result passed {max_bytes:,} bytes; add a LIMIT or narrow the query")
        if buffer.reason == "timeout":
            raise QueryTimeout(f"the query ran longer than {timeout:g} s; narrow it (LIMIT, more specific patterns)")
        error = outcome["error"]
        if isinstance(error, KgschedError):
            raise error
        raise RuntimeError(f"query failed: {error}") from error
    _, media_type = outcome["value"]
    return b"".join(buffer.parts), media_type


CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Accept, Content-Type",
    "Access-Control-Expose-Headers": "Content-Type, Content-Length",
    "Access-Control-Max-Age": "86400",
}


@bp.after_request
def cors(response: Response) -> Response:
    """The endpoint is public and read-only: any site may query it (no credentials are involved)."""
    response.headers.update(CORS_HEADERS)
    return response


def wants_html() -> bool:
    """A browser's address bar: HTML preferred over every result format."""
    if request.method != "GET" or not request.headers.get("Accept"):
        return False
    offers = ["text/html", *RESULT_OFFERS, *GRAPH_OFFERS]
    best = request.accept_mimetypes.best_match(offers)
    named = any(value.lower() == "text/html" for value, _quality in request.accept_mimetypes)
    return best == "text/html" and named  # "*/*" alone (curl, libraries) keeps getting results


@bp.route("/sparql", methods=["GET", "POST", "OPTIONS"], provide_automatic_options=False)
def sparql() -> Response:
    if request.method == "OPTIONS":
        return Response(status=204)
    if wants_html():
        query = request.args.get("query")
        target = url_for("page.index", query=query) if query else url_for("page.index")
        moved = redirect(target, code=303)
        moved.headers["Vary"] = "Accept"
        return moved  # type: ignore[return-value]
    query, default_graphs, named_graphs = protocol_request()
    check_query(query, query_limits(current_app.config))
    form = query_form(query)
    if form in UPDATE_FORMS:
        raise Forbidden("this endpoint is read-only: updates are refused")
    offers = GRAPH_OFFERS if form in ("CONSTRUCT", "DESCRIBE") else RESULT_OFFERS
    media_type = offers[negotiate(list(offers))]
    store = current().store
    config = current_app.config
    base_iri = request.base_url

    def work(buffer: _LimitedBuffer) -> tuple[bytes, str]:
        return store.query_serialized(query, media_type, default_graphs, named_graphs, output=buffer,
                                      base_iri=base_iri)

    # an on-disk store's queries run in worker processes killed at the deadline (kgsched.service.query_workers)
    isolated = evaluate_isolated(current_app, store, query, media_type, default_graphs, named_graphs, base_iri)
    if isolated is not None:
        body, served = isolated
    else:
        body, served = run_limited(work, float(config["QUERY_TIMEOUT_SECONDS"]), int(config["MAX_RESULT_BYTES"]))
    response = Response(body, status=200, mimetype=served)
    response.headers["Vary"] = "Accept"
    return response
