"""Product locations the graph knows: what a claim lists as sources, and where a runner may say it put a product.

A runner fetches products only from under the base URLs its claim lists (kgsched.product_urls);
those are read here from ``queries/product-sources.rq``: the ``ks:baseUrl`` of every registered
``ks:Storage`` and the ``ks:productEndpoint`` of every registered runner. When a runner reports a
product, its ``location`` must lie under one of *its own* sources — its endpoint, or the base URL of
a storage it ``ks:usesStorage`` — and a ``storage`` it names must be one it uses; otherwise the
report is refused (400) before anything is written. Without this, any runner could point the graph,
and so every other runner's fetches, at a URL of its choosing.

A location may also be given relative to the storage that holds the product (``products/ab12.json``,
the "path within the storage" form): it is resolved against that storage's ``ks:baseUrl`` and the
resulting URL is what the graph records, so the product is fetchable like any other.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass

from rdflib import URIRef

from kgsched.errors import InvalidRequest
from kgsched.graph import queries
from kgsched.graph.store import Store
from kgsched.product_urls import is_under, refusal
from kgsched.provenance.recording import ResultReport
from kgsched.provenance.replicas import StorageInfo

_RELATIVE = re.compile(r"^[A-Za-z0-9._~-]+(?:/[A-Za-z0-9._~-]+)*$")


@dataclass(frozen=True)
class ProductSources:
    """Rows of product-sources.rq: (base URL, the runner it belongs to or that uses it, the storage if any)."""

    rows: tuple[tuple[str, URIRef | None, URIRef | None], ...] = ()

    @classmethod
    def read(cls, store: Store) -> ProductSources:
        rows = queries.select(store, "product-sources")
        return cls(tuple(sorted({(str(r["base"]), r.get("runner"), r.get("storage")) for r in rows},
                                key=lambda row: tuple(str(v) for v in row))))

    def all(self) -> list[str]:
        """Every base URL, for the claim's ``product_sources``."""
        return sorted({base for base, _runner, _storage in self.rows})

    def of_runner(self, runner: URIRef) -> list[str]:
        """The runner's own endpoint and the base URLs of the storages it uses."""
        return sorted({base for base, owner, _storage in self.rows if owner == runner})

    def endpoints_of(self, runner: URIRef) -> list[str]:
        """The runner's own product endpoints (not its storages' base URLs)."""
        return sorted({base for base, owner, storage in self.rows if owner == runner and storage is None})

    def storage_base(self, runner: URIRef, storage: URIRef) -> str | None:
        return next((base for base, owner, s in self.rows if owner == runner and s == storage), None)


def place(report: ResultReport, runner: URIRef, runner_storage: tuple[URIRef, ...],
          sources: ProductSources, storages: Mapping[URIRef, StorageInfo] | None = None) -> ResultReport:
    """The report with its product location checked (and resolved, if relative), its further replicas
    checked, and whether the location is runner-local; InvalidRequest otherwise."""
    if report.location is None:
        return report
    _check_replicas(report, runner, runner_storage, storages or {})
    placed = _place_location(report, runner, runner_storage, sources)
    local = any(is_under(placed.location or "", base) for base in sources.endpoints_of(runner))
    return placed if local == placed.runner_local else dataclasses.replace(placed, runner_local=local)


def _check_replicas(report: ResultReport, runner: URIRef, runner_storage: tuple[URIRef, ...],
                    storages: Mapping[URIRef, StorageInfo]) -> None:
    """A further replica must be in a storage the runner ks:usesStorage that declares a kind (a shared
    directory or an S3 bucket), at exactly the content-addressed place for the product's checksum there:
    a runner says *that* it stored the bytes, never *where* else they might be."""
    for replica in report.replicas:
        if replica.storage not in runner_storage:
            raise InvalidRequest(f"replica storage {replica.storage} is not one that runner {runner} ks:usesStorage "
                                 f"({', '.join(map(str, runner_storage)) or 'none'})")
        info = storages.get(replica.storage)
        expected = None if info is None or report.checksum is None else info.location_for(report.checksum)
        if expected is None:
            raise InvalidRequest(f"storage {replica.storage} declares no ks:directory or ks:s3Endpoint and "
                                 "ks:bucket; a replica there cannot be recorded")
        if replica.location != expected:
            raise InvalidRequest(f"a replica of {report.checksum} in {replica.storage} is at {expected!r}, "
                                 f"not {replica.location!r} (content-addressed by sha256)")


def _place_location(report: ResultReport, runner: URIRef, runner_storage: tuple[URIRef, ...],
                    sources: ProductSources) -> ResultReport:
    assert report.location is not None
    if report.storage is not None and report.storage not in runner_storage:
        raise InvalidRequest(f"storage {report.storage} is not one that runner {runner} ks:usesStorage "
                             f"({', '.join(map(str, runner_storage)) or 'none'})")
    location = report.location
    if "://" not in location and ":" not in location.split("/", 1)[0]:
        storage = report.storage or (runner_storage[0] if runner_storage else None)
        base = None if storage is None else sources.storage_base(runner, storage)
        if base is None:
            raise InvalidRequest(f"location {location!r} is relative, but the runner's storage has no ks:baseUrl "
                                 "to resolve it against; report an http(s) URL under its ks:productEndpoint")
        if not _RELATIVE.match(location) or any(part in (".", "..") for part in location.split("/")):
            raise InvalidRequest(f"location {location!r}: a relative location is a plain path within the storage "
                                 "(letters, digits, '._~-' and '/' between non-empty parts; no '.' or '..')")
        location = (base if base.endswith("/") else base + "/") + location
    why = refusal(location, sources.of_runner(runner))
    if why is not None:
        raise InvalidRequest(f"product {why}: a runner reports locations under its own ks:productEndpoint or "
                             "the ks:baseUrl of a storage it ks:usesStorage")
    return report if location == report.location else dataclasses.replace(report, location=location)
