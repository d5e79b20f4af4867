"""Bearer tokens: random secrets handed out once, kept in the graph only as SHA-256 hashes.

A token authenticates one agent (a person, an organization, a runner). The secret is 256 random
bits, so an unsalted SHA-256 is enough: nobody can search for a preimage, and the hash can sit in
the shared graph where every service replica finds it (revoking a token is deleting its record).
The administrator's token comes from configuration and is compared by hash too.

A *one-job* token (what an anonymous job-token runner gets) makes exactly one claim and then
reports only that claim's job; the job queue enforces it (kgsched.jobs.queue).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import DCTERMS, RDF, RDFS

from kgsched.clock import dt_literal, utcnow
from kgsched.errors import InvalidRequest, NotFound
from kgsched.graph import queries
from kgsched.graph.store import Store
from kgsched.graph.updates import data_update
from kgsched.namespaces import KS, KSG, KSID
from kgsched.registry.generation import bump_update, registry_cache

#: The named graph of token records (hashes only).
TOKENS_GRAPH = URIRef(KSG["tokens"])
TOKEN_PREFIX = "kgs_"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def token_hash(secret: str) -> str:
    """SHA-256 hex of a secret; what the graph stores and lookups compare."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_secret() -> str:
    """A fresh secret: 256 random bits, URL-safe, with a prefix so leaked tokens are recognisable."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Identity:
    """Who is calling: the agent, the token record (None for the configured admin token)."""

    agent: URIRef
    token: URIRef | None = None
    admin: bool = False
    one_job: bool = False
    #: The registrant graph a runner token was issued under (None: the agent's own token). A runner
    #: token acts only as that runner: it claims and reports jobs, it registers nothing.
    issued_under: URIRef | None = None

    @property
    def runner_token(self) -> bool:
        return self.issued_under is not None

    def to_json(self) -> dict[str, object]:
        return {"agent": str(self.agent), "token": None if self.token is None else str(self.token),
                "admin": self.admin, "one_job": self.one_job, "runner_token": self.runner_token}


@dataclass(frozen=True)
class IssuedToken:
    secret: str
    iri: URIRef
    agent: URIRef
    one_job: bool

    @property
    def id(self) -> str:
        return token_id(self.iri)

    def to_json(self) -> dict[str, object]:
        return {"token": self.secret, "id": self.id, "iri": str(self.iri), "agent": str(self.agent),
                "one_job": self.one_job}


def token_iri(token_id_: str) -> URIRef:
    if not re.fullmatch(r"[0-9a-f]{32}", token_id_):
        raise NotFound(f"no token {token_id_!r}")
    return URIRef(KSID[f"token/{token_id_}"])


def token_id(iri: URIRef) -> str:
    return str(iri).rsplit("/", 1)[-1]


class TokenStore:
    """Issues, checks and revokes tokens kept (as hashes) in the tokens graph."""

    def __init__(self, store: Store, admin_agent: URIRef, admin_token_hash: str | None = None) -> None:
        if admin_token_hash is not None and not _HEX64.match(admin_token_hash):
            raise InvalidRequest("the admin token hash must be 64 lowercase hex digits (SHA-256)")
        self.store = store
        self.admin_agent = admin_agent
        self._admin_hash = admin_token_hash

    def authenticate(self, secret: str, generation: frozenset[str] | None = None) -> Identity | None:
        """The identity a secret stands for, or None. One indexed lookup by hash — or none, given the
        registry generation just read (kgsched.registry.generation): a token found under it is kept,
        since every revocation and every registration (which decides a runner token's validity) changes
        it; a token not found is asked again each time (issuing one does not change the generation)."""
        if not secret or len(secret) > 200:
            return None
        digest = token_hash(secret)
        if self._admin_hash is not None and hmac.compare_digest(digest, self._admin_hash):
            return Identity(self.admin_agent, None, admin=True)
        if generation is not None:
            known = registry_cache(self.store).peek(("token", digest), generation)
            if known is not None:
                return known
        rows = queries.select(self.store, "token-lookup", [{"hash": Literal(digest), "g": TOKENS_GRAPH}])
        if not rows:
            return None
        identity = self._identity(rows[0])
        if generation is not None:
            registry_cache(self.store).put(("token", digest), identity, generation)
        return identity

    @staticmethod
    def _identity(row: dict) -> Identity:
        one_job = bool(row.get("oneJob") is not None and row["oneJob"].toPython() is True)
        return Identity(row["agent"], row["token"], admin=False, one_job=one_job, issued_under=row.get("under"))

    def issue(self, agent: URIRef, issued_by: URIRef, *, one_job: bool = False,
              label: str | None = None, issued_under: URIRef | None = None) -> IssuedToken:
        """Mint a token; the secret is returned once and never stored. ``issued_under`` makes it a runner
        token, valid while that registrant graph describes the runner."""
        secret = new_secret()
        iri = URIRef(KSID[f"token/{uuid.uuid4().hex}"])
        graph = Graph()
        graph.add((iri, RDF.type, KS.AccessToken))
        graph.add((iri, KS.tokenHash, Literal(token_hash(secret))))
        graph.add((iri, KS.tokenFor, agent))
        graph.add((iri, KS.issuedBy, issued_by))
        graph.add((iri, DCTERMS.created, dt_literal(utcnow())))
        if one_job:
            graph.add((iri, KS.oneJob, Literal(True)))
        if issued_under is not None:
            graph.add((iri, KS.issuedUnder, issued_under))
        if label:
            graph.add((iri, RDFS.label, Literal(label[:200])))
        self.store.add_to_graph(TOKENS_GRAPH, graph)
        return IssuedToken(secret, iri, agent, one_job)

    def describe(self, iri: URIRef) -> dict[str, object] | None:
        rows = queries.select(self.store, "token-describe", [{"token": iri, "g": TOKENS_GRAPH}])
        if not rows:
            return None
        row = rows[0]
        return {
            "id": token_id(iri), "iri": str(iri), "agent": str(row["agent"]), "issued_by": str(row["issuedBy"]),
            "created": str(row["created"]), "one_job": bool(row.get("oneJob") and row["oneJob"].toPython()),
            "label": str(row["label"]) if row.get("label") is not None else None,
        }

    def tokens_of(self, agent: URIRef | None) -> list[dict[str, object]]:
        """Token records (never secrets) of one agent, or of everyone when ``agent`` is None."""
        values = [{"g": TOKENS_GRAPH, "agent": agent}]
        rows = queries.select(self.store, "token-list", values)
        return [{
            "id": token_id(row["token"]), "iri": str(row["token"]), "agent": str(row["agent"]),
            "created": str(row["created"]), "one_job": bool(row.get("oneJob") and row["oneJob"].toPython()),
            "label": str(row["label"]) if row.get("label") is not None else None,
        } for row in rows]

    def revoke(self, iri: URIRef) -> bool:
        """Delete the token's record: from the next request on, no replica accepts it."""
        with self.store.write_lock:
            graph = Graph()
            for row in queries.select(self.store, "token-triples", [{"token": iri, "g": TOKENS_GRAPH}]):
                graph.add((iri, row["p"], row["o"]))
            if len(graph) == 0:
                return False
            self.store.update(data_update(delete={TOKENS_GRAPH: graph}) + " ;\n" + bump_update())
        return True
