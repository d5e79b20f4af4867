"""``/registrations`` with Flask's test client: Turtle in with a bearer token, 201 or a clear refusal,
the SHACL report as JSON, text and Turtle, the registrant's own graph read and deleted. Every
refused request leaves the store's quad count exactly as it was."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from rdflib import Graph, URIRef

from conftest import EXAMPLES, example_documents
from kgsched.graph.store import Store
from kgsched.registry.registration import registrant_graph
from kgsched.registry.tokens import TokenStore
from kgsched.service import close_app, create_app
from service_support import ADMIN_HEADERS, ADMIN_TOKEN, ALICE, bearer, load_federation

MALLORY = URIRef("https://example.org/fed/person/mallory")
TURTLE = {"Content-Type": "text/turtle"}
INVALID = sorted((EXAMPLES / "invalid").glob("*.ttl"))
OWN_RUNNER = b"""@prefix ks: <https://w3id.org/kgsched#> . @prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix foaf: <http://xmlns.com/foaf/0.1/> .
<https://example.org/fed/person/mallory> a foaf:Person ; foaf:name "Mallory" .
<https://example.org/mallory/runner> a ks:JobRunner ; rdfs:label "Mallory's box" ;
  ks:ownedBy <https://example.org/fed/person/mallory> ; ks:atSite <https://example.org/fed/site/geneva> ;
  ks:cores 4 ; ks:memoryBytes 1000 ; ks:supports ks:PythonCallable ; ks:serves ks:Anyone ."""


@pytest.fixture
def app(embedded_store: Store) -> Iterator[Flask]:
    load_federation(embedded_store)
    app = create_app({"STORE_INSTANCE": embedded_store, "ADMIN_TOKEN": ADMIN_TOKEN,
                      "ADMIN_AGENT": "https://example.org/fed/admin", "MAX_CONTENT_LENGTH": 200_000})
    yield app
    close_app(app)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def mallory(app: Flask) -> dict[str, str]:
    state = app.extensions["kgsched"]
    return bearer(TokenStore(state.store, state.admin_agent).issue(MALLORY, state.admin_agent).secret)


def test_register_read_and_delete_your_own_graph(client: FlaskClient, mallory: dict[str, str],
                                                 embedded_store: Store) -> None:
    created = client.post("/registrations", data=OWN_RUNNER, headers=mallory | TURTLE)
    assert created.status_code == 201, created.json
    assert created.json["registrant"] == str(MALLORY)
    assert created.json["resources"] == [str(MALLORY), "https://example.org/mallory/runner"]
    assert created.headers["Location"].endswith("/registrations")
    turtle = client.get("/registrations", headers=mallory)
    assert turtle.mimetype == "text/turtle"
    assert (URIRef("https://example.org/mallory/runner"), None, None) in Graph().parse(data=turtle.data)
    jsonld = client.get("/registrations", headers=mallory | {"Accept": "application/ld+json"})
    assert jsonld.mimetype == "application/ld+json"
    assert len(Graph().parse(data=jsonld.data, format="json-ld")) == len(Graph().parse(data=turtle.data))
    removed = client.delete("/registrations", headers=mallory)
    assert removed.status_code == 200 and removed.json["removed"] > 0
    assert not embedded_store.ask("ASK { GRAPH ?g { ?s ?p ?o } }", [{"g": registrant_graph(MALLORY)}])
    assert client.get("/registrations", headers=mallory).status_code == 404
    assert client.delete("/registrations", headers=mallory).status_code == 404


def test_admin_registers_for_another_registrant_and_others_cannot(client: FlaskClient,
                                                                   mallory: dict[str, str]) -> None:
    alices = (OWN_RUNNER.replace(b'<https://example.org/fed/person/mallory> a foaf:Person ; foaf:name "Mallory" .', b"")
              .replace(b"ks:ownedBy <https://example.org/fed/person/mallory>", f"ks:ownedBy <{ALICE}>".encode()))
    response = client.post(f"/registrations?as={ALICE}", data=alices, headers=ADMIN_HEADERS | TURTLE)
    assert response.status_code == 201 and response.json["registrant"] == str(ALICE)
    refused = client.post(f"/registrations?as={ALICE}", data=alices, headers=mallory | TURTLE)
    assert refused.status_code == 403


def expected_fragment(path: Path) -> str:
    return re.match(r"# expect: (.*)", path.read_text().splitlines()[0]).group(1)  # type: ignore[union-attr]


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_every_invalid_example_is_refused_over_http_and_changes_nothing(
        client: FlaskClient, mallory: dict[str, str], embedded_store: Store, path: Path) -> None:
    before = embedded_store.quad_count()
    response = client.post("/registrations", data=path.read_bytes(), headers=mallory | TURTLE)
    assert response.status_code in (400, 403, 422), response.json
    assert response.is_json and {"error", "detail"} <= set(response.json)
    assert expected_fragment(path) in response.json["detail"] + response.json.get("report", "")
    assert embedded_store.quad_count() == before


def test_shacl_report_as_json_text_and_turtle(client: FlaskClient, mallory: dict[str, str],
                                              embedded_store: Store) -> None:
    bad = (EXAMPLES / "invalid" / "runner-zero-cores.ttl").read_bytes()
    before = embedded_store.quad_count()
    as_json = client.post("/registrations", data=bad, headers=mallory | TURTLE)
    assert as_json.status_code == 422
    assert as_json.json["results"][0]["path"] == "https://w3id.org/kgsched#cores"
    assert "Validation Report" in as_json.json["report"]
    report = Graph().parse(data=as_json.json["report_turtle"], format="turtle")
    assert len(report) > 5
    as_turtle = client.post("/registrations", data=bad, headers=mallory | TURTLE | {"Accept": "text/turtle"})
    assert as_turtle.status_code == 422 and as_turtle.mimetype == "text/turtle"
    assert len(Graph().parse(data=as_turtle.data, format="turtle")) == len(report)
    as_text = client.post("/registrations", data=bad, headers=mallory | TURTLE | {"Accept": "text/plain"})
    assert as_text.status_code == 422 and as_text.mimetype == "text/plain"
    assert b"A runner needs exactly one ks:cores" in as_text.data
    assert embedded_store.quad_count() == before


@pytest.mark.parametrize("headers, body, status", [
    ({}, OWN_RUNNER, 401),
    ({"Authorization": "Bearer not-a-token"}, OWN_RUNNER, 401),
    ({"Authorization": "Basic YTpi"}, OWN_RUNNER, 401),
    (ADMIN_HEADERS | {"Content-Type": "application/json"}, b'{"a": 1}', 415),
    (ADMIN_HEADERS | {"Content-Type": "text/turtle"}, b"@prefix broken", 400),
    (ADMIN_HEADERS | {"Content-Type": "text/turtle"}, b"# only a comment\n", 400),
    (ADMIN_HEADERS | {"Content-Type": "text/turtle"}, b"<a:b> <a:c> <a:d> . " * 20_000, 413),
])
def test_bad_requests_are_refused_and_change_nothing(client: FlaskClient, embedded_store: Store,
                                                     headers: dict[str, str], body: bytes, status: int) -> None:
    before = embedded_store.quad_count()
    response = client.post("/registrations", data=body, headers=headers | ({} if "Content-Type" in headers
                                                                          else TURTLE))
    assert response.status_code == status and response.is_json
    assert embedded_store.quad_count() == before


def test_describing_what_someone_else_owns_is_403(client: FlaskClient, mallory: dict[str, str],
                                                  embedded_store: Store) -> None:
    before = embedded_store.quad_count()
    takeover = b'<https://example.org/fed/site/geneva> <http://www.w3.org/2000/01/rdf-schema#label> "Mallory\'s" .'
    response = client.post("/registrations", data=takeover, headers=mallory | TURTLE)
    assert response.status_code == 403 and response.json["error"] == "not owner"
    # alice is a registrant: her IRI is her identity, which only she may describe
    identity = b'<https://example.org/fed/person/alice> <http://xmlns.com/foaf/0.1/name> "Mallory" .'
    response = client.post("/registrations", data=identity, headers=mallory | TURTLE)
    assert response.status_code == 403 and response.json["error"] == "not entitled"
    assert "identity of another agent" in response.json["detail"]
    assert embedded_store.quad_count() == before


def test_one_job_tokens_cannot_register(app: Flask, client: FlaskClient, embedded_store: Store) -> None:
    state = app.extensions["kgsched"]
    one = TokenStore(state.store, state.admin_agent).issue(MALLORY, state.admin_agent, one_job=True)
    before = embedded_store.quad_count()
    assert client.post("/registrations", data=OWN_RUNNER, headers=bearer(one.secret) | TURTLE).status_code == 403
    assert embedded_store.quad_count() == before


def test_the_whole_example_federation_registers_over_http(tmp_path: Path) -> None:
    """Each part as its party (the administrator acting for each with ?as=); all at once as one registrant
    is refused, since it would state other owners' runners and another verifier's verifications."""
    from kgsched.dev.parties import party_registrations

    app = create_app({"STORE": str(tmp_path / "kg"), "ADMIN_TOKEN": ADMIN_TOKEN})
    client = app.test_client()
    body = b"\n".join(data for _, data in example_documents())
    assert client.post("/registrations", data=body, headers=ADMIN_HEADERS | TURTLE).status_code == 403
    resources = 0
    for party, turtle in party_registrations(example_documents()):
        response = client.post("/registrations", query_string={"as": str(party)}, data=turtle,
                               headers=ADMIN_HEADERS | TURTLE)
        assert response.status_code == 201, response.json
        resources += len(response.json["resources"])
    assert resources > 20
    close_app(app)
