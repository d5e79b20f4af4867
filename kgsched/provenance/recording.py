"""Executions become W3C PROV and credit entries; credits and acknowledgements are read back.

Recording is a pure function of the report and the facts read about the job (the expression, its
workflow's authors and verifiers, the runner and its owner, the inputs and their providers), so
what the service writes can be checked against the SHACL shapes without a store, and writing it
twice writes the same triples: every IRI is derived from the claim, and the execution's end is its
start plus the reported duration — a runner repeating a report (after a lost answer) changes nothing.

Credit policy, per execution that produced a product (a success or an analysis exception): each
author of the workflow earns 1, each verifier 0.5, the runner's owner the run time in minutes (at
least 0.01), and each provider of each dataset used 1. An execution that ended in an unhandled
exception is recorded (so the planner learns from it) but earns no credit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Literal

from rdflib import Graph, URIRef
from rdflib import Literal as RDFLiteral
from rdflib.namespace import FOAF, PROV, RDF, RDFS, XSD

from kgsched.clock import dt_literal, iso, parse_iso
from kgsched.errors import InvalidRequest, NotFound
from kgsched.graph import queries
from kgsched.graph.binding import check_iri
from kgsched.graph.store import Store
from kgsched.jobs.states import COMPLETING, OUTCOME_IRI, Outcome
from kgsched.namespaces import KS, KSID, PROVENANCE_GRAPH, bind_prefixes
from kgsched.provenance.replicas import ReplicaRecord, StorageInfo, replica_triples, replicas_of, storages

_CHECKSUM = re.compile(r"^sha256:[0-9a-f]{64}$")
MAX_ERROR_CHARS = 20_000
MAX_LOCATION_CHARS = 4_000

#: Fixed credit per execution for each role; compute is paid by the minute (see module docstring).
CREDIT_AMOUNTS: dict[URIRef, Decimal] = {
    KS.WorkflowAuthorship: Decimal("1"),
    KS.Verification: Decimal("0.5"),
    KS.DataProvision: Decimal("1"),
}
MIN_COMPUTE_CREDIT = Decimal("0.01")
REASON_NAMES: dict[URIRef, str] = {
    KS.WorkflowAuthorship: "workflow authorship", KS.Verification: "verification",
    KS.ComputeContribution: "compute contribution", KS.DataProvision: "data provision",
}


# --------------------------------------------------------------------------------------------------
# What a runner reports
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StoredFile:
    """A file a runner stored besides the product (an executed notebook): where, its checksum and size."""

    location: str
    checksum: str
    size_bytes: int

    @classmethod
    def from_json(cls, payload: Any, what: str) -> StoredFile:
        if not isinstance(payload, Mapping) or set(payload) != {"location", "checksum", "size_bytes"}:
            raise InvalidRequest(f"{what} must be an object with exactly location, checksum and size_bytes")
        location, checksum, size = payload["location"], payload["checksum"], payload["size_bytes"]
        if not isinstance(location, str) or not location.strip() or len(location) > MAX_LOCATION_CHARS:
            raise InvalidRequest(f"{what}.location must be a non-empty string (URL or path within the storage)")
        if not isinstance(checksum, str) or not _CHECKSUM.match(checksum):
            raise InvalidRequest(f'{what}.checksum must be "sha256:" followed by 64 lowercase hex digits')
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise InvalidRequest(f"{what}.size_bytes must be an integer ≥ 0")
        return cls(location, checksum, size)

    def to_json(self) -> dict[str, Any]:
        return {"location": self.location, "checksum": self.checksum, "size_bytes": self.size_bytes}


@dataclass(frozen=True)
class ReplicaReport:
    """A further copy of the product the runner stored: in which of its storages, at which location
    (the storage's content-addressed place for the bytes, kgsched.product_urls.storage_key)."""

    storage: URIRef
    location: str

    @classmethod
    def from_json(cls, payload: Any) -> ReplicaReport:
        if not isinstance(payload, Mapping) or set(payload) != {"storage", "location"}:
            raise InvalidRequest("each of replicas must be an object with exactly storage and location")
        location = payload["location"]
        if not isinstance(location, str) or not location.strip() or len(location) > MAX_LOCATION_CHARS:
            raise InvalidRequest("replicas[].location must be a non-empty string")
        if not isinstance(payload["storage"], str):
            raise InvalidRequest("replicas[].storage must be the IRI of a storage")
        return cls(check_iri(payload["storage"]), location)

    def to_json(self) -> dict[str, str]:
        return {"storage": str(self.storage), "location": self.location}


MAX_REPLICAS = 16


@dataclass(frozen=True)
class ResultReport:
    """A runner's result for its claim, checked field by field (a bad one is the client's 400)."""

    outcome: Outcome
    duration_seconds: float
    location: str | None = None
    size_bytes: int | None = None
    checksum: str | None = None
    storage: URIRef | None = None
    started_at: dt.datetime | None = None
    error_message: str | None = None
    executed_notebook: StoredFile | None = None  # a notebook workflow's notebook as it ran (any outcome)
    replicas: tuple[ReplicaReport, ...] = ()  # further copies in the runner's storages (site storage)
    #: Set by the service (kgsched.jobs.product_sources.place), never by the runner: the location is under
    #: the runner's own product endpoint, so the replica there is gone when the runner leaves.
    runner_local: bool = False

    FIELDS = ("claim_token", "outcome", "duration_seconds", "location", "size_bytes", "checksum", "storage",
              "started_at", "error_message", "executed_notebook", "replicas")

    @classmethod
    def from_json(cls, payload: Any) -> ResultReport:
        if not isinstance(payload, Mapping):
            raise InvalidRequest("the result must be a JSON object")
        unknown = set(payload) - set(cls.FIELDS)
        if unknown:
            raise InvalidRequest(f"unknown field(s) in the result: {', '.join(sorted(unknown))}; "
                                 f"known: {', '.join(cls.FIELDS)}")
        outcome = payload.get("outcome")
        if outcome not in OUTCOME_IRI:
            raise InvalidRequest(f"outcome must be one of {', '.join(OUTCOME_IRI)}; got {outcome!r}")
        duration = payload.get("duration_seconds")
        if isinstance(duration, bool) or not isinstance(duration, int | float) or not math.isfinite(duration) \
                or duration < 0:
            raise InvalidRequest("duration_seconds must be a number ≥ 0")
        started = payload.get("started_at")
        started_at = parse_iso(started) if started is not None else None
        if started is not None and not isinstance(started, str):
            raise InvalidRequest("started_at must be an ISO 8601 string")
        message = payload.get("error_message")
        if message is not None and not isinstance(message, str):
            raise InvalidRequest("error_message must be a string")
        notebook = payload.get("executed_notebook")
        executed = StoredFile.from_json(notebook, "executed_notebook") if notebook is not None else None
        product_fields = [name for name in ("location", "size_bytes", "checksum", "storage", "replicas")
                          if payload.get(name) is not None]
        if outcome == "unhandled_exception":
            if product_fields:
                raise InvalidRequest(f"an unhandled exception generates no product; drop {', '.join(product_fields)}")
            return cls(outcome, float(duration), started_at=started_at,
                       error_message=None if message is None else message[:MAX_ERROR_CHARS], executed_notebook=executed)
        location = payload.get("location")
        if not isinstance(location, str) or not location.strip() or len(location) > MAX_LOCATION_CHARS:
            raise InvalidRequest("location must be a non-empty string (URL or path within the storage)")
        size = payload.get("size_bytes")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise InvalidRequest("size_bytes must be an integer ≥ 0")
        checksum = payload.get("checksum")
        if not isinstance(checksum, str) or not _CHECKSUM.match(checksum):
            raise InvalidRequest('checksum must be "sha256:" followed by 64 lowercase hex digits')
        storage = payload.get("storage")
        storage_iri = check_iri(storage) if storage is not None else None
        replicas = payload.get("replicas") or []
        if not isinstance(replicas, list) or len(replicas) > MAX_REPLICAS:
            raise InvalidRequest(f"replicas must be a list of at most {MAX_REPLICAS} objects")
        extra = tuple(dict.fromkeys(ReplicaReport.from_json(r) for r in replicas))
        return cls(outcome, float(duration), location, size, checksum, storage_iri, started_at,
                   None if message is None else message[:MAX_ERROR_CHARS], executed, extra)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"outcome": self.outcome, "duration_seconds": self.duration_seconds}
        for name in ("location", "size_bytes", "checksum", "error_message"):
            if getattr(self, name) is not None:
                data[name] = getattr(self, name)
        if self.storage is not None:
            data["storage"] = str(self.storage)
        if self.started_at is not None:
            data["started_at"] = iso(self.started_at)
        if self.executed_notebook is not None:
            data["executed_notebook"] = self.executed_notebook.to_json()
        if self.replicas:
            data["replicas"] = [r.to_json() for r in self.replicas]
        return data

    def bounded_by(self, claimed_at: dt.datetime, now: dt.datetime) -> ResultReport:
        """The report as the service believes it: the execution happened between the claim and now, so its
        duration (what compute credit and statistics use) is at most what the service observed, and it
        started no earlier than the claim. A runner's clock or word cannot stretch either."""
        observed = max(0.0, (now - claimed_at).total_seconds())
        duration = min(self.duration_seconds, observed)
        started = self.started_at
        if started is not None:
            latest = now - dt.timedelta(seconds=duration)
            started = min(max(started, claimed_at), latest)
        if duration == self.duration_seconds and started == self.started_at:
            return self
        return replace(self, duration_seconds=duration, started_at=started)

    def digest(self) -> str:
        """SHA-256 of the canonical JSON: equal reports have equal digests (idempotent re-reporting)."""
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")).encode()).hexdigest()

    @property
    def outcome_iri(self) -> URIRef:
        return OUTCOME_IRI[self.outcome]


# --------------------------------------------------------------------------------------------------
# What the graph says about a job's execution
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class InputUsed:
    """An argument that is data: a registered dataset, or the product of an upstream expression."""

    name: str
    kind: Literal["dataset", "product"]
    entity: URIRef | None  # None: the upstream expression has no product yet
    expression: URIRef | None = None
    location: str | None = None
    checksum: str | None = None
    size_bytes: int | None = None
    storage: tuple[URIRef, ...] = ()
    providers: tuple[URIRef, ...] = ()
    #: A product's recorded replicas (any status), the claiming runner's own storages first.
    replicas: tuple[ReplicaRecord, ...] = ()
    storages: Mapping[URIRef, StorageInfo] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind}
        if self.kind == "dataset":
            data["dataset"] = str(self.entity)
        else:
            data["expression"] = str(self.expression)
            data["product"] = None if self.entity is None else str(self.entity)
        data.update({"location": self.location, "checksum": self.checksum, "size_bytes": self.size_bytes,
                     "storage": [str(s) for s in self.storage]})
        if self.replicas:  # where the runner may read the bytes, in the order to try them
            data["replicas"] = [self._replica_json(r) for r in self.replicas if r.available]
        return data

    def _replica_json(self, replica: ReplicaRecord) -> dict[str, Any]:
        info = self.storages.get(replica.storage) or StorageInfo(replica.storage)
        entry: dict[str, Any] = {"replica": str(replica.iri), "location": replica.location,
                                 **info.to_json()}
        if replica.served_by is not None or replica.location.startswith(("http://", "https://")):
            entry["kind"] = "http"  # a product server or a storage's web address: fetched over http(s)
        if replica.served_by is not None:
            entry["served_by"] = str(replica.served_by)
        return entry


@dataclass(frozen=True)
class ExecutionContext:
    """Everything recording a job's result needs besides the report."""

    job: URIRef
    claim: URIRef
    expression: URIRef
    address: str
    workflow: URIRef
    runner: URIRef
    claimed_at: dt.datetime
    implementation_kind: URIRef | None = None
    implementation: str | None = None
    version: str | None = None
    runner_owner: URIRef | None = None
    runner_storage: tuple[URIRef, ...] = ()
    authors: tuple[URIRef, ...] = ()
    verifiers: tuple[URIRef, ...] = ()
    literals: dict[str, RDFLiteral] = field(default_factory=dict)
    inputs: tuple[InputUsed, ...] = ()
    #: The declarations of the runner's own storages (where it writes products), for the claim.
    storages: Mapping[URIRef, StorageInfo] = field(default_factory=dict)

    def storages_json(self) -> list[dict[str, Any]]:
        return [(self.storages.get(s) or StorageInfo(s)).to_json() for s in self.runner_storage]

    def offered_replicas(self) -> dict[URIRef, ReplicaRecord]:
        """Every replica of the job's input products (any status): those a failure report may name."""
        return {r.iri: r for used in self.inputs for r in used.replicas}

    def arguments_json(self) -> dict[str, Any]:
        """The arguments as a runner needs them: literal values, and where each input's bytes are."""
        args: dict[str, Any] = {}
        for name, value in sorted(self.literals.items()):
            python = value.toPython()
            if isinstance(python, Decimal):
                python = float(python)  # JSON numbers; "lexical" keeps the exact spelling
            elif not isinstance(python, bool | int | float | str):
                python = str(value)
            args[name] = {"kind": "literal", "value": python, "lexical": str(value),
                          "datatype": str(value.datatype or XSD.string)}
        for used in self.inputs:
            args[used.name] = used.to_json()
        return args


def execution_iri(claim: URIRef) -> URIRef:
    """One execution per claim, named from it, so recording twice writes the same resource."""
    return URIRef(KSID[f"execution/{uuid.uuid5(uuid.NAMESPACE_URL, str(claim)).hex}"])


def product_iri(checksum: str, address: str, execution: URIRef) -> URIRef:
    """``product/<sha256 of the bytes>-<address[:16]>-<execution[:8]>``: the contract's form plus the
    execution, so two runs that made the same bytes stay two products (one generator each)."""
    digest = checksum.split(":", 1)[1]
    return URIRef(KSID[f"product/{digest}-{address[:16]}-{str(execution).rsplit('/', 1)[-1][:8]}"])


def credit_iri(execution: URIRef, agent: URIRef, reason: URIRef) -> URIRef:
    key = f"{execution}|{agent}|{reason}"
    return URIRef(KSID[f"credit/{uuid.uuid5(uuid.NAMESPACE_URL, key).hex}"])


def compute_credit(duration_seconds: float) -> Decimal:
    return max(MIN_COMPUTE_CREDIT, (Decimal(str(duration_seconds)) / 60).quantize(Decimal("0.0001")))


def credit_entries(context: ExecutionContext, report: ResultReport) -> list[tuple[URIRef, URIRef, Decimal]]:
    """(agent, reason, amount) owed for an execution; none for an unhandled exception."""
    if report.outcome_iri not in COMPLETING:
        return []
    owed: dict[tuple[URIRef, URIRef], Decimal] = {}
    for author in context.authors:
        owed[(author, KS.WorkflowAuthorship)] = CREDIT_AMOUNTS[KS.WorkflowAuthorship]
    for verifier in context.verifiers:
        owed[(verifier, KS.Verification)] = CREDIT_AMOUNTS[KS.Verification]
    if context.runner_owner is not None:
        owed[(context.runner_owner, KS.ComputeContribution)] = compute_credit(report.duration_seconds)
    for used in context.inputs:
        for provider in used.providers:
            key = (provider, KS.DataProvision)
            owed[key] = owed.get(key, Decimal(0)) + CREDIT_AMOUNTS[KS.DataProvision]
    return [(agent, reason, amount) for (agent, reason), amount in sorted(owed.items())]


def execution_graph(context: ExecutionContext, report: ResultReport) -> tuple[Graph, URIRef, URIRef | None]:
    """The PROV triples for a result (into the provenance graph): execution, product, credit entries.

    Returns the graph, the execution and the product (None for an unhandled exception)."""
    execution = execution_iri(context.claim)
    started = report.started_at or context.claimed_at
    ended = started + dt.timedelta(seconds=report.duration_seconds)
    # only its triples are used (written with the job's state): no prefixes to bind, and the plain
    # triple store (no context index) builds it three times faster than the default one
    graph = Graph(store="SimpleMemory")
    graph.add((execution, RDF.type, KS.Execution))
    graph.add((execution, PROV.wasAssociatedWith, context.runner))
    graph.add((execution, KS.computes, context.expression))
    graph.add((execution, KS.forJob, context.job))
    graph.add((execution, PROV.startedAtTime, dt_literal(started)))
    graph.add((execution, PROV.endedAtTime, dt_literal(ended)))
    graph.add((execution, KS.outcome, report.outcome_iri))
    graph.add((execution, KS.durationSeconds, RDFLiteral(f"{report.duration_seconds:.3f}", datatype=XSD.decimal)))
    if report.error_message:
        graph.add((execution, KS.errorMessage, RDFLiteral(report.error_message)))
    for used in context.inputs:
        if used.entity is not None:
            graph.add((execution, PROV.used, used.entity))
    if report.executed_notebook is not None:
        if context.implementation_kind != KS.Notebook:
            raise InvalidRequest("executed_notebook is reported only for a ks:Notebook workflow")
        _add_executed_notebook(graph, execution, report, context, ended)
    product: URIRef | None = None
    if report.outcome_iri in COMPLETING:
        assert report.checksum is not None and report.location is not None and report.size_bytes is not None
        storage = report.storage or (context.runner_storage[0] if context.runner_storage else None)
        if report.storage is not None and report.storage not in context.runner_storage:
            raise InvalidRequest(f"storage {report.storage} is not one this runner declares (ks:usesStorage); a runner "
                                 "stores products only where its registration says")
        if storage is None:
            raise InvalidRequest("the runner declares no ks:usesStorage; say in 'storage' which registered "
                                 "ks:Storage holds the product")
        product = product_iri(report.checksum, context.address, execution)
        graph.add((execution, PROV.generated, product))
        graph.add((product, RDF.type, KS.DataProduct))
        graph.add((product, KS.valueOf, context.expression))
        graph.add((product, KS.sizeBytes, RDFLiteral(report.size_bytes, datatype=XSD.integer)))
        graph.add((product, KS.checksum, RDFLiteral(report.checksum)))
        graph.add((product, KS.storedAt, storage))
        graph.add((product, KS.location, RDFLiteral(report.location)))
        graph.add((product, KS.outcome, report.outcome_iri))
        graph.add((product, PROV.wasGeneratedBy, execution))
        graph.add((product, PROV.generatedAtTime, dt_literal(ended)))
        graph.add((product, PROV.wasAttributedTo, context.runner))
        places = [(storage, report.location, context.runner if report.runner_local else None)]
        places += [(r.storage, r.location, None) for r in report.replicas]
        for where, location, served_by in dict.fromkeys(places):
            for triple in replica_triples(product, report.checksum, where, location, served_by)[1]:
                graph.add(triple)
    for agent, reason, amount in credit_entries(context, report):
        credit = credit_iri(execution, agent, reason)
        graph.add((credit, RDF.type, KS.CreditEntry))
        graph.add((credit, KS.creditedTo, agent))
        graph.add((credit, KS.amount, RDFLiteral(str(amount), datatype=XSD.decimal)))
        graph.add((credit, KS.creditReason, reason))
        graph.add((credit, KS.forExecution, execution))
    return graph, execution, product


def _add_executed_notebook(graph: Graph, execution: URIRef, report: ResultReport, context: ExecutionContext,
                           ended: dt.datetime) -> None:
    """The notebook as it ran: an entity generated by the execution, stored like a product."""
    stored = report.executed_notebook
    assert stored is not None
    storage = report.storage or (context.runner_storage[0] if context.runner_storage else None)
    notebook = URIRef(KSID[f"executed-notebook/{str(execution).rsplit('/', 1)[-1]}"])
    graph.add((execution, KS.executedNotebook, notebook))
    graph.add((notebook, RDF.type, KS.ExecutedNotebook))
    graph.add((notebook, PROV.wasGeneratedBy, execution))
    graph.add((notebook, PROV.generatedAtTime, dt_literal(ended)))
    graph.add((notebook, KS.checksum, RDFLiteral(stored.checksum)))
    graph.add((notebook, KS.sizeBytes, RDFLiteral(stored.size_bytes, datatype=XSD.integer)))
    graph.add((notebook, KS.location, RDFLiteral(stored.location)))
    if storage is not None:
        graph.add((notebook, KS.storedAt, storage))


# --------------------------------------------------------------------------------------------------
# Reading the context from the store
# --------------------------------------------------------------------------------------------------

def read_context(store: Store, job: URIRef, claim: URIRef, runner: URIRef, claimed_at: dt.datetime,
                 jobs_graph: URIRef) -> ExecutionContext:
    """The facts about a job's expression, workflow, runner and inputs (three small queries)."""
    rows = queries.select(store, "job-context", [{"job": job, "jobs": jobs_graph}])
    if not rows:
        raise NotFound(f"job {job} has no expression with a registered workflow")
    row = rows[0]
    expression, workflow = row["expression"], row["workflow"]
    address = str(row["address"]) if row.get("address") is not None else \
        hashlib.sha256(str(expression).encode()).hexdigest()
    roles: dict[str, list[URIRef]] = {"author": [], "verifier": [], "owner": [], "storage": []}
    for r in queries.select(store, "execution-agents", [{"workflow": workflow, "runner": runner}]):
        bucket = roles[str(r["role"])]
        if r["value"] not in bucket:
            bucket.append(r["value"])
    runner_storage = tuple(sorted(roles["storage"]))
    literals, inputs = read_arguments(store, expression, runner_storage)
    return ExecutionContext(
        job=job, claim=claim, expression=expression, address=address, workflow=workflow, runner=runner,
        claimed_at=claimed_at, implementation_kind=row.get("kind"),
        implementation=str(row["implementation"]) if row.get("implementation") is not None else None,
        version=str(row["version"]) if row.get("version") is not None else None,
        runner_owner=roles["owner"][0] if roles["owner"] else None,
        runner_storage=runner_storage, authors=tuple(sorted(roles["author"])),
        verifiers=tuple(sorted(roles["verifier"])), literals=literals, inputs=inputs,
        storages=storages(store, runner_storage),
    )


def read_arguments(store: Store, expression: URIRef, runner_storage: tuple[URIRef, ...] = ()) -> tuple[
        dict[str, RDFLiteral], tuple[InputUsed, ...]]:
    """Literal arguments, and for each data argument the dataset or the newest product of its expression
    that can still be read (one replica available, or none recorded), with its replicas ordered for a
    runner using ``runner_storage``: its own storages first, then other storages, then runners' servers."""
    rows = queries.select(store, "expression-arguments", [{"expression": expression}])
    return arguments_from_rows(store, rows, runner_storage)


def arguments_from_rows(store: Store, rows: Iterable[Mapping[str, Any]], runner_storage: tuple[URIRef, ...] = ()
                        ) -> tuple[dict[str, RDFLiteral], tuple[InputUsed, ...]]:
    """``read_arguments`` on rows of expression-arguments.rq (or of expression-context.rq, which adds the
    expression's workflow and address in rows of their own); the store is asked for the replicas."""
    literals: dict[str, RDFLiteral] = {}
    datasets: dict[str, dict[str, Any]] = {}
    upstream: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row.get("name") is None:
            continue
        name = str(row["name"])
        if row.get("value") is not None:
            literals[name] = row["value"]
        elif row.get("dataset") is not None:
            entry = datasets.setdefault(name, {"entity": row["dataset"], "storage": set(), "providers": set()})
            _merge_entity(entry, row)
            if row.get("provider") is not None:
                entry["providers"].add(row["provider"])
        elif row.get("input") is not None:
            entry = upstream.setdefault(name, {"expression": row["input"], "products": {}})
            if row.get("product") is not None:
                product = entry["products"].setdefault(row["product"], {"entity": row["product"], "storage": set(),
                                                                       "providers": set()})
                _merge_entity(product, row)
    inputs: list[InputUsed] = []
    for name, entry in sorted(datasets.items()):
        inputs.append(InputUsed(name, "dataset", entry["entity"], None, entry.get("location"), entry.get("checksum"),
                                entry.get("size"), tuple(sorted(entry["storage"])), tuple(sorted(entry["providers"]))))
    replicas = replicas_of(store, [p for entry in upstream.values() for p in entry["products"]])
    infos = storages(store, {r.storage for records in replicas.values() for r in records})

    def readable(product: URIRef) -> bool:
        records = replicas.get(product, [])
        return not records or any(r.available for r in records)

    def order(record: ReplicaRecord) -> tuple[int, str]:
        """The runner's own site storage (a shared directory or bucket) first, runners' servers last."""
        if record.served_by is not None:
            return 4, str(record.iri)
        declared = record.storage in infos and infos[record.storage].kind != "http" and \
            not record.location.startswith(("http://", "https://"))
        own = record.storage in runner_storage
        return (0 if own and declared else 1 if own else 2 if declared else 3), str(record.iri)

    for name, entry in sorted(upstream.items()):
        products = sorted(entry["products"].values(),
                          key=lambda p: (readable(p["entity"]), p.get("generated") or "", str(p["entity"])))
        if not products:
            inputs.append(InputUsed(name, "product", None, entry["expression"]))
            continue
        best = products[-1]
        records = tuple(sorted(replicas.get(best["entity"], []), key=order))
        inputs.append(InputUsed(name, "product", best["entity"], entry["expression"], best.get("location"),
                                best.get("checksum"), best.get("size"), tuple(sorted(best["storage"])),
                                replicas=records, storages={s: infos[s] for s in {r.storage for r in records}
                                                            if s in infos}))
    return literals, tuple(inputs)


def _merge_entity(entry: dict[str, Any], row: Mapping[str, Any]) -> None:
    if row.get("location") is not None:
        entry["location"] = str(row["location"])
    if row.get("checksum") is not None:
        entry["checksum"] = str(row["checksum"])
    if row.get("sizeBytes") is not None:
        entry["size"] = int(row["sizeBytes"])
    if row.get("storage") is not None:
        entry["storage"].add(row["storage"])
    if row.get("generatedAt") is not None:
        entry["generated"] = str(row["generatedAt"])


# --------------------------------------------------------------------------------------------------
# Credits and acknowledgements
# --------------------------------------------------------------------------------------------------

def credit_totals(store: Store, agent: URIRef | None = None) -> list[dict[str, Any]]:
    """Credit per agent, in total and by reason, largest first."""
    rows = queries.select(store, "credit-totals", [{"agent": agent, "g": PROVENANCE_GRAPH}])
    agents: dict[URIRef, dict[str, Any]] = {}
    for row in rows:
        entry = agents.setdefault(row["agent"], {
            "agent": str(row["agent"]), "name": str(row["name"]) if row.get("name") is not None else None,
            "total": Decimal(0), "entries": 0, "by_reason": {}})
        amount = Decimal(str(row["total"]))
        entry["total"] += amount
        entry["entries"] += int(row["entries"])
        entry["by_reason"][REASON_NAMES.get(row["reason"], str(row["reason"]))] = float(amount)
    result = sorted(agents.values(), key=lambda e: (-e["total"], e["agent"]))
    for entry in result:
        entry["total"] = float(entry["total"])
    return result


@dataclass
class Acknowledgement:
    agent: URIRef
    name: str | None
    roles: set[str] = field(default_factory=set)

    def to_json(self) -> dict[str, Any]:
        return {"agent": str(self.agent), "name": self.name, "roles": sorted(self.roles)}


ROLE_WORDS = {
    "author": "workflows written by", "verifier": "verified by", "compute": "computed on hardware contributed by",
    "service": "computed by web services of", "data": "data provided by",
}


def acknowledgements(store: Store, product: URIRef) -> dict[str, Any]:
    """Every agent to thank for a product, over its whole provenance chain, and a sentence to cite."""
    check_iri(product)
    if not queries.ask(store, "product-exists", [{"product": product}]):
        raise NotFound(f"no data product {product}")
    people: dict[URIRef, Acknowledgement] = {}
    for row in queries.select(store, "acknowledgements", [{"product": product}]):
        name = str(row["name"]) if row.get("name") is not None else None
        entry = people.setdefault(row["agent"], Acknowledgement(row["agent"], name))
        entry.roles.add(str(row["role"]))
        entry.name = entry.name or name
    ordered = sorted(people.values(), key=lambda a: (a.name or str(a.agent)).lower())
    return {"product": str(product), "agents": [a.to_json() for a in ordered],
            "sentence": citation_sentence(product, ordered)}


def citation_sentence(product: URIRef, agents: list[Acknowledgement]) -> str:
    """"This product was made with workflows written by …; verified by …; computed on … ; data …"."""
    parts = []
    for role in ("author", "verifier", "compute", "service", "data"):
        names = [a.name or str(a.agent) for a in agents if role in a.roles]
        if names:
            parts.append(f"{ROLE_WORDS[role]} {_join(names)}")
    if not parts:
        return f"No contributors are recorded for {product}."
    return f"We thank the contributors to {product}: {'; '.join(parts)}."


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def product_provenance(store: Store, product: URIRef) -> Graph:
    """The PROV graph of a product: it, the executions and inputs upstream of it, their agents, credits."""
    if not queries.ask(store, "product-exists", [{"product": product}]):
        raise NotFound(f"no data product {product}")
    graph = queries.construct(store, "product-provenance", [{"product": product, "g": PROVENANCE_GRAPH}])
    bind_prefixes(graph)
    graph.bind("foaf", FOAF)
    graph.bind("rdfs", RDFS)
    return graph
