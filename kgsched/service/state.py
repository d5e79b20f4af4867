"""What the app opens once and shares between requests: the store, the queue, the tokens.

Kept in ``app.extensions["kgsched"]``. The store is opened once per application, not per request:
the embedded store can be opened by one process only, and the remote one costs nothing to keep.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app
from rdflib import URIRef

from kgsched.errors import InvalidRequest
from kgsched.graph import queries
from kgsched.graph.binding import check_iri
from kgsched.graph.store import RemoteStore, Store, open_store
from kgsched.jobs.contact import RunnerContacts
from kgsched.jobs.queue import JobQueue, QueueSettings
from kgsched.namespaces import LOCAL_ADMIN, ONTOLOGY_GRAPH
from kgsched.registry.registration import Registry, load_ontology
from kgsched.registry.tokens import TokenStore, token_hash
from kgsched.registry.writes import DEFAULT_CHUNK_TRIPLES


@dataclass
class ServiceState:
    store: Store
    queue: JobQueue
    tokens: TokenStore
    registry: Registry
    admin_agent: URIRef
    owns_store: bool
    contacts: RunnerContacts
    silence_seconds: float = 300.0

    @property
    def store_kind(self) -> str:
        return "remote" if isinstance(self.store, RemoteStore) else "embedded"

    def close(self) -> None:
        if self.owns_store:
            self.store.close()
            self.owns_store = False


def ensure_ontology(store: Store) -> None:
    """Load the ontology when the store has none (a fresh store), under the write lock."""
    with store.write_lock:
        if not queries.ask(store, "graph-exists", [{"g": ONTOLOGY_GRAPH}]):
            load_ontology(store)


def init_state(app: Flask) -> ServiceState:
    config = app.config
    store = config.get("STORE_INSTANCE")
    owns = store is None
    if store is None:
        store = open_store(config.get("STORE"), config.get("ENDPOINT"), settings=config)
    if config.get("LOAD_ONTOLOGY"):
        ensure_ontology(store)
    admin_hash = config.get("ADMIN_TOKEN_SHA256")
    if config.get("ADMIN_TOKEN"):
        admin_hash = token_hash(str(config["ADMIN_TOKEN"]))
        config["ADMIN_TOKEN"] = None  # keep only the hash in memory
    admin_agent = check_iri(str(config["ADMIN_AGENT"]))
    silence = config.get("RUNNER_SILENCE_SECONDS", 300)
    if isinstance(silence, bool) or not isinstance(silence, int | float) or silence < 0:
        raise InvalidRequest(f"configuration RUNNER_SILENCE_SECONDS must be a number ≥ 0; got {silence!r}")
    silence = float(silence)
    state = ServiceState(
        store=store,
        queue=JobQueue(store, QueueSettings.from_config(config)),
        tokens=TokenStore(store, admin_agent, admin_hash),
        registry=Registry(store, int(config.get("REGISTRATION_CHUNK_TRIPLES") or DEFAULT_CHUNK_TRIPLES),
                          protected_agents=[admin_agent, LOCAL_ADMIN]),
        admin_agent=admin_agent,
        owns_store=owns,
        contacts=RunnerContacts(store, silence / 4),
        silence_seconds=silence,
    )
    app.extensions["kgsched"] = state
    return state


def current() -> ServiceState:
    return current_app.extensions["kgsched"]
