"""Replicas with Flask's test client on the store matrix: a runner's result records every copy of the
product (its product server, the site's shared directory); only the holder of a live claim of a job
that needed a product may report its replicas unreadable, and only those; a product with no readable
replica is not cache, so it is recomputed; a runner that leaves takes its runner-local replicas along."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from rdflib import Literal, URIRef
from rdflib.namespace import XSD

from conftest import ROOT
from kgsched.cli.runner import runner_description
from kgsched.graph import queries
from kgsched.graph.store import Store
from kgsched.namespaces import KS, KSID
from kgsched.product_urls import storage_key
from kgsched.service import close_app, create_app
from service_support import ADMIN_HEADERS, ADMIN_TOKEN, FED, GENEVA, PARIS, UNIGE, bearer, load_federation, result_for

ALICE = URIRef(FED + "person/alice")
GENEVA_DISK = FED + "storage/geneva-disk"
PARIS_DISK = FED + "storage/paris-disk"
ISGRI = FED + "data/isgri-events-rev2670"


def light_curve(emin: float, emax: float) -> dict:
    return {"workflow": FED + "workflow/light-curve",
            "args": {"events": {"dataset": ISGRI}, "energy_min_kev": emin, "energy_max_kev": emax}}


def shared_geneva_disk(directory: Path) -> bytes:
    """The administrator declares Geneva's disk a shared directory (as its registrant, in its graph)."""
    return f"""@prefix ks: <https://w3id.org/kgsched#> . @prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
    <{GENEVA_DISK}> a ks:Storage ; ks:atSite <{FED}site/geneva> ; ks:layer "disk" ;
        ks:capacityBytes 2000000000000 ; ks:baseUrl "http://geneva.example.org/products/"^^xsd:anyURI ;
        ks:directory "{directory}" .""".encode()


@pytest.fixture
def claim_mode() -> str:
    """The queue a service on a store it was handed uses (docs/claim-protocol.md); the readiness tests
    also run with the in-memory index of a service that opened its embedded store itself."""
    return "protocol"


@pytest.fixture
def app(store: Store, tmp_path: Path, claim_mode: str) -> Iterator[Flask]:
    load_federation(store)
    app = create_app({"STORE_INSTANCE": store, "ADMIN_TOKEN": ADMIN_TOKEN,
                      "ADMIN_AGENT": "https://example.org/fed/admin", "LEASE_SECONDS": 30,
                      "PREFERENCE_SECONDS": 3600, "CLAIM_MODE": claim_mode})
    client = app.test_client()
    registered = client.post("/registrations", data=shared_geneva_disk(tmp_path), content_type="text/turtle",
                             query_string={"as": FED + "admin"}, headers=ADMIN_HEADERS)
    assert registered.status_code == 201, registered.json
    yield app
    close_app(app)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def issue(client: FlaskClient, agent: URIRef) -> dict:
    response = client.post("/tokens", json={"agent": str(agent)}, headers=ADMIN_HEADERS)
    assert response.status_code == 201, response.json
    return response.json


def claim(client: FlaskClient, *runners: dict[str, str]) -> tuple[dict, dict[str, str]]:
    for headers in runners:
        response = client.post("/jobs/claim", headers=headers)
        if response.status_code == 200:
            return response.json, headers
        assert response.status_code == 204, response.json
    raise AssertionError("no runner could claim a job")


def replicas_of(store: Store, product: str) -> dict[str, dict[str, str]]:
    rows = queries.select(store, "product-replicas", {"product": [URIRef(product)]})
    return {str(r["replica"]): {"location": str(r["location"]), "status": str(r.get("status")),
                                "served_by": str(r.get("servedBy"))} for r in rows}


def cached(store: Store, expression: str) -> list[str]:
    return [str(r["product"]) for r in queries.select(store, "cached-products", {"expression": [URIRef(expression)]})]


def test_replicas_are_recorded_checked_and_marked_only_by_a_holder(client: FlaskClient, store: Store) -> None:
    alice = bearer(issue(client, ALICE)["token"])
    geneva, paris = bearer(issue(client, GENEVA)["token"]), bearer(issue(client, PARIS)["token"])
    soft = client.post("/plans", json=light_curve(20, 40), headers=alice).json
    grant, who = claim(client, geneva)
    [mine] = [s for s in grant["storages"] if s["storage"] == GENEVA_DISK]
    assert mine["kind"] == "directory" and "access_key_id" not in json.dumps(grant)  # never credentials
    report = result_for(grant["claim_token"], "soft")
    key = storage_key(report["checksum"])

    # a replica is recorded only where the runner may store it, at the content address (400, nothing written)
    for replicas in ([{"storage": GENEVA_DISK, "location": "elsewhere/x"}],
                     [{"storage": PARIS_DISK, "location": key}],
                     [{"storage": GENEVA_DISK, "location": key, "colour": "red"}]):
        before = store.quad_count()
        refused = client.post(grant["result_url"], json={**report, "replicas": replicas}, headers=who)
        assert refused.status_code == 400, refused.json
        assert store.quad_count() == before
    done = client.post(grant["result_url"], json={**report, "replicas": [{"storage": GENEVA_DISK, "location": key}]},
                       headers=who)
    assert done.status_code == 200, done.json
    product = done.json["product"]
    recorded = replicas_of(store, product)
    assert sorted(r["location"] for r in recorded.values()) == sorted(
        [key, "http://geneva.example.org/products/" + report["location"]])
    assert {r["status"] for r in recorded.values()} == {str(KS.Available)}
    assert cached(store, soft["plan"]["root"]) == [product]

    # the combination needs the soft light curve: its claim lists the replicas, Geneva's own storage first
    combined = client.post("/plans", json={"workflow": FED + "workflow/combine-light-curves",
                                           "args": {"soft": light_curve(20, 40), "hard": light_curve(40, 100)}},
                           headers=alice).json
    assert ("light-curve", "reuse") in [(s["workflow"].rsplit("/", 1)[-1], s["decision"])
                                        for s in combined["plan"]["steps"]]
    hard, who = claim(client, geneva)
    assert client.post(hard["result_url"], json=result_for(hard["claim_token"], "hard"), headers=who).status_code == 200
    grant, who = claim(client, geneva)
    offered = grant["arguments"]["soft"]["replicas"]
    assert [r["location"] for r in offered][0] == key and offered[0]["kind"] == "directory"
    soft_replicas = [r["replica"] for r in offered]
    failures = [{"replica": r, "status": "missing", "reason": "not there"} for r in soft_replicas]
    url = f"/jobs/{grant['job']}/replica-failures"

    before = store.quad_count()
    attempts = [
        (paris, {"claim_token": grant["claim_token"], "failures": failures}, 403),  # not the holder
        (paris, {"claim_token": "guess", "failures": failures}, 403),
        (who, {"claim_token": grant["claim_token"],  # not a replica of this job's inputs
               "failures": [{"replica": str(KSID["replica/0123"]), "status": "missing"}]}, 403),
        (who, {"claim_token": grant["claim_token"], "failures": [*failures[:1],  # all or nothing
                                                                 {"replica": str(KSID["replica/0123"]),
                                                                  "status": "corrupt"}]}, 403),
        (who, {"claim_token": grant["claim_token"], "failures": [{**failures[0], "status": "bored"}]}, 400),
        (who, {"claim_token": grant["claim_token"], "failures": []}, 400),
        ({}, {"claim_token": grant["claim_token"], "failures": failures}, 401),
    ]
    for headers, body, status in attempts:
        answer = client.post(url, json=body, headers=headers)
        assert answer.status_code == status, (body, answer.json)
        assert store.quad_count() == before
    assert cached(store, soft["plan"]["root"]) == [product]

    # the holder reports the first replica missing: the product is still cache (one replica is left) ...
    marked = client.post(url, json={"claim_token": grant["claim_token"], "failures": failures[:1]}, headers=who)
    assert marked.status_code == 200 and marked.json["marked"] == {"missing": soft_replicas[:1]}
    assert cached(store, soft["plan"]["root"]) == [product]
    status = {r: v["status"] for r, v in replicas_of(store, product).items()}
    assert status[soft_replicas[0]] == str(KS.Missing) and status[soft_replicas[1]] == str(KS.Available)
    # ... and once no replica is readable it is not: a new plan recomputes it instead of reusing it
    assert client.post(url, json={"claim_token": grant["claim_token"], "failures": failures[1:]},
                       headers=who).status_code == 200
    assert cached(store, soft["plan"]["root"]) == []
    again = client.post("/plans", json={"request": light_curve(20, 40), "options": {}}, headers=alice).json
    assert [s["decision"] for s in again["plan"]["steps"]] == ["recompute"]

    # a result after the report is fine; a failure report after the result is not (409)
    assert client.post(grant["result_url"], json=result_for(grant["claim_token"], "combined"),
                       headers=who).status_code == 200
    late = client.post(url, json={"claim_token": grant["claim_token"], "failures": failures}, headers=who)
    assert late.status_code == 409

    # the recomputed light curve stores the same bytes at the same places again: those replicas are
    # Available again, and their old failure status, reason and time are gone with the same update
    redo, who = claim(client, geneva)
    assert redo["job"] == again["jobs"][0]["job"]
    stored = client.post(redo["result_url"], json={**result_for(redo["claim_token"], "soft"),
                                                   "replicas": [{"storage": GENEVA_DISK, "location": key}]},
                         headers=who)
    assert stored.status_code == 200, stored.json
    rows = queries.select(store, "replica-statuses", {"replica": [URIRef(r) for r in soft_replicas]})
    assert sorted((str(r["replica"]), str(r["p"]), str(r["o"])) for r in rows) == sorted(
        (replica, str(KS.replicaStatus), str(KS.Available)) for replica in soft_replicas)


def test_a_runner_that_leaves_takes_its_runner_local_replicas_along(client: FlaskClient, store: Store) -> None:
    """Geneva serves products from its own product server: revoking its token marks those replicas gone (the
    copy in the site's shared directory stays). Deregistration is tested with real processes (test_storage_federation)."""
    endpoint = "http://127.0.0.1:9/products/"
    _, description = runner_description(ROOT / "examples" / "runners.ttl", str(GENEVA))
    description.add((GENEVA, KS.productEndpoint, Literal(endpoint, datatype=XSD.anyURI)))
    turtle = description.serialize(format="turtle")
    assert client.post("/registrations", data=turtle, content_type="text/turtle", query_string={"as": str(UNIGE)},
                       headers=ADMIN_HEADERS).status_code == 201
    alice = bearer(issue(client, ALICE)["token"])
    products = {}
    for emin, emax, shared in ((20, 40, True), (40, 100, False)):
        token = issue(client, GENEVA)
        plan = client.post("/plans", json=light_curve(emin, emax), headers=alice).json
        grant, who = claim(client, bearer(token["token"]))
        report = result_for(grant["claim_token"], f"band-{emin}")
        report["location"] = endpoint + report["checksum"].removeprefix("sha256:")
        if shared:
            report["replicas"] = [{"storage": GENEVA_DISK, "location": storage_key(report["checksum"])}]
        done = client.post(grant["result_url"], json=report, headers=who)
        assert done.status_code == 200, done.json
        products[shared] = (plan["plan"]["root"], done.json["product"], token["id"])
    local = [r for r in replicas_of(store, products[False][1]).values()]
    assert [r["served_by"] for r in local] == [str(GENEVA)]

    tokens = client.get("/tokens", query_string={"agent": str(GENEVA)}, headers=ADMIN_HEADERS).json["tokens"]
    for token in tokens[:-1]:  # one token left: Geneva can still serve
        assert client.delete(f"/tokens/{token['id']}", headers=ADMIN_HEADERS).status_code == 200
    assert {r["status"] for r in replicas_of(store, products[False][1]).values()} == {str(KS.Available)}
    assert client.delete(f"/tokens/{tokens[-1]['id']}", headers=ADMIN_HEADERS).status_code == 200
    assert {r["status"] for r in replicas_of(store, products[False][1]).values()} == {str(KS.Gone)}
    assert cached(store, products[False][0]) == []  # only Geneva had it
    statuses = {r["location"]: r["status"] for r in replicas_of(store, products[True][1]).values()}
    assert statuses == {storage_key("sha256:" + products[True][1].rsplit("/", 1)[-1].split("-")[0]): str(KS.Available),
                        endpoint + products[True][1].rsplit("/", 1)[-1].split("-")[0]: str(KS.Gone)}
    assert cached(store, products[True][0]) == [products[True][1]]  # the site's copy outlives the runner


@pytest.mark.parametrize("declaration, status", [
    ('ks:s3Endpoint "https://s3.example.org"^^xsd:anyURI ; ks:bucket "kgsched" ; ks:keyPrefix "runs/"', 201),
    ('ks:directory "/srv/kgsched"', 201),
    ('ks:directory "relative/path"', 422),
    ('ks:s3Endpoint "ftp://s3.example.org"', 422),
    ('ks:bucket "Not_A_Bucket"', 422),
    ('ks:keyPrefix "../escape/"', 422),
    ('ks:s3Endpoint "https://s3.example.org" ; ks:bucket "a-b", "c-d"', 422),
])
def test_a_storage_declaration_is_checked(client: FlaskClient, store: Store, declaration: str, status: int) -> None:
    """The kinds' terms are validated on registration; a bad one changes nothing."""
    turtle = f"""@prefix ks: <https://w3id.org/kgsched#> . @prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
    <{FED}storage/new-store> a ks:Storage ; ks:atSite <{FED}site/paris> ; {declaration} ."""
    before = store.quad_count()
    answer = client.post("/registrations", data=turtle, content_type="text/turtle",
                         query_string={"as": FED + "admin"}, headers=ADMIN_HEADERS)
    assert answer.status_code == status, answer.json
    if status != 201:
        assert store.quad_count() == before


def geneva_serves_from_nowhere(client: FlaskClient) -> str:
    """Geneva's owner registers its batch runner with a product endpoint nobody can reach; returns it."""
    endpoint = "http://127.0.0.1:9/products/"
    _, description = runner_description(ROOT / "examples" / "runners.ttl", str(GENEVA))
    description.add((GENEVA, KS.productEndpoint, Literal(endpoint, datatype=XSD.anyURI)))
    assert client.post("/registrations", data=description.serialize(format="turtle"), content_type="text/turtle",
                       query_string={"as": str(UNIGE)}, headers=ADMIN_HEADERS).status_code == 201
    return endpoint


def test_a_registration_that_drops_a_runner_marks_its_replicas_gone(client: FlaskClient, store: Store) -> None:
    """Geneva's owner registers its graph again without the batch runner: the runner has left."""
    endpoint = geneva_serves_from_nowhere(client)
    alice = bearer(issue(client, ALICE)["token"])
    plan = client.post("/plans", json=light_curve(20, 40), headers=alice).json
    grant, who = claim(client, bearer(issue(client, GENEVA)["token"]))
    report = result_for(grant["claim_token"], "local")
    report["location"] = endpoint + report["checksum"].removeprefix("sha256:")
    product = client.post(grant["result_url"], json=report, headers=who).json["product"]
    assert cached(store, plan["plan"]["root"]) == [product]

    # the owner's new description of its graph no longer names the runner (another resource instead)
    other = f"""@prefix ks: <https://w3id.org/kgsched#> .
    <{UNIGE}> a <http://www.w3.org/ns/org#Organization> ; <http://xmlns.com/foaf/0.1/name> "UNIGE" ."""
    assert client.delete("/registrations", query_string={"as": str(UNIGE)}, headers=ADMIN_HEADERS).status_code == 200
    assert client.post("/registrations", data=other, content_type="text/turtle", query_string={"as": str(UNIGE)},
                       headers=ADMIN_HEADERS).status_code == 201
    assert {r["status"] for r in replicas_of(store, product).values()} == {str(KS.Gone)}
    assert cached(store, plan["plan"]["root"]) == []


def geneva_makes_the_only_copy(client: FlaskClient) -> tuple[dict[str, str], dict]:
    """Geneva, serving products from an address nobody can reach, makes the light curve (20-40 keV):
    its product server holds the only copy. Returns Alice's headers and Geneva's token."""
    endpoint = geneva_serves_from_nowhere(client)
    alice = bearer(issue(client, ALICE)["token"])
    geneva = issue(client, GENEVA)
    client.post("/plans", json=light_curve(20, 40), headers=alice)
    grant, who = claim(client, bearer(geneva["token"]))
    report = result_for(grant["claim_token"], "only-copy")
    report["location"] = endpoint + report["checksum"].removeprefix("sha256:")
    assert client.post(grant["result_url"], json=report, headers=who).status_code == 200
    return alice, geneva


@pytest.mark.parametrize("claim_mode", ["protocol", "index"])
def test_a_job_waits_while_its_inputs_only_product_cannot_be_read(client: FlaskClient, store: Store) -> None:
    """Geneva's product server held the only copy, and Geneva left: a new plan recomputes the light curve,
    and the job combining it is not handed out before the new copy exists (it would fail staging)."""
    alice, geneva = geneva_makes_the_only_copy(client)
    assert client.delete(f"/tokens/{geneva['id']}", headers=ADMIN_HEADERS).status_code == 200  # Geneva leaves

    combined = client.post("/plans", json={"workflow": FED + "workflow/combine-light-curves",
                                           "args": {"soft": light_curve(20, 40), "hard": light_curve(20, 40)}},
                           headers=alice).json
    assert sorted(s["decision"] for s in combined["plan"]["steps"]) == ["recompute", "recompute"]
    paris = bearer(issue(client, PARIS)["token"])
    first, who = claim(client, paris)
    assert "soft" not in first["arguments"]  # the light curve first ...
    assert client.post("/jobs/claim", headers=paris).status_code == 204  # ... the combination waits for it
    remade = client.post(first["result_url"], json=result_for(first["claim_token"], "remade"), headers=who)
    assert remade.status_code == 200
    second, _ = claim(client, paris)
    assert second["arguments"]["soft"]["product"] == remade.json["product"]  # the readable one
    assert [r["location"] for r in second["arguments"]["soft"]["replicas"]] == \
        ["http://paris.example.org/products/" + result_for("", "remade")["location"]]


@pytest.mark.parametrize("claim_mode", ["protocol", "index"])
def test_a_job_whose_input_was_lost_is_stalled_until_re_planned(client: FlaskClient, store: Store) -> None:
    """The combination was planned reusing Geneva's light curve; then Geneva leaves with the only copy. The
    job is not handed out, says why, and re-planning recomputes the light curve for it."""
    alice, geneva = geneva_makes_the_only_copy(client)
    combined = client.post("/plans", json={"workflow": FED + "workflow/combine-light-curves",
                                           "args": {"soft": light_curve(20, 40), "hard": light_curve(20, 40)}},
                           headers=alice)
    assert sorted(s["decision"] for s in combined.json["plan"]["steps"]) == ["recompute", "reuse"]
    [job] = [j["job"] for j in combined.json["jobs"]]
    before = client.get(f"/jobs/{job}").json["stalled"]  # (runners never in touch here may be reported)
    assert before is None or not before.startswith("waiting for its input"), before
    assert client.delete(f"/tokens/{geneva['id']}", headers=ADMIN_HEADERS).status_code == 200  # the only copy goes

    stalled = client.get(f"/jobs/{job}").json["stalled"]
    assert stalled.startswith("waiting for its input ") and "re-plan" in stalled, stalled
    paris = bearer(issue(client, PARIS)["token"])
    assert client.post("/jobs/claim", headers=paris).status_code == 204  # not handed out to fail staging
    plan_id = combined.json["plan"]["plan"].rsplit("/", 1)[-1]
    replanned = client.post(f"/plans/{plan_id}/replan", json={}, headers=alice)
    assert replanned.status_code == 201, replanned.json
    assert sorted(s["decision"] for s in replanned.json["plan"]["steps"]) == ["recompute", "recompute"]
    stalled = client.get(f"/jobs/{job}").json["stalled"]
    assert stalled is None or not stalled.startswith("waiting for its input"), stalled  # the input is being remade
    first, who = claim(client, paris)
    assert "soft" not in first["arguments"]  # the light curve, then the combination
    again = client.post(first["result_url"], json=result_for(first["claim_token"], "again"), headers=who)
    assert again.status_code == 200
    second, _ = claim(client, paris)
    assert second["job"] == job
