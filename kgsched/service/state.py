"""What the app opens once and shares between requests: the store, the queue, the tokens.

Kept in ``app.extensions["kgsched"]``. The store is opened once per application, not per request:
the embedded store can be opened by one process only, and the remote one costs nothing to keep.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, g, has_request_context
from rdflib import URIRef

from kgsched.clock import utcnow
from kgsched.errors import InvalidRequest
from kgsched.graph import queries
from kgsched.graph.binding import check_iri
from kgsched.graph.store import EmbeddedStore, RemoteStore, Store, open_store
from kgsched.jobs.contact import RunnerContacts
from kgsched.jobs.coordination import CoordinatedJobQueue, JobLocks
from kgsched.jobs.local_queue import LocalJobQueue
from kgsched.jobs.queue import JobQueue, QueueSettings
from kgsched.namespaces import LOCAL_ADMIN, ONTOLOGY_GRAPH
from kgsched.provenance import replicas
from kgsched.registry.generation import registry_cache
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

    def runners_left(self, runners: Iterable[URIRef]) -> None:
        """Those of ``runners`` that left (deregistered, or no token left) take their runner-local replicas
        along (kgsched.provenance.replicas); the queue then forgets which inputs it believed readable."""
        if replicas.mark_departed(self.store, runners, utcnow()):
            self.queue.inputs_changed()

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
        queue=make_queue(store, owns, config),
        tokens=TokenStore(store, admin_agent, admin_hash),
        registry=Registry(store, int(config.get("REGISTRATION_CHUNK_TRIPLES") or DEFAULT_CHUNK_TRIPLES),
                          protected_agents=[admin_agent, LOCAL_ADMIN]),
        admin_agent=admin_agent,
        owns_store=owns,
        contacts=RunnerContacts(store, silence / 4),
        silence_seconds=silence,
    )
    state.queue.generation_source = request_generation
    app.extensions["kgsched"] = state
    return state


def make_queue(store: Store, owns: bool, config: Mapping[str, Any]) -> JobQueue:
    """The in-memory-index queue for a sole writer (an embedded store this app opened: no other process
    can open it, and nobody else holds this handle); else, with ``COORDINATION_URL``, replicas that lock
    jobs in Redis (kgsched.jobs.coordination); else the multi-replica protocol (docs/claim-protocol.md).
    ``CLAIM_MODE`` = index, coordinated or protocol forces one (index only on a store that nothing else
    writes jobs to; coordinated on every replica over the store or none)."""
    mode = config.get("CLAIM_MODE") or "auto"
    if mode not in ("auto", "index", "coordinated", "protocol"):
        raise InvalidRequest(f"configuration CLAIM_MODE must be auto, index, coordinated or protocol; got {mode!r}")
    settings = QueueSettings.from_config(config)
    url = config.get("COORDINATION_URL")
    if mode == "index" or (mode == "auto" and owns and isinstance(store, EmbeddedStore)):
        return LocalJobQueue(store, settings)
    if mode == "coordinated" or (mode == "auto" and url):
        if not isinstance(url, str) or not url.startswith(("redis://", "rediss://", "unix://")):
            raise InvalidRequest(f"configuration COORDINATION_URL must be a redis:// URL; got {url!r}")
        hold = config.get("COORDINATION_LOCK_SECONDS", 10)
        if isinstance(hold, bool) or not isinstance(hold, int | float) or hold <= 0:
            raise InvalidRequest(f"configuration COORDINATION_LOCK_SECONDS must be a number > 0; got {hold!r}")
        return CoordinatedJobQueue(store, settings, locks=JobLocks(url, float(hold)))
    return JobQueue(store, settings)


def request_generation() -> frozenset[str]:
    """The registry generation, read once per request (kgsched.registry.generation): the token, the
    caller's runner kinds and the claim's registry facts are then all checked against the same read."""
    if not has_request_context():
        return registry_cache(current().store).current()
    if "registry_generation" not in g:
        g.registry_generation = registry_cache(current().store).current()
    return g.registry_generation


def current() -> ServiceState:
    return current_app.extensions["kgsched"]
