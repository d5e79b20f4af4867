"""POST /plans/<id>/replan and the stalled view, through the real Flask app on the embedded store: who may
re-plan, that the recorded request is rebuilt exactly (nested expressions included), that queued jobs
are kept and given the new plan's runners, and that bad calls change nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from conftest import ROOT
from kgsched.graph.store import Store
from kgsched.service import close_app, create_app
from service_support import (
    ADMIN_HEADERS,
    ADMIN_TOKEN,
    ALICE,
    ALICE_LAPTOP,
    BOB,
    GENEVA,
    PARIS,
    bearer,
    load_federation,
)

RUNNERS = (GENEVA, PARIS, ALICE_LAPTOP)
REQUEST = json.loads((ROOT / "examples" / "requests" / "combined-light-curve.json").read_text())


def make_client(store: Store, **config: object) -> Iterator[FlaskClient]:
    load_federation(store)
    app: Flask = create_app({"STORE_INSTANCE": store, "ADMIN_TOKEN": ADMIN_TOKEN,
                             "ADMIN_AGENT": "https://example.org/fed/admin", **config})
    yield app.test_client()
    close_app(app)


@pytest.fixture
def client(embedded_store: Store) -> Iterator[FlaskClient]:
    """The runners of the example federation, each having called the service once (so none is silent)."""
    for test_client in make_client(embedded_store):
        for runner in RUNNERS:
            test_client.post("/jobs/claim", headers=token(test_client, runner))
        yield test_client


def token(client: FlaskClient, agent: object) -> dict[str, str]:
    response = client.post("/tokens", json={"agent": str(agent)}, headers=ADMIN_HEADERS)
    assert response.status_code == 201, response.json
    return bearer(response.json["token"])


def quads(store: Store) -> int:
    return int(store.select("SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } }")[0]["n"])


def test_the_requester_replans_keeping_the_queued_jobs(client: FlaskClient, embedded_store: Store) -> None:
    alice = token(client, ALICE)
    planned = client.post("/plans", json=REQUEST, headers=alice)
    assert planned.status_code == 201
    plan_id = planned.headers["Location"].rsplit("/", 1)[1]
    listed = client.get(f"/plans/{plan_id}/jobs").json
    assert listed["stalled"] is False and all(j["stalled"] is None for j in listed["jobs"]), listed

    replanned = client.post(f"/plans/{plan_id}/replan", headers=alice)
    assert replanned.status_code == 201, replanned.json
    assert replanned.json["revision_of"] == planned.json["plan"]["plan"]
    new, old = replanned.json["plan"], planned.json["plan"]
    assert new["plan"] != old["plan"] and new["root"] == old["root"]  # the request rebuilt exactly
    assert sorted(s["address"] for s in new["steps"]) == sorted(s["address"] for s in old["steps"])
    assert {j["job"] for j in replanned.json["jobs"]} == {j["job"] for j in planned.json["jobs"]}
    assert all(not j["new"] and j["refreshed"] for j in replanned.json["jobs"])
    new_id = new["plan"].rsplit("/", 1)[1]
    assert len(client.get(f"/plans/{new_id}/jobs").json["jobs"]) == 3  # the kept jobs belong to both plans
    assert client.post(f"/plans/{plan_id}/replan", headers=ADMIN_HEADERS).status_code == 201


@pytest.mark.parametrize("who, status", [("nobody", 401), ("bob", 403)])
def test_only_the_requester_or_the_administrator_may_replan(client: FlaskClient, embedded_store: Store,
                                                            who: str, status: int) -> None:
    planned = client.post("/plans", json=REQUEST, headers=token(client, ALICE))
    plan_id = planned.headers["Location"].rsplit("/", 1)[1]
    headers = token(client, BOB) if who == "bob" else {}
    before = quads(embedded_store)
    response = client.post(f"/plans/{plan_id}/replan", headers=headers)
    assert response.status_code == status and response.json["detail"]
    assert quads(embedded_store) == before


@pytest.mark.parametrize("plan_id", ["0" * 32, "not-a-plan"])
def test_replanning_an_unknown_plan_is_not_found(client: FlaskClient, plan_id: str) -> None:
    assert client.post(f"/plans/{plan_id}/replan", headers=token(client, ALICE)).status_code == 404


@pytest.mark.parametrize("silence", [300, 0])
def test_a_job_whose_able_runners_are_all_silent_is_stalled(embedded_store: Store, silence: int) -> None:
    for client in make_client(embedded_store, RUNNER_SILENCE_SECONDS=silence):
        alice = token(client, ALICE)
        planned = client.post("/plans", json=REQUEST, headers=alice)
        plan_id = planned.headers["Location"].rsplit("/", 1)[1]
        listed = client.get(f"/plans/{plan_id}/jobs").json
        assert listed["stalled"] is True  # no runner has called the service yet
        assert all("have not been in touch for" in j["stalled"] for j in listed["jobs"])
        geneva = token(client, GENEVA)
        assert client.post("/jobs/claim", headers=geneva).status_code == 200  # Geneva is in touch now
        after = {j["job"]: j for j in client.get("/jobs").json["jobs"]}
        queued = [j for j in after.values() if j["state"] == "queued"]
        assert len(queued) == 2
        if silence:
            assert all(j["stalled"] is None for j in queued)  # Geneva may run them
        else:
            assert all("have not been in touch for 0 s" in j["stalled"] for j in queued)
        claimed = [j for j in after.values() if j["state"] == "claimed"]
        assert len(claimed) == 1 and claimed[0]["stalled"] is None
