"""Tokens, plans, the job routes and credits with Flask's test client, on both stores: a request is
planned by the real planner, its jobs are claimed in dependency order by runners with their own
tokens, heartbeats and results are fenced, and the product's acknowledgements span the whole chain."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from rdflib import Graph, URIRef

from conftest import ROOT
from kgsched.dev.workloads import queue_light_curves
from kgsched.graph.store import Store
from service_support import (
    ADMIN_HEADERS,
    ALICE,
    ALICE_LAPTOP,
    BOB,
    CAROL,
    ERIN,
    GENEVA,
    PARIS,
    VOLUNTEER,
    bearer,
    federation_app,
    result_for,
    utc,
)

REQUESTS = ROOT / "examples" / "requests"


@pytest.fixture
def app(store: Store) -> Iterator[Flask]:
    with federation_app(store) as app:
        yield app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def token_for(client: FlaskClient, agent: URIRef, headers: dict[str, str] = ADMIN_HEADERS, **extra) -> str:
    response = client.post("/tokens", json={"agent": str(agent), **extra}, headers=headers)
    assert response.status_code == 201, response.json
    return response.json["token"]


def test_tokens_issue_list_revoke_whoami(client: FlaskClient) -> None:
    alice = bearer(token_for(client, ALICE, label="laptop"))
    me = client.get("/whoami", headers=alice).json
    assert me["agent"] == str(ALICE) and not me["admin"] and me["runner_kinds"] == []
    own = bearer(token_for(client, ALICE, headers=alice))  # for herself
    assert client.post("/tokens", json={"agent": str(GENEVA)}, headers=alice).status_code == 403
    assert client.post("/tokens", json={"agent": "nope"}, headers=alice).status_code == 400
    assert client.post("/tokens", data="agent", headers=alice).status_code == 415
    assert client.post("/tokens", json={"agent": str(ALICE), "one_job": "yes"}, headers=alice).status_code == 400
    listed = client.get("/tokens", headers=alice).json["tokens"]
    assert len(listed) == 2 and all("token" not in t for t in listed)
    assert client.get("/tokens", query_string={"agent": str(BOB)}, headers=alice).status_code == 403
    assert len(client.get("/tokens", headers=ADMIN_HEADERS).json["tokens"]) == 2
    victim = listed[0]["id"]
    assert client.delete(f"/tokens/{victim}", headers=own).status_code == 200
    assert client.delete(f"/tokens/{victim}", headers=ADMIN_HEADERS).status_code == 404
    anonymous = client.post("/tokens", json={"agent": str(VOLUNTEER)}, headers=ADMIN_HEADERS).json
    assert anonymous["one_job"] is True  # an anonymous job-token runner only ever gets one-job tokens


@pytest.mark.parametrize("method, path, body, who, status", [
    ("POST", "/tokens", {"agent": str(GENEVA)}, "alice", 403),
    ("POST", "/tokens", {"agent": "not an iri"}, "alice", 400),
    ("POST", "/tokens", {"agent": str(ALICE), "colour": "red"}, "alice", 400),
    ("POST", "/tokens", {"agent": str(ALICE), "label": 7}, "alice", 400),
    ("POST", "/tokens", None, "alice", 415),
    ("POST", "/tokens", {"agent": str(ALICE)}, "nobody", 401),
    ("DELETE", "/tokens/" + "0" * 32, None, "alice", 404),
    ("DELETE", "/tokens/not-an-id", None, "alice", 404),
])
def test_token_refusals_change_nothing(client: FlaskClient, store: Store, method: str, path: str,
                                       body: object, who: str, status: int) -> None:
    headers = bearer(token_for(client, ALICE)) if who == "alice" else {}
    before = store.quad_count()
    response = client.open(path, method=method, json=body, headers=headers) if body is not None else \
        client.open(path, method=method, data="x", content_type="text/plain", headers=headers)
    assert response.status_code == status and response.is_json, response.json
    assert store.quad_count() == before


def test_an_owner_issues_tokens_for_its_own_runners(client: FlaskClient) -> None:
    """Dave owns and registered the Paris cluster: he issues its runner tokens; neither the registrant of the
    rest of the federation nor another owner may (docs/authority.md)."""
    dave = bearer(token_for(client, URIRef("https://example.org/fed/person/dave")))
    issued = client.post("/tokens", json={"agent": str(PARIS)}, headers=dave)
    assert issued.status_code == 201 and issued.json["agent"] == str(PARIS)
    directory = bearer(token_for(client, URIRef("https://example.org/fed/admin")))
    assert client.post("/tokens", json={"agent": str(PARIS)}, headers=directory).status_code == 403
    erin = bearer(token_for(client, URIRef("https://example.org/fed/person/erin")))
    assert client.post("/tokens", json={"agent": str(PARIS)}, headers=erin).status_code == 403


def test_plan_claim_heartbeat_report_and_acknowledge_the_whole_chain(client: FlaskClient, store: Store) -> None:
    alice = bearer(token_for(client, ALICE))
    runners = {str(r): bearer(token_for(client, r)) for r in (GENEVA, PARIS, ALICE_LAPTOP)}
    planned = client.post("/plans", json=json.loads((REQUESTS / "combined-light-curve.json").read_text()),
                          headers=alice)
    assert planned.status_code == 201, planned.json
    assert planned.headers["Location"].startswith("/plans/")
    jobs = planned.json["jobs"]
    assert len(jobs) == 3 and all(j["new"] for j in jobs)
    again = client.post("/plans", json={"request": json.loads((REQUESTS / "combined-light-curve.json").read_text())},
                        headers=alice)
    assert {j["job"] for j in again.json["jobs"]} == {j["job"] for j in jobs}  # not queued twice
    plan_id = planned.headers["Location"].rsplit("/", 1)[1]
    assert len(client.get(f"/plans/{plan_id}/jobs").json["jobs"]) == 3
    plan_rdf = Graph().parse(data=client.get(f"/plans/{plan_id}").data, format="turtle")
    assert len(plan_rdf) > 10
    products = []
    for _ in range(3):
        grant = None
        for headers in runners.values():
            response = client.post("/jobs/claim", headers=headers)
            if response.status_code == 200:
                grant, who = response.json, headers
                break
            assert response.status_code == 204
        assert grant is not None
        assert grant["workflow"]["implementation_kind"] == "https://w3id.org/kgsched#PythonCallable"
        beat = client.post(grant["heartbeat_url"], json={"claim_token": grant["claim_token"], "progress": 0.5},
                           headers=who)
        assert beat.status_code == 200
        done = client.post(grant["result_url"], json=result_for(grant["claim_token"], grant["job"]), headers=who)
        assert done.status_code == 200 and done.json["state"] == "done"
        products.append(done.json["product"])
        if "soft" in grant["arguments"]:  # the combine step: both inputs were ready, with their products
            assert {grant["arguments"][n]["product"] for n in ("soft", "hard")} <= set(products)
    root = products[-1]
    acknowledged = client.get("/acknowledgements", query_string={"product": root}).json
    roles = {a["agent"]: a["roles"] for a in acknowledged["agents"]}
    assert roles[str(BOB)] == ["author"] and roles[str(CAROL)] == ["verifier"] and roles[str(ERIN)] == ["data"]
    assert "Erin Schulz" in acknowledged["sentence"]
    sentence = client.get("/acknowledgements", query_string={"product": root}, headers={"Accept": "text/plain"})
    assert sentence.mimetype == "text/plain" and sentence.data.decode().strip() == acknowledged["sentence"]
    product_id = root.rsplit("/", 1)[1]
    for accept, fmt in [("text/turtle", "turtle"), ("application/ld+json", "json-ld"),
                        ("application/n-triples", "nt")]:
        provenance = client.get(f"/products/{product_id}/provenance", headers={"Accept": accept})
        assert provenance.status_code == 200 and provenance.mimetype == accept
        graph = Graph().parse(data=provenance.data, format=fmt)
        assert len(set(graph.subjects())) > 10  # the product, both upstream products, executions, credits
    assert client.get(f"/products/{product_id}/provenance", headers={"Accept": "image/gif"}).status_code == 406
    assert client.get("/products/abc/provenance").status_code == 404
    credits = {c["agent"]: c for c in client.get("/credits").json["agents"]}
    assert credits[str(BOB)]["by_reason"] == {"workflow authorship": 3.0}
    assert client.get("/credits", query_string={"agent": str(ERIN)}).json["agents"][0]["total"] == 2.0
    listing = client.get("/jobs", query_string={"state": "done"}).json
    assert listing["count"] == 3
    assert client.get("/jobs", query_string={"state": "bogus"}).status_code == 400


@pytest.mark.parametrize("body, content_type, status", [
    ({"workflow": "https://example.org/fed/workflow/nope", "args": {}}, "application/json", 400),
    ({"workflow": "https://example.org/fed/workflow/light-curve", "args": {"energy_min_kev": "x"}},
     "application/json", 400),
    ({"request": {}, "colour": "red"}, "application/json", 400),
    ({"request": {}, "options": {"force_recompute": "yes"}}, "application/json", 400),
    ([1, 2], "application/json", 400),
    ("a plan please", "text/plain", 415),
])
def test_bad_plan_requests_are_refused_and_change_nothing(client: FlaskClient, store: Store, body: object,
                                                          content_type: str, status: int) -> None:
    alice = bearer(token_for(client, ALICE))
    before = store.quad_count()
    data = body if isinstance(body, str) else json.dumps(body)
    response = client.post("/plans", data=data, content_type=content_type, headers=alice)
    assert response.status_code == status and response.is_json, response.json
    assert store.quad_count() == before
    assert client.post("/plans", json={}, headers={}).status_code == 401


def test_a_turtle_request_is_planned(client: FlaskClient) -> None:
    alice = bearer(token_for(client, ALICE))
    turtle = """@prefix ks: <https://w3id.org/kgsched#> .
    <urn:r> a ks:Request ; ks:rootExpression <urn:e> .
    <urn:e> a ks:Expression ; ks:workflow <https://example.org/fed/workflow/light-curve> ;
      ks:argument [ ks:name "events" ; ks:dataset <https://example.org/fed/data/isgri-events-rev2670> ],
                  [ ks:name "energy_min_kev" ; ks:value 20.0 ], [ ks:name "energy_max_kev" ; ks:value 40.0 ] ."""
    response = client.post("/plans", data=turtle, content_type="text/turtle", headers=alice)
    assert response.status_code == 201, response.json
    assert [s["decision"] for s in response.json["plan"]["steps"]] == ["recompute"]
    admin = client.post("/plans", json={"request": json.loads((REQUESTS / "periodogram.json").read_text()),
                                        "requester": str(BOB)}, headers=ADMIN_HEADERS)
    assert admin.status_code == 201 and admin.json["plan"]["requester"] == str(BOB)
    forged = client.post("/plans", json={"request": {}, "requester": str(BOB)}, headers=alice)
    assert forged.status_code == 403


def runner_headers(client: FlaskClient, runner: URIRef) -> dict[str, str]:
    return bearer(token_for(client, runner))


def test_claims_need_a_runner_token(client: FlaskClient, store: Store, app: Flask) -> None:
    queue_light_curves(store, app.extensions["kgsched"].queue, 1)
    assert client.post("/jobs/claim").status_code == 401
    assert client.post("/jobs/claim", headers=ADMIN_HEADERS).status_code == 403
    assert client.post("/jobs/claim", headers=bearer(token_for(client, ALICE))).status_code == 403
    assert client.post("/jobs/claim", headers=runner_headers(client, VOLUNTEER)).status_code == 204  # not eligible


def test_fencing_idempotence_and_late_results_over_http(client: FlaskClient, store: Store, app: Flask) -> None:
    queue = app.extensions["kgsched"].queue
    [job] = queue_light_curves(store, queue, 1)
    now = [utc(0)]
    queue.clock = lambda: now[0]
    geneva, paris = runner_headers(client, GENEVA), runner_headers(client, PARIS)
    grant = client.post("/jobs/claim", headers=geneva).json
    assert client.post("/jobs/claim", headers=paris).status_code == 204
    token = grant["claim_token"]
    before = store.quad_count()
    for payload, headers, status in [
        (result_for(token), paris, 403),  # another runner, even with the token
        ({**result_for(token), "size_bytes": -1}, geneva, 400),
        ({**result_for(token), "extra": 1}, geneva, 400),
        (result_for("not-the-token"), geneva, 409),
    ]:
        response = client.post(grant["result_url"], json=payload, headers=headers)
        assert response.status_code == status, response.json
        assert store.quad_count() == before
    assert client.post(grant["result_url"], data="x", headers=geneva).status_code == 415
    assert client.post(grant["heartbeat_url"], json={"claim_token": token, "progress": 7},
                       headers=geneva).status_code == 400
    assert client.post(grant["heartbeat_url"], json={"claim_token": token}, headers=paris).status_code == 403
    assert store.quad_count() == before
    now[0] = utc(40)  # lease (30 s) + skew (2 s) ran out
    second = client.post("/jobs/claim", headers=paris).json
    assert second["job"] == grant["job"]
    late = client.post(grant["result_url"], json=result_for(token), headers=geneva)
    assert late.status_code == 409 and "lease ran out" in late.json["detail"]
    assert client.post(grant["heartbeat_url"], json={"claim_token": token}, headers=geneva).status_code == 409
    first = client.post(second["result_url"], json=result_for(second["claim_token"]), headers=paris)
    repeat = client.post(second["result_url"], json=result_for(second["claim_token"]), headers=paris)
    assert first.status_code == repeat.status_code == 200
    assert repeat.json["already_recorded"] and repeat.json["product"] == first.json["product"]
    other = client.post(second["result_url"], json=result_for(second["claim_token"], "other"), headers=paris)
    assert other.status_code == 409
    described = client.get(f"/jobs/{job.rsplit('/', 1)[1]}").json
    assert described["state"] == "done" and len(described["claims"]) == 2
    assert "claim_token" not in json.dumps(described) and "tokenHash" not in json.dumps(described)


def test_anonymous_runner_claims_one_job_per_token(client: FlaskClient, store: Store, app: Flask) -> None:
    from kgsched.dev.workloads import light_curve_expressions
    from kgsched.jobs.queue import NewJob

    queue = app.extensions["kgsched"].queue
    graph, expressions = light_curve_expressions(2, tag="volunteer")
    store.add_to_graph(URIRef("https://w3id.org/kgsched/graph/plans"), graph)
    queue.enqueue([NewJob(e, (VOLUNTEER,)) for e in expressions])
    one = bearer(token_for(client, VOLUNTEER))
    grant = client.post("/jobs/claim", headers=one)
    assert grant.status_code == 200
    again = client.post("/jobs/claim", headers=one)
    assert again.status_code == 403 and "one job" in again.json["detail"]
    assert client.post("/registrations", data="<a:b> <a:b> <a:b> .", content_type="text/turtle",
                       headers=one).status_code == 403
    result = client.post(grant.json["result_url"], json=result_for(grant.json["claim_token"]), headers=one)
    assert result.status_code == 200, result.json


def test_job_ids_and_listing(client: FlaskClient, store: Store, app: Flask) -> None:
    jobs = queue_light_curves(store, app.extensions["kgsched"].queue, 3)
    listing = client.get("/jobs").json
    assert listing["count"] == 3 and {j["state"] for j in listing["jobs"]} == {"queued"}
    assert client.get("/jobs", query_string={"runner": str(VOLUNTEER)}).json["count"] == 0
    assert client.get(f"/jobs/{jobs[0].rsplit('/', 1)[1]}").json["eligible_runners"]
    assert client.get("/jobs/" + "0" * 32).status_code == 404
    assert client.post("/jobs/" + "0" * 32 + "/result", json={}, headers=ADMIN_HEADERS).status_code == 403
