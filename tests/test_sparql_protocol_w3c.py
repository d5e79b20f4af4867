"""The W3C SPARQL 1.1 Protocol test suite's query tests, against ``/sparql`` on the embedded store.

Modelled on the suite's manifest (https://www.w3.org/2009/sparql/docs/tests/data-sparql11/protocol/)
and its validator: one case per query test, each asserting what the manifest requires — the status
class (2xx/3xx, or 4xx for the ``bad_*`` tests), the result media type, and the boolean or rows. The
data are the suite's: graphs data0.rdf … data3.rdf, each saying ``<dataN.rdf> a foaf:Document``.
The update tests are not run: this endpoint refuses updates by design (403, tested at the end).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from flask.testing import FlaskClient
from rdflib import Graph, URIRef
from rdflib.namespace import FOAF, RDF

from kgsched.graph.store import EmbeddedStore
from kgsched.service import close_app, create_app

DATA = "http://kasei.us/2009/09/sparql/data/"
RESULTS = ("application/sparql-results+xml", "application/sparql-results+json")
GRAPHS = ("application/rdf+xml", "application/rdf+json", "text/turtle")
DIRECT = {"Content-Type": "application/sparql-query"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module")
def client() -> Iterator[FlaskClient]:
    store = EmbeddedStore(None)
    for n in range(4):
        document = URIRef(f"{DATA}data{n}.rdf")
        store.add_to_graph(document, Graph().add((document, RDF.type, FOAF.Document)))
    app = create_app({"STORE_INSTANCE": store, "LOAD_ONTOLOGY": False})
    yield app.test_client()
    close_app(app)
    store.close()


def data(n: int) -> str:
    return f"{DATA}data{n}.rdf"


def positive(response, media_types: tuple[str, ...] = RESULTS):
    assert 200 <= response.status_code < 400, response.data[:500]
    assert response.mimetype in media_types, response.mimetype
    return response


def boolean(response) -> bool:
    if response.mimetype == "application/sparql-results+json":
        return json.loads(response.data)["boolean"]
    return b"<boolean>true</boolean>" in response.data


def negative(response) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.data[:300])


# -- positive tests ---------------------------------------------------------------------------------

def test_query_get(client: FlaskClient) -> None:
    assert boolean(positive(client.get("/sparql?query=ASK%20%7B%7D")))


def test_query_post_form(client: FlaskClient) -> None:
    assert boolean(positive(client.post("/sparql", data="query=ASK%20%7B%7D", headers=FORM)))


def test_query_post_direct(client: FlaskClient) -> None:
    assert boolean(positive(client.post("/sparql", data="ASK {}", headers=DIRECT)))


def test_query_dataset_default_graph(client: FlaskClient) -> None:
    response = client.post("/sparql?" + urlencode({"default-graph-uri": data(1)}),
                           data=f"ASK {{ <{data(1)}> ?p ?o }}", headers=DIRECT)
    assert boolean(positive(response))


def test_query_dataset_default_graphs_get(client: FlaskClient) -> None:
    query = f"ASK {{ <{data(1)}> a ?type . <{data(2)}> a ?type . }}"
    response = client.get("/sparql?" + urlencode([("query", query), ("default-graph-uri", data(1)),
                                                  ("default-graph-uri", data(2))]))
    assert boolean(positive(response))


def test_query_dataset_default_graphs_post(client: FlaskClient) -> None:
    response = client.post("/sparql?" + urlencode([("default-graph-uri", data(1)), ("default-graph-uri", data(2))]),
                           data=f"ASK {{ <{data(1)}> ?p ?o . <{data(2)}> ?p ?o }}", headers=DIRECT)
    assert boolean(positive(response))


def test_query_dataset_named_graphs_post(client: FlaskClient) -> None:
    response = client.post("/sparql?" + urlencode([("named-graph-uri", data(1)), ("named-graph-uri", data(2))]),
                           data="ASK { GRAPH ?g { ?s ?p ?o } }", headers=DIRECT)
    assert boolean(positive(response))


def test_query_dataset_named_graphs_get(client: FlaskClient) -> None:
    query = f"ASK {{ GRAPH ?g1 {{ <{data(1)}> a ?type }} GRAPH ?g2 {{ <{data(2)}> a ?type }} }}"
    response = client.get("/sparql?" + urlencode([("query", query), ("named-graph-uri", data(1)),
                                                  ("named-graph-uri", data(2))]))
    assert boolean(positive(response))


def test_query_dataset_full(client: FlaskClient) -> None:
    response = client.post(
        "/sparql?" + urlencode([("default-graph-uri", data(3)), ("named-graph-uri", data(1)),
                                ("named-graph-uri", data(2))]),
        data="SELECT ?g ?x ?s { ?x ?y ?o  GRAPH ?g { ?s ?p ?o } }", headers={**DIRECT, "Accept": RESULTS[1]})
    rows = json.loads(positive(response).data)["results"]["bindings"]
    assert {(r["g"]["value"], r["x"]["value"], r["s"]["value"]) for r in rows} == {
        (data(1), data(3), data(1)), (data(2), data(3), data(2))}


def test_query_multiple_dataset(client: FlaskClient) -> None:
    """The protocol's dataset wins over the query's FROM (here data3, which would make it false)."""
    query = (f"ASK FROM <{data(3)}> {{ GRAPH ?g1 {{ <{data(1)}> a ?type }} "
             f"GRAPH ?g2 {{ <{data(2)}> a ?type }} }}")
    response = client.post("/sparql", data=urlencode([("query", query), ("named-graph-uri", data(1)),
                                                      ("named-graph-uri", data(2))]), headers=FORM)
    assert boolean(positive(response))


def test_query_content_type_select(client: FlaskClient) -> None:
    response = client.post("/sparql", data=urlencode({"query": "SELECT (1 AS ?value) {}",
                                                      "default-graph-uri": data(0)}), headers=FORM)
    positive(response, (*RESULTS, "text/tab-separated-values", "text/csv"))


def test_query_content_type_ask(client: FlaskClient) -> None:
    response = client.post("/sparql", data=urlencode({"query": "ASK {}", "default-graph-uri": data(0)}),
                           headers=FORM)
    assert boolean(positive(response))


def test_query_content_type_describe(client: FlaskClient) -> None:
    response = client.post("/sparql", data=urlencode({"query": "DESCRIBE <http://example.org/>",
                                                      "default-graph-uri": data(0)}), headers=FORM)
    positive(response, GRAPHS)


def test_query_content_type_construct(client: FlaskClient) -> None:
    response = client.post("/sparql", data=urlencode({"query": "CONSTRUCT { <s> <p> 1 } WHERE {}",
                                                      "default-graph-uri": data(0)}), headers=FORM)
    graph = Graph().parse(data=positive(response, GRAPHS).data, format="turtle")
    # relative IRIs resolve against the endpoint's URL
    assert set(graph.subjects()) == {URIRef("http://localhost/s")}


# -- negative tests ---------------------------------------------------------------------------------

def test_bad_query_method(client: FlaskClient) -> None:
    negative(client.put("/sparql?query=ASK%20%7B%7D"))


def test_bad_multiple_queries(client: FlaskClient) -> None:
    negative(client.get("/sparql?query=ASK%20%7B%7D&query=SELECT%20%2A%20%7B%7D"))


def test_bad_query_wrong_media_type(client: FlaskClient) -> None:
    negative(client.post("/sparql", data="ASK {}", headers={"Content-Type": "text/plain"}))


def test_bad_query_missing_form_type(client: FlaskClient) -> None:
    negative(client.post("/sparql", data="query=ASK%20%7B%7D"))


def test_bad_query_missing_direct_type(client: FlaskClient) -> None:
    negative(client.post("/sparql", data="ASK {}"))


def test_bad_query_non_utf8(client: FlaskClient) -> None:
    negative(client.post("/sparql", data="ASK {}".encode("utf-16"),
                         headers={"Content-Type": "application/sparql-query; charset=UTF-16"}))


def test_bad_query_syntax(client: FlaskClient) -> None:
    negative(client.get("/sparql?query=ASK%20%7B"))


# -- the update tests: refused by design ------------------------------------------------------------

@pytest.mark.parametrize("send", [
    lambda c: c.post("/sparql", data="update=CLEAR%20ALL", headers=FORM),
    lambda c: c.post("/sparql", data="CLEAR ALL", headers={"Content-Type": "application/sparql-update"}),
    lambda c: c.get("/sparql?update=CLEAR%20ALL"),
], ids=["update_post_form", "update_post_direct", "bad_update_get"])
def test_updates_are_refused_and_change_nothing(client: FlaskClient, send) -> None:
    assert send(client).status_code == 403
    assert boolean(positive(client.get("/sparql?" + urlencode({"query": f"ASK {{ GRAPH <{data(1)}> {{ ?s ?p ?o }} }}"}))))
