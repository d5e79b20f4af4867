"""The registry generation: one value the service changes with every registration, so facts derived from
registrations can be cached per process and still be right when several replicas share one store.

Eligibility of runners, who may read which dataset, bandwidth, product sources: the planner and the
queue derive them from registrants' graphs, and they change only when someone registers, deregisters
or has a token revoked. Every such write appends :func:`bump_update` to its own update request, so the
new registration and the new generation land together (an update request is applied whole:
docs/claim-protocol.md §1). A reader asks :func:`generation` *before* reading the facts it caches; if
the value differs from the one it cached under, it reads again. A fact read after the generation can
only be newer than that generation, so a cache is never older than the generation it is filed under.

The value is a fresh random integer, not a count: two replicas registering at once each write their
own, so the value always changes (a count read-then-incremented by both could land on the same
number). If both updates' deletes run before either insert, two values remain until the next
registration; a reader takes the set as the generation, which still differs from every earlier one.
"""

from __future__ import annotations

import secrets
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from rdflib import Literal
from rdflib.namespace import XSD

from kgsched.graph.binding import check_iri
from kgsched.graph.store import Store
from kgsched.namespaces import KS, KSID, SYSTEM_GRAPH

#: The service's registry node, in the system graph (only the service writes either).
REGISTRY_NODE = KSID["service/registry"]
_READ = (f"SELECT ?generation WHERE {{ GRAPH <{check_iri(SYSTEM_GRAPH)}> "
         f"{{ <{check_iri(REGISTRY_NODE)}> <{KS.registryGeneration}> ?generation }} }}")

T = TypeVar("T")


def bump_update() -> str:
    """SPARQL update operations (to join with ``" ;\\n"`` to a registration's own) that replace the
    generation with a fresh value."""
    graph, node = check_iri(SYSTEM_GRAPH), check_iri(REGISTRY_NODE)
    value = Literal(secrets.randbits(62), datatype=XSD.integer).n3()
    return (f"DELETE WHERE {{ GRAPH <{graph}> {{ <{node}> <{KS.registryGeneration}> ?old }} }} ;\n"
            f"INSERT DATA {{ GRAPH <{graph}> {{ <{node}> <{KS.registryGeneration}> {value} }} }}")


def generation(store: Store) -> frozenset[str]:
    """The current generation (normally one value; empty on a store nobody registered in)."""
    return frozenset(str(row["generation"]) for row in store.select(_READ))


class RegistryCache:
    """Facts derived from registrations, per process and store, filed under the generation they were
    read at; ``get`` reads the generation once per call and recomputes what was filed under another."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._generation: frozenset[str] | None = None
        self._values: dict[Any, Any] = {}
        self.hits = 0
        self.misses = 0

    def current(self) -> frozenset[str]:
        """Read the generation; drop everything cached under another one."""
        now = generation(self.store)
        with self._lock:
            if now != self._generation:
                self._generation = now
                self._values.clear()
        return now

    def get(self, key: Any, compute: Callable[[], T], *, checked: frozenset[str] | None = None) -> T:
        """The value for ``key`` at the current generation (``checked``: a generation the caller just read,
        to share one read between several look-ups)."""
        now = self.current() if checked is None else checked
        with self._lock:
            if now == self._generation and key in self._values:
                self.hits += 1
                return self._values[key]
        value = compute()
        with self._lock:
            self.misses += 1
            if now == self._generation:
                self._values[key] = value
        return value


    def peek(self, key: Any, generation: frozenset[str]) -> Any:
        """The value filed under ``key`` if it was filed under ``generation`` (else None)."""
        with self._lock:
            if generation == self._generation:
                value = self._values.get(key)
                if value is not None:
                    self.hits += 1
                return value
            return None

    def put(self, key: Any, value: Any, generation: frozenset[str]) -> None:
        """File ``value`` under ``key`` if ``generation`` is still the current one."""
        with self._lock:
            if generation != self._generation:
                self._values.clear()
                self._generation = generation
            self._values[key] = value


_CACHES: weakref.WeakKeyDictionary[Store, RegistryCache] = weakref.WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


def registry_cache(store: Store) -> RegistryCache:
    """The process's cache for ``store`` (one per store object)."""
    with _CACHES_LOCK:
        cache = _CACHES.get(store)
        if cache is None:
            cache = _CACHES[store] = RegistryCache(store)
        return cache
