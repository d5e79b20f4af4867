"""The registry generation (kgsched.registry.generation): every registration, deregistration and token
revocation changes it in the same update, so a replica's cached registry facts (the planner's
eligibility, datasets, bandwidth; the queue's product sources) are read again after another replica
registered — two service processes over one Oxigraph server stay correct."""

from __future__ import annotations

from rdflib import URIRef

from conftest import register_examples
from kgsched.graph.store import RemoteStore, Store
from kgsched.planning.planner import plan_request
from kgsched.registry.generation import generation, registry_cache
from kgsched.registry.registration import Registry, load_ontology
from kgsched.registry.tokens import TokenStore
from planner_support import ALICE, light_curve, runner

REGISTRANT_OF = """PREFIX ks: <https://w3id.org/kgsched#>
SELECT ?registrant WHERE { GRAPH ?g { ?runner ?p ?o . ?g ks:registeredBy ?registrant } } LIMIT 1"""


def able(store: Store) -> set[URIRef]:
    plan = plan_request(store, light_curve(20, 40), ALICE)
    return {r for step in plan.steps for r in step.candidates}


def test_deregistering_through_one_replica_invalidates_the_other_replicas_cache(remote_store: RemoteStore) -> None:
    load_ontology(remote_store)
    register_examples(remote_store)
    first = remote_store  # replica A's handle
    second = RemoteStore(remote_store.query_endpoint)  # replica B's handle on the same server
    paris = runner("paris-cluster")
    assert paris in able(first)
    misses = registry_cache(first).misses
    assert paris in able(first) and registry_cache(first).misses == misses  # served from the cache
    before = generation(first)
    [row] = second.select(REGISTRANT_OF, [{"runner": paris}])
    Registry(second).unregister(row["registrant"])
    assert generation(first) != before
    assert paris not in able(first)  # A read the facts again
    assert registry_cache(first).misses > misses


def test_registering_and_revoking_change_the_generation(remote_store: RemoteStore) -> None:
    load_ontology(remote_store)
    assert generation(remote_store) == frozenset()
    register_examples(remote_store)
    registered = generation(remote_store)
    assert len(registered) == 1
    admin = URIRef("https://example.org/fed/admin")
    token = TokenStore(remote_store, admin).issue(runner("geneva-batch"), admin)
    assert generation(remote_store) == registered  # issuing a token is no registry change
    TokenStore(remote_store, admin).revoke(token.iri)
    assert generation(remote_store) not in (registered, frozenset())


def test_two_apps_over_one_store_see_each_others_registrations_and_revocations_at_once(
        remote_store: RemoteStore) -> None:
    """App A caches the caller's token and runner kinds under the generation; deregistering or revoking
    through app B (its own store handle, its own caches) takes effect at A on the next request."""
    from kgsched.service import close_app, create_app
    from service_support import ADMIN_HEADERS, ADMIN_TOKEN, bearer, load_federation

    load_federation(remote_store)
    config = {"ADMIN_TOKEN": ADMIN_TOKEN, "ADMIN_AGENT": "https://example.org/fed/admin"}
    first = create_app({**config, "STORE_INSTANCE": remote_store})
    second = create_app({**config, "STORE_INSTANCE": RemoteStore(remote_store.query_endpoint)})
    try:
        a, b = first.test_client(), second.test_client()
        tokens = {}
        for name in ("geneva-batch", "paris-cluster"):
            issued = b.post("/tokens", json={"agent": str(runner(name))}, headers=ADMIN_HEADERS)
            assert issued.status_code == 201, issued.json
            tokens[name] = issued.json
        for name, token in tokens.items():  # A learns both tokens and both runners' kinds
            assert a.get("/whoami", headers=bearer(token["token"])).json["runner_kinds"], name
            assert a.post("/jobs/claim", headers=bearer(token["token"])).status_code == 204
        hits = registry_cache(first.extensions["kgsched"].store).hits
        assert a.post("/jobs/claim", headers=bearer(tokens["geneva-batch"]["token"])).status_code == 204
        assert registry_cache(first.extensions["kgsched"].store).hits > hits  # served from A's cache
        # revoked through B: refused by A at once
        assert b.delete(f"/tokens/{tokens['geneva-batch']['id']}", headers=ADMIN_HEADERS).status_code == 200
        assert a.post("/jobs/claim", headers=bearer(tokens["geneva-batch"]["token"])).status_code == 401
        # paris's registrant deregistered through B: paris is no runner for A any more
        [row] = remote_store.select(REGISTRANT_OF, [{"runner": runner("paris-cluster")}])
        second.extensions["kgsched"].registry.unregister(row["registrant"])
        assert a.post("/jobs/claim", headers=bearer(tokens["paris-cluster"]["token"])).status_code in (401, 403)
    finally:
        close_app(first)
        close_app(second)
