"""A claim's execution context in one query, with the registry facts it needs cached per process.

``kgsched.provenance.recording.read_context`` asks three queries per claim: the job's expression and
workflow, who the result credits (the workflow's authors and verifiers, the runner's owner and
storages: queries/execution-agents.rq), and the expression's arguments. Only the arguments are the
claim's own; the rest is stated by registrants and changes only when someone registers, so it is read
once per process and registry generation (kgsched.registry.generation), and the expression with its
workflow and arguments in one query (queries/expression-context.rq).

That query's answer is itself cached (:class:`ExpressionRows`) unless an argument is another
expression: an expression's workflow, address and arguments never change once the service wrote
them, and a dataset argument's location, checksum, storage and provider are its registrant's
statements, which change only with the registry generation; the products made for an input
expression, and their replicas, change with every result and are read at every claim.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rdflib import URIRef

from kgsched.graph import queries
from kgsched.graph.store import Store
from kgsched.jobs.product_sources import ProductSources
from kgsched.literals import optional_str
from kgsched.provenance.recording import ExecutionContext, arguments_from_rows
from kgsched.provenance.replicas import storages
from kgsched.registry.generation import registry_cache


def claim_context(store: Store, jobs: URIRef, job: URIRef, expression: URIRef, claim: URIRef, runner: URIRef,
                  claimed_at: dt.datetime, generation: frozenset[str] | None = None,
                  rows: Sequence[Mapping[str, Any]] | None = None) -> ExecutionContext | None:
    """What read_context says, or None when the expression has no workflow (read_context says why).
    ``rows``: the expression's rows of expression-context.rq, if already read (``expression_rows``)."""
    if rows is None:
        rows = queries.select(store, "expression-context", [{"expression": expression}])
    head = next((row for row in rows if row.get("workflow") is not None), None)
    if head is None:
        return None
    workflow = head["workflow"]
    cache = registry_cache(store)
    generation = cache.current() if generation is None else generation
    kind, implementation, version = cache.get(("workflow", workflow), lambda: _workflow(store, job, jobs),
                                              checked=generation)
    roles = cache.get(("agents", workflow, runner), lambda: _agents(store, workflow, runner), checked=generation)
    runner_storage = tuple(sorted(roles["storage"]))
    # replicas are the provenance graph's and change with every result: read per claim, never cached
    literals, inputs = arguments_from_rows(store, rows, runner_storage)
    declared = cache.get(("storages", runner_storage), lambda: storages(store, runner_storage), checked=generation)
    address = str(head["address"]) if head.get("address") is not None else \
        hashlib.sha256(str(expression).encode()).hexdigest()
    return ExecutionContext(
        job=job, claim=claim, expression=expression, address=address, workflow=workflow, runner=runner,
        claimed_at=claimed_at, implementation_kind=kind, implementation=implementation, version=version,
        runner_owner=roles["owner"][0] if roles["owner"] else None, runner_storage=runner_storage,
        authors=tuple(sorted(roles["author"])), verifiers=tuple(sorted(roles["verifier"])), literals=literals,
        inputs=inputs, storages=declared)


#: Expressions per batched read (a query's parsing and planning cost about as much as its answer for
#: one expression: a batch of 32 costs a fifth as much per expression).
BATCH = 32


class ExpressionRows:
    """expression-context.rq's rows per expression, kept (at most ``size``, least recently used
    dropped) for expressions without an input expression, filed under the registry generation. A job
    is mostly claimed once, so what is kept is mostly what a search read ahead for the next claims."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._rows: OrderedDict[URIRef, tuple[frozenset[str], list[Mapping[str, Any]]]] = OrderedDict()
        self.hits = 0

    def get(self, store: Store, expression: URIRef, generation: frozenset[str],
            ahead: Iterable[URIRef] = ()) -> list[Mapping[str, Any]]:
        """The expression's rows: kept ones if filed under ``generation``, else read — together with up
        to BATCH - 1 of ``ahead`` not kept (the next claims' expressions: a query's parsing and planning
        cost about as much as its answer for one expression, so a batch of 32 costs a fifth as much per
        expression) — and kept if they may be."""
        with self._lock:
            kept = self._rows.get(expression)
            if kept is not None and kept[0] == generation:
                self._rows.move_to_end(expression)
                self.hits += 1
                return kept[1]
            wanted = [expression]
            for other in ahead:
                if len(wanted) >= BATCH:
                    break
                other_kept = self._rows.get(other)
                if (other_kept is None or other_kept[0] != generation) and other not in wanted:
                    wanted.append(other)
        found = expression_rows(store, wanted)
        self._keep(found, generation)
        return found.get(expression, [])

    def _keep(self, found: Mapping[URIRef, list[Mapping[str, Any]]], generation: frozenset[str]) -> None:
        with self._lock:
            for expression, rows in found.items():
                if rows and not any(row.get("input") is not None for row in rows):
                    self._rows[expression] = (generation, rows)
                    self._rows.move_to_end(expression)
            while len(self._rows) > self.size:
                self._rows.popitem(last=False)


def expression_rows(store: Store, expressions: Sequence[URIRef]) -> dict[URIRef, list[Mapping[str, Any]]]:
    """expression-context.rq for several expressions in one query (a query's parsing and planning cost
    about as much as its answer for one expression: a batch of 32 costs a fifth as much per expression)."""
    found: dict[URIRef, list[Mapping[str, Any]]] = defaultdict(list)
    for row in queries.select(store, "expression-context", [{"expression": e} for e in expressions]):
        found[row["expression"]].append(row)
    return dict(found)


def cached_product_sources(store: Store, generation: frozenset[str] | None = None) -> ProductSources:
    """Registered product endpoints and storages (product-sources.rq), cached under the registry generation."""
    return registry_cache(store).get("product-sources", lambda: ProductSources.read(store), checked=generation)


def _workflow(store: Store, job: URIRef, jobs: URIRef) -> tuple[URIRef | None, str | None, str | None]:
    """The job's workflow's implementation kind, implementation and version (job-context.rq)."""
    rows = queries.select(store, "job-context", [{"job": job, "jobs": jobs}])
    row = rows[0] if rows else {}
    return row.get("kind"), optional_str(row.get("implementation")), optional_str(row.get("version"))


def _agents(store: Store, workflow: URIRef, runner: URIRef) -> dict[str, list[URIRef]]:
    """Who a result credits and where the runner stores products (execution-agents.rq)."""
    roles: dict[str, list[URIRef]] = {"author": [], "verifier": [], "owner": [], "storage": []}
    for row in queries.select(store, "execution-agents", [{"workflow": workflow, "runner": runner}]):
        bucket = roles[str(row["role"])]
        if row["value"] not in bucket:
            bucket.append(row["value"])
    return roles
