"""Tokens are stored only as hashes, authenticate their agent, and stop working when revoked."""

from __future__ import annotations

import pytest
from rdflib import URIRef

from kgsched.errors import InvalidRequest, NotFound
from kgsched.graph.store import Store
from kgsched.registry.tokens import TOKENS_GRAPH, TokenStore, token_hash, token_iri
from service_support import ALICE, GENEVA

ADMIN = URIRef("urn:kgsched:agent:admin")


def test_issue_authenticate_revoke(store: Store) -> None:
    tokens = TokenStore(store, ADMIN, token_hash("admin-secret"))
    issued = tokens.issue(ALICE, ADMIN, label="laptop")
    assert tokens.authenticate(issued.secret).agent == ALICE
    assert tokens.authenticate("admin-secret").admin
    assert tokens.authenticate("nope") is None and tokens.authenticate("") is None
    stored = store.graph(TOKENS_GRAPH).serialize(format="nt")
    assert issued.secret not in stored and token_hash(issued.secret) in stored  # only the hash is kept
    one = tokens.issue(GENEVA, ADMIN, one_job=True)
    assert tokens.authenticate(one.secret).one_job
    assert [t["one_job"] for t in tokens.tokens_of(GENEVA)] == [True]
    assert {t["agent"] for t in tokens.tokens_of(None)} == {str(ALICE), str(GENEVA)}
    assert tokens.describe(issued.iri)["label"] == "laptop"
    assert tokens.revoke(issued.iri) and not tokens.revoke(issued.iri)
    assert tokens.authenticate(issued.secret) is None


def test_bad_admin_hash_and_token_ids() -> None:
    with pytest.raises(InvalidRequest):
        TokenStore(None, ADMIN, "not-a-hash")  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        token_iri("../../etc")
