"""``/sparql`` per the SPARQL 1.1 Protocol, on both stores, with Flask's test client: the three ways to
send a query, every refusal (400, 403, 406, 415), content negotiation, the dataset parameters, and
the guard, size and time limits. A refused request changes nothing in the store."""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from rdflib import Graph

from kgsched.graph.store import Store
from kgsched.namespaces import ONTOLOGY_GRAPH
from kgsched.service import close_app, create_app
from service_support import ADMIN_TOKEN, load_federation

RUNNERS = ("PREFIX ks: <https://w3id.org/kgsched#> SELECT ?runner ?cores WHERE { ?runner ks:cores ?cores } "
           "ORDER BY ?runner")
ASK = "PREFIX ks: <https://w3id.org/kgsched#> ASK { ?r ks:cores 64 }"
CONSTRUCT = "PREFIX ks: <https://w3id.org/kgsched#> CONSTRUCT { ?r ks:cores ?c } WHERE { ?r ks:cores ?c }"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def app(store: Store) -> Iterator[Flask]:
    load_federation(store)
    app = create_app({"STORE_INSTANCE": store, "ADMIN_TOKEN": ADMIN_TOKEN})
    yield app
    close_app(app)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def runners_from_json(data: bytes) -> dict[str, int]:
    bindings = json.loads(data)["results"]["bindings"]
    return {b["runner"]["value"].rsplit("/", 1)[1]: int(b["cores"]["value"]) for b in bindings}


EXPECTED = {"alice-laptop": 8, "alice-session": 2, "garching-volunteer": 4, "geneva-batch": 32, "paris-cluster": 64}


def test_query_by_get_form_post_and_direct_post(client: FlaskClient) -> None:
    by_get = client.get("/sparql?query=" + quote(RUNNERS))
    by_form = client.post("/sparql", data={"query": RUNNERS})
    direct = client.post("/sparql", data=RUNNERS.encode(), content_type="application/sparql-query")
    for response in (by_get, by_form, direct):
        assert response.status_code == 200, response.data
        assert response.mimetype == "application/sparql-results+json"
        assert runners_from_json(response.data) == EXPECTED


@pytest.mark.parametrize("accept, mimetype", [
    ("application/sparql-results+json", "application/sparql-results+json"),
    ("application/json", "application/sparql-results+json"),
    ("application/sparql-results+xml", "application/sparql-results+xml"),
    ("text/csv", "text/csv"),
    ("text/tab-separated-values", "text/tab-separated-values"),
    ("*/*", "application/sparql-results+json"),  # a browser asking for HTML goes to the page (test_query_page)
])
def test_select_results_are_negotiated(client: FlaskClient, accept: str, mimetype: str) -> None:
    response = client.get("/sparql", query_string={"query": RUNNERS}, headers={"Accept": accept})
    assert response.status_code == 200 and response.mimetype == mimetype
    if mimetype == "text/csv":
        rows = list(csv.DictReader(io.StringIO(response.data.decode())))
        assert {r["runner"].rsplit("/", 1)[1]: int(r["cores"]) for r in rows} == EXPECTED
    if mimetype == "application/sparql-results+xml":
        assert b"<sparql" in response.data and b"paris-cluster" in response.data
    if mimetype == "text/tab-separated-values":
        assert response.data.startswith(b"?runner\t?cores")


def test_ask_answers_a_boolean(client: FlaskClient) -> None:
    assert client.get("/sparql", query_string={"query": ASK}).json["boolean"] is True
    xml = client.get("/sparql", query_string={"query": ASK}, headers={"Accept": "application/sparql-results+xml"})
    assert b"<boolean>true</boolean>" in xml.data


@pytest.mark.parametrize("accept, mimetype, rdflib_format", [
    ("text/turtle", "text/turtle", "turtle"),
    ("application/n-triples", "application/n-triples", "nt"),
    ("application/ld+json", "application/ld+json", "json-ld"),
    ("application/rdf+xml", "application/rdf+xml", "xml"),
    ("application/sparql-results+xml, application/rdf+xml", "application/rdf+xml", "xml"),  # rdflib's SPARQLStore
])
def test_construct_results_are_negotiated_rdf(client: FlaskClient, accept: str, mimetype: str,
                                               rdflib_format: str) -> None:
    response = client.post("/sparql", data={"query": CONSTRUCT}, headers={"Accept": accept})
    assert response.status_code == 200 and response.mimetype == mimetype
    graph = Graph().parse(data=response.data, format=rdflib_format)
    assert len(graph) == 5


def test_unacceptable_accept_is_406(client: FlaskClient) -> None:
    response = client.get("/sparql", query_string={"query": RUNNERS}, headers={"Accept": "image/png"})
    assert response.status_code == 406 and response.json["error"] == "not acceptable"
    response = client.get("/sparql", query_string={"query": CONSTRUCT}, headers={"Accept": "text/csv"})
    assert response.status_code == 406


def test_dataset_parameters_choose_the_graphs(client: FlaskClient) -> None:
    count = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"
    union = int(client.get("/sparql", query_string={"query": count}).json["results"]["bindings"][0]["n"]["value"])
    only_ontology = client.get("/sparql", query_string={"query": count, "default-graph-uri": str(ONTOLOGY_GRAPH)})
    ontology = int(only_ontology.json["results"]["bindings"][0]["n"]["value"])
    assert 0 < ontology < union
    named = client.post("/sparql", data={"query": "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }",
                                         "named-graph-uri": str(ONTOLOGY_GRAPH)})
    assert [b["g"]["value"] for b in named.json["results"]["bindings"]] == [str(ONTOLOGY_GRAPH)]
    empty_default = client.post("/sparql", data={"query": count, "named-graph-uri": str(ONTOLOGY_GRAPH)})
    assert empty_default.json["results"]["bindings"][0]["n"]["value"] == "0"
    bad = client.get("/sparql", query_string={"query": count, "default-graph-uri": "not an iri"})
    assert bad.status_code == 400


@pytest.mark.parametrize("send, status, fragment", [
    (lambda c: c.get("/sparql"), 400, "missing 'query'"),
    (lambda c: c.get("/sparql?query=" + quote(RUNNERS) + "&query=" + quote(ASK)), 400, "exactly one"),
    (lambda c: c.post("/sparql?query=x", data={"query": RUNNERS}), 400, "both in the URL and in the body"),
    (lambda c: c.post("/sparql?query=x", data=RUNNERS, content_type="application/sparql-query"), 400, "both"),
    (lambda c: c.post("/sparql", data=RUNNERS, content_type="text/plain"), 415, "application/sparql-query"),
    (lambda c: c.post("/sparql", data=json.dumps({"query": RUNNERS}), content_type="application/json"), 415, ""),
    (lambda c: c.get("/sparql", query_string={"query": "SELECT * WHERE { ?s ?p }"}), 400, "SPARQL syntax error"),
    (lambda c: c.get("/sparql", query_string={"update": "DROP ALL"}), 403, "read-only"),
    (lambda c: c.post("/sparql", data={"update": "DROP ALL"}), 403, "read-only"),
    (lambda c: c.post("/sparql", data="DROP ALL", content_type="application/sparql-update"), 403, "read-only"),
    (lambda c: c.post("/sparql", data={"query": "# sneaky\nPREFIX a: <a:b>\nDELETE WHERE { ?s ?p ?o }"}), 403, ""),
    (lambda c: c.get("/sparql", query_string={"query": "INSERT DATA { <a:b> <a:b> <a:b> }"}), 403, "read-only"),
    (lambda c: c.get("/sparql", query_string={"query": "SELECT * WHERE " + "{" * 100 + "}" * 100}), 400, "nests"),
    (lambda c: c.post("/sparql", data=b"\xff\xfe", content_type="application/sparql-query"), 400, "UTF-8"),
])
def test_refusals_are_json_and_change_nothing(client: FlaskClient, store: Store, send, status: int,
                                              fragment: str) -> None:
    before = store.quad_count()
    response = send(client)
    assert response.status_code == status, response.data
    assert response.is_json and fragment in response.json["detail"]
    assert store.quad_count() == before


def test_result_size_limit(app: Flask, client: FlaskClient) -> None:
    app.config["MAX_RESULT_BYTES"] = 2000
    response = client.get("/sparql", query_string={"query": "SELECT * WHERE { ?s ?p ?o }"})
    assert response.status_code == 400 and response.json["error"] == "result too large"
    app.config["MAX_RESULT_BYTES"] = 10_000_000
    assert client.get("/sparql", query_string={"query": "SELECT * WHERE { ?s ?p ?o } LIMIT 3"}).status_code == 200


def test_time_limit_stops_a_streaming_query(embedded_store: Store) -> None:
    load_federation(embedded_store)
    app = create_app({"STORE_INSTANCE": embedded_store, "QUERY_TIMEOUT_SECONDS": 0.3,
                      "MAX_RESULT_BYTES": 10**12, "QUERY_WORKERS": 1})
    client = app.test_client()
    started = time.monotonic()
    response = client.get("/sparql", query_string={"query": "SELECT * WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"})
    assert response.status_code == 503 and response.json["error"] == "query timeout"
    assert response.headers["Retry-After"] == "1"
    assert time.monotonic() - started < 5
    # the streaming query was stopped at its next write, so the only slot frees quickly
    deadline = time.monotonic() + 10
    while client.get("/sparql", query_string={"query": ASK}).status_code != 200:
        assert time.monotonic() < deadline, "the stopped query kept its slot"
        time.sleep(0.05)


def test_an_aggregate_is_stopped_at_the_deadline_and_its_worker_slot_freed(embedded_store: Store) -> None:
    """On an on-disk store the query runs in a worker process: at the deadline the worker is killed, so the
    only slot is free for the next query at once (no 'busy')."""
    load_federation(embedded_store)
    app = create_app({"STORE_INSTANCE": embedded_store, "QUERY_TIMEOUT_SECONDS": 0.5, "QUERY_WORKERS": 1})
    client = app.test_client()
    slow = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"  # 935³ rows: minutes
    try:
        response = client.get("/sparql", query_string={"query": slow})
        assert response.status_code == 503 and "stopped" in response.json["detail"]
        assert client.get("/sparql", query_string={"query": ASK}).json == {"head": {}, "boolean": True}
        assert app.extensions["kgsched.query_workers"].replaced == 1
    finally:
        close_app(app)


def test_in_thread_queries_that_cannot_be_interrupted_hold_their_slot_and_others_get_busy(
        embedded_store: Store) -> None:
    """QUERY_ISOLATION = thread (what an in-memory store gets): an aggregate computes everything before its
    first write, so the request gets 503 at the deadline, the query finishes in the background, and
    meanwhile the bounded pool answers 'busy' instead of piling up."""
    load_federation(embedded_store)
    app = create_app({"STORE_INSTANCE": embedded_store, "QUERY_TIMEOUT_SECONDS": 0.1, "QUERY_WORKERS": 1,
                      "QUERY_ISOLATION": "thread"})
    client = app.test_client()
    slow = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g <https://w3id.org/kgsched#cores> ?x }"
    results: dict[str, int] = {}
    thread = threading.Thread(target=lambda: results.update(
        slow=client.get("/sparql", query_string={"query": slow}).status_code))
    thread.start()
    thread.join()
    assert results["slow"] == 503
    busy = client.get("/sparql", query_string={"query": ASK})
    assert busy.status_code == 503 and busy.json["error"] == "busy"
    deadline = time.monotonic() + 120
    while client.get("/sparql", query_string={"query": ASK}).status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.1)
