"""Replicas: every copy of a product's bytes the federation knows of, and whether it can still be read.

A product's bytes may live in several places: the product server of the runner that made it (the
embedded default, a *runner-local* replica, ``ks:servedBy`` that runner), a directory on a site's
shared file system (``ks:directory``), an S3-compatible object store (``ks:s3Endpoint``, ``ks:bucket``,
``ks:keyPrefix``). The service records each as a ``ks:Replica`` in the provenance graph from a
runner's checked result (kgsched.jobs.product_sources) — ``ks:Available`` — and changes its
``ks:replicaStatus`` only when

* a runner holding a live claim of a job that needed the product reports that fetching it failed
  (unreachable, missing, wrong checksum: kgsched.jobs.replica_failures), or
* the runner serving a runner-local replica leaves: it is deregistered, or its tokens are revoked
  (``ks:Gone``; :func:`mark_departed`).

A product none of whose replicas is available is not offered as cache (``queries/cached-products.rq``),
so the planner recomputes it instead of planning a job that would fail staging. A later result that
stores the same bytes in the same place makes that replica available again.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from rdflib import Literal, URIRef
from rdflib.namespace import RDF
from rdflib.term import Node

from kgsched.clock import dt_literal
from kgsched.graph import queries
from kgsched.graph.store import Store
from kgsched.graph.updates import data_update
from kgsched.namespaces import KS, KSID, PROVENANCE_GRAPH
from kgsched.product_urls import s3_location, storage_key
from kgsched.registry.tokens import TOKENS_GRAPH

Triple = tuple[Node, Node, Node]

#: What a runner may report about a replica it could not read, and the status it becomes.
FAILURE_STATUS: dict[str, URIRef] = {"unreachable": KS.Unreachable, "missing": KS.Missing, "corrupt": KS.Corrupt}
STATUS_NAMES: dict[URIRef, str] = {KS.Available: "available", KS.Unreachable: "unreachable", KS.Missing: "missing",
                                   KS.Corrupt: "corrupt", KS.Gone: "gone"}
MAX_REASON_CHARS = 1_000


def replica_iri(storage: URIRef, location: str) -> URIRef:
    """One replica per place: equal bytes stored again at the same location are the same replica."""
    return URIRef(KSID[f"replica/{uuid.uuid5(uuid.NAMESPACE_URL, f'{storage}|{location}').hex}"])


@dataclass(frozen=True)
class StorageInfo:
    """A storage as its registrant declares it (queries/storage-descriptions.rq); never credentials."""

    iri: URIRef
    site: URIRef | None = None
    directory: str | None = None
    endpoint: str | None = None
    bucket: str | None = None
    prefix: str = ""
    base_url: str | None = None

    @property
    def kind(self) -> str:
        """``s3`` (an object store), ``directory`` (a shared file system) or ``http`` (served at its base URL)."""
        if self.endpoint is not None and self.bucket is not None:
            return "s3"
        if self.directory is not None:
            return "directory"
        return "http"

    def location_for(self, checksum: str) -> str | None:
        """Where a product with these bytes lives in this storage; None for a storage of no declared kind."""
        if self.kind == "s3":
            return s3_location(str(self.bucket), storage_key(checksum, self.prefix))
        if self.kind == "directory":
            return storage_key(checksum)
        return None

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {"storage": str(self.iri), "kind": self.kind,
                                   "site": None if self.site is None else str(self.site)}
        if self.kind == "s3":
            data.update(endpoint=self.endpoint, bucket=self.bucket, prefix=self.prefix)
        if self.directory is not None:
            data["directory"] = self.directory
        if self.base_url is not None:
            data["base_url"] = self.base_url
        return data


def storages(store: Store, iris: Iterable[URIRef]) -> dict[URIRef, StorageInfo]:
    """The declarations of these storages, each read from its registrant's graph."""
    wanted = sorted(set(iris))
    if not wanted:
        return {}
    found: dict[URIRef, StorageInfo] = {}
    for row in queries.select(store, "storage-descriptions", {"storage": wanted}):
        def text(name: str, row: Mapping[str, Node] = row) -> str | None:
            value = row.get(name)
            return None if value is None else str(value)

        found[row["storage"]] = StorageInfo(row["storage"], row.get("site"), text("directory"), text("endpoint"),
                                            text("bucket"), text("prefix") or "", text("baseUrl"))
    return found


@dataclass(frozen=True)
class ReplicaRecord:
    """A replica as the provenance graph has it."""

    iri: URIRef
    product: URIRef
    storage: URIRef
    location: str
    status: URIRef | None
    served_by: URIRef | None = None

    @property
    def available(self) -> bool:
        return self.status == KS.Available


def replicas_of(store: Store, products: Iterable[URIRef]) -> dict[URIRef, list[ReplicaRecord]]:
    """Every replica recorded for each product (any status), from the provenance graph only."""
    wanted = sorted(set(products))
    result: dict[URIRef, list[ReplicaRecord]] = {}
    if not wanted:
        return result
    seen: dict[tuple[URIRef, URIRef], ReplicaRecord] = {}
    for row in queries.select(store, "product-replicas", {"product": wanted}):
        key = (row["product"], row["replica"])
        previous = seen.get(key)
        status = row.get("status")
        if previous is not None and (previous.status == KS.Available or status is None):
            continue  # two statuses only for a moment (a re-store): available wins, as cached-products.rq says
        seen[key] = ReplicaRecord(row["replica"], row["product"], row["storage"], str(row["location"]), status,
                                  row.get("servedBy"))
    for record in sorted(seen.values(), key=lambda r: (str(r.product), str(r.iri))):
        result.setdefault(record.product, []).append(record)
    return result


def replica_triples(product: URIRef, checksum: str, storage: URIRef, location: str,
                    served_by: URIRef | None) -> tuple[URIRef, list[Triple]]:
    """The triples recording one available replica of a product (for the provenance graph)."""
    replica = replica_iri(storage, location)
    triples: list[Triple] = [(replica, RDF.type, KS.Replica), (replica, KS.replicaOf, product),
                             (replica, KS.checksum, Literal(checksum)), (replica, KS.storedAt, storage),
                             (replica, KS.location, Literal(location)), (replica, KS.replicaStatus, KS.Available)]
    if served_by is not None:
        triples.append((replica, KS.servedBy, served_by))
    return replica, triples


def _status_triples(store: Store, replicas: Iterable[URIRef]) -> list[Triple]:
    wanted = sorted(set(replicas))
    if not wanted:
        return []
    return [(row["replica"], row["p"], row["o"]) for row in queries.select(store, "replica-statuses",
                                                                            {"replica": wanted})]


def set_status(store: Store, replicas: Iterable[URIRef], status: URIRef, *, reason: str | None = None,
               reported_by: URIRef | None = None, now: dt.datetime | None = None) -> None:
    """Replace the status (and its reason, reporter and time) of these replicas, in one update.

    Call under ``store.write_lock``: the statuses replaced are the ones read just before."""
    replicas = sorted(set(replicas))
    if not replicas:
        return
    insert: list[Triple] = []
    for replica in replicas:
        insert.append((replica, KS.replicaStatus, status))
        if reason:
            insert.append((replica, KS.statusReason, Literal(reason[:MAX_REASON_CHARS])))
        if reported_by is not None:
            insert.append((replica, KS.statusReportedBy, reported_by))
        if now is not None:
            insert.append((replica, KS.statusChangedAt, dt_literal(now)))
    keep = set(insert)
    delete = [t for t in _status_triples(store, replicas) if t not in keep]
    store.update(data_update(insert={PROVENANCE_GRAPH: insert}, delete={PROVENANCE_GRAPH: delete}))


def clear_stale_statuses_update(replicas: Iterable[URIRef]) -> str:
    """The update operation (to join, with kgsched.graph.updates.joined, after the one that stored these
    replicas again, written ``ks:Available``) that drops any older failure status and its reason, reporter and time:
    the bytes are there now. Empty for no replicas. Joined to the result's own update, it needs no
    read first and lands with the result (queries/replica-statuses-clear.rq)."""
    wanted = sorted(set(replicas))
    if not wanted:
        return ""
    return queries.text("replica-statuses-clear", {"replica": wanted})


def mark_departed(store: Store, runners: Iterable[URIRef], now: dt.datetime) -> list[URIRef]:
    """Mark gone the available runner-local replicas of those of ``runners`` that left (no longer
    registered, or no token left); returns the replicas marked."""
    candidates = [r for r in sorted(set(runners)) if departed(store, r)]
    if not candidates:
        return []
    with store.write_lock:
        rows = queries.select(store, "departed-runner-replicas", {"runner": candidates})
        by_runner: dict[URIRef, list[URIRef]] = {}
        for row in rows:
            by_runner.setdefault(row["runner"], []).append(row["replica"])
        for runner, replicas in sorted(by_runner.items()):
            set_status(store, replicas, KS.Gone, now=now,
                       reason=f"the runner serving it, {runner}, left the federation (deregistered or its tokens "
                              "revoked)")
    return sorted(r for replicas in by_runner.values() for r in replicas)


def departed(store: Store, runner: URIRef) -> bool:
    """Whether the runner left: no registrant graph holds it as its owner's (queries/runner-registration.rq,
    the same rule tokens are issued by), or no token of it is left in the tokens graph."""
    if not queries.select(store, "runner-registration", [{"runner": runner}]):
        return True
    return not queries.select(store, "token-list", [{"g": TOKENS_GRAPH, "agent": runner}])


def runners_in_graph(store: Store, graph: URIRef) -> list[URIRef]:
    """The runners a registrant graph describes now (before a change that may remove them)."""
    return sorted({row["runner"] for row in queries.select(store, "graph-runners", [{"g": graph}])})
