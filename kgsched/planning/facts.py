"""What the planner needs to know, gathered from the graph in a handful of batched queries.

Rows from SPARQL become plain dataclasses here, at the boundary, so the planner's rules
(kgsched.planning.planner) are pure functions tested without a graph, and a benchmark can feed the same rules
from dictionaries to measure what the store costs. Every query is one of queries/*.rq and binds a
whole batch of values at once (one VALUES block, not one query per node).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from rdflib import URIRef

from kgsched.graph import queries
from kgsched.graph.store import Store
from kgsched.literals import optional_str
from kgsched.planning.expressions import RequestDag
from kgsched.registry.generation import registry_cache


@dataclass(frozen=True)
class RunnerInfo:
    iri: URIRef
    site: URIRef
    cores: int
    storage_bytes: int
    owner: URIRef


@dataclass(frozen=True)
class Eligibility:
    """One row of queries/runner-eligibility.rq: why a runner may or may not run a workflow."""

    runner: URIRef
    supports_kind: bool
    enough_cores: bool
    enough_memory: bool
    trusts_verifier: bool
    serves_requester: bool

    @property
    def able(self) -> bool:
        return (self.supports_kind and self.enough_cores and self.enough_memory and self.trusts_verifier
                and self.serves_requester)


@dataclass(frozen=True)
class DatasetInfo:
    iri: URIRef
    site: URIRef
    size_bytes: int
    restricted: bool  # compute-to-data: never leaves its site
    readers: dict[URIRef, bool]  # runner → holds it locally (True) or can read it (False)


@dataclass(frozen=True)
class ProductInfo:
    iri: URIRef
    outcome: URIRef
    size_bytes: int
    site: URIRef
    storage: URIRef
    checksum: str | None = None
    location: str | None = None
    expires: dt.datetime | None = None
    generated_at: dt.datetime | None = None
    runner: URIRef | None = None  # the runner whose execution generated it
    owner: URIRef | None = None  # that runner's owner (None when the runner is not registered)


@dataclass(frozen=True)
class History:
    mean_duration: float
    runs: int
    mean_output_bytes: float | None


@dataclass
class Facts:
    """Everything the rules look at, for one request."""

    now: dt.datetime
    runners: dict[URIRef, RunnerInfo] = field(default_factory=dict)
    eligibility: dict[URIRef, list[Eligibility]] = field(default_factory=dict)  # by workflow
    datasets: dict[URIRef, DatasetInfo] = field(default_factory=dict)
    products: dict[URIRef, list[ProductInfo]] = field(default_factory=dict)  # by expression IRI
    bandwidth: dict[tuple[URIRef, URIRef], float] = field(default_factory=dict)
    history: dict[tuple[URIRef, URIRef], History] = field(default_factory=dict)  # (workflow, runner)
    load: dict[URIRef, int] = field(default_factory=dict)  # jobs queued or claimed per runner


def _datetime(term) -> dt.datetime | None:
    if term is None:
        return None
    value = term.toPython()
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return None


def gather_facts(store: Store, dag: RequestDag, requester: URIRef, now: dt.datetime | None = None) -> Facts:
    """Ask the graph everything the planner needs for this DAG: six queries, whatever its size (three
    when the registry did not change since the last plan: its facts are cached)."""
    facts = Facts(now=now or dt.datetime.now(dt.UTC))
    expressions = dag.expressions()
    workflows = sorted({e.workflow.iri for e in expressions})
    datasets = sorted({d for e in expressions for d in e.datasets})

    # Registry-derived facts (who is able, who reads what) change only when someone registers: they are
    # cached per process under the registry generation (kgsched.registry.generation), read once here.
    cache = registry_cache(store)
    generation = cache.current()
    runners, eligibility = cache.get(("eligibility", tuple(workflows), requester),
                                     lambda: _eligibility(store, workflows, requester), checked=generation)
    facts.runners.update(runners)
    facts.eligibility.update({workflow: list(entries) for workflow, entries in eligibility.items()})
    if datasets:
        facts.datasets.update(cache.get(("datasets", tuple(datasets)), lambda: _datasets(store, datasets),
                                        checked=generation))

    addresses = [e.iri for e in expressions]
    for row in queries.select(store, "cached-products", {"expression": addresses}):
        facts.products.setdefault(row["expression"], []).append(ProductInfo(
            iri=row["product"], outcome=row["outcome"], size_bytes=int(row["sizeBytes"]), site=row["site"],
            storage=row["storage"], checksum=optional_str(row.get("checksum")),
            location=optional_str(row.get("location")),
            expires=_datetime(row.get("expires")), generated_at=_datetime(row.get("generatedAt")),
            runner=row.get("runner"), owner=row.get("owner")))

    facts.bandwidth.update(cache.get("bandwidth", lambda: _bandwidth(store), checked=generation))

    for row in queries.select(store, "execution-statistics", {"workflow": workflows}):
        size = row.get("meanOutputBytes")
        facts.history[(row["workflow"], row["runner"])] = History(
            float(row["meanDuration"]), int(row["runs"]), float(size) if size is not None else None)

    for row in queries.select(store, "runner-load"):
        facts.load[row["runner"]] = int(row["jobs"])
    return facts


def _eligibility(store: Store, workflows: list[URIRef], requester: URIRef
                 ) -> tuple[dict[URIRef, RunnerInfo], dict[URIRef, tuple[Eligibility, ...]]]:
    """queries/runner-eligibility.rq for the request's workflows: the runners and, per workflow, why each
    may or may not run it."""
    runners: dict[URIRef, RunnerInfo] = {}
    eligibility: dict[URIRef, list[Eligibility]] = {}
    rows = queries.select(store, "runner-eligibility", [{"workflow": w, "requester": requester} for w in workflows])
    for row in rows:
        runner = row["runner"]
        if runner not in runners:
            runners[runner] = RunnerInfo(runner, row["site"], int(row["cores"]), int(row["storageBytes"]), row["owner"])
        eligibility.setdefault(row["workflow"], []).append(Eligibility(
            runner, _bool(row["supportsKind"]), _bool(row["enoughCores"]), _bool(row["enoughMemory"]),
            _bool(row["trustsVerifier"]), _bool(row["servesRequester"])))
    return runners, {w: tuple(sorted(entries, key=lambda e: e.runner)) for w, entries in eligibility.items()}


def _datasets(store: Store, datasets: list[URIRef]) -> dict[URIRef, DatasetInfo]:
    """queries/datasets.rq: each dataset's site, size, restriction and readers."""
    readers: dict[URIRef, dict[URIRef, bool]] = defaultdict(dict)
    info: dict[URIRef, tuple] = {}
    for row in queries.select(store, "datasets", {"dataset": datasets}):
        info[row["dataset"]] = (row["site"], int(row["sizeBytes"]), _bool(row["restricted"]))
        if "reader" in row:
            holds = _bool(row["readerHolds"])
            readers[row["dataset"]][row["reader"]] = readers[row["dataset"]].get(row["reader"], False) or holds
    return {iri: DatasetInfo(iri, site, size, restricted, dict(readers[iri]))
            for iri, (site, size, restricted) in info.items()}


def _bandwidth(store: Store) -> dict[tuple[URIRef, URIRef], float]:
    return {(row["from"], row["to"]): float(row["bandwidth"]) for row in queries.select(store, "bandwidth")}


def _bool(term) -> bool:
    return str(term) in ("true", "1")

