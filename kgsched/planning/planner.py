"""The planner: for every node of a request's DAG, reuse a cached product, recompute it on a chosen
runner, or say why it cannot — and explain the decision in words.

The rules are pure functions of :class:`~kgsched.planning.facts.Facts` (gathered by a few batched SPARQL
queries), so they are unit-tested without a graph and benchmarked against a plain-dict feed.

How a plan is made
    1. *Cost of availability* (inputs first): for every node and every site, the estimated seconds
       until the node's value could be at that site — by moving a usable cached copy there, or by
       computing it on an able runner (queue wait + time to bring its inputs + expected duration) and
       moving the output. Both use the sites' bandwidths.
    2. *Decisions* (root first, demand-driven): the root is needed; a needed node takes the cheaper of
       reusing and recomputing at the sites where its consumers run. A recomputed node needs its
       inputs at its runner's site; a reused node needs nothing upstream. So when a node is
       recomputed, everything downstream of it that needs it is recomputed too, and nothing upstream
       that is cached and usable is.
    3. Runner choice, like dask.distributed's ``decide_worker`` extended with duration: the lowest
       estimated finish (queue wait + bytes missing / bandwidth + expected duration), ties to the
       runner storing less. Choices add to the runner's queue for later nodes of the same plan.

What counts as cache: products of successes and of analysis exceptions (scientific no-results are
results), unexpired, not older than the request's maximum age, made by a runner the requester's
policy trusts (default: any registered runner; optionally only runners of listed owners), so a
poisoned cache entry from an unknown producer does not spread.
"""

from __future__ import annotations

import datetime as dt
import gc
import heapq
import math
import uuid
from collections import defaultdict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import numpy as np
from rdflib import Graph, URIRef
from rdflib import Literal as RDFLiteral
from rdflib.namespace import PROV, RDF, RDFS, XSD

from kgsched.graph.store import Store
from kgsched.namespaces import KS, KSID, PLANS_GRAPH, bind_prefixes
from kgsched.planning.expressions import Expression, RequestDag, build_dag
from kgsched.planning.facts import DatasetInfo, Facts, ProductInfo, gather_facts

Decision = Literal["reuse", "recompute", "cannot"]
INF = math.inf
ANYWHERE_INDEX = -1  # the root is needed "anywhere" unless the request names a delivery site


@dataclass(frozen=True)
class PlanOptions:
    force_recompute: bool = False
    max_age_seconds: float | None = None
    preferred_runner: URIRef | None = None
    trusted_owners: frozenset[URIRef] | None = None  # None: products of any registered runner
    deliver_to_site: URIRef | None = None
    default_duration_seconds: float = 60.0
    default_output_bytes: int = 1_000_000
    default_wan_bandwidth: float = 10e6  # bytes/s between sites with no measured link
    default_local_bandwidth: float = 1e9  # bytes/s within a site that declares none
    max_offers_recorded: int = 3

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any] | None) -> PlanOptions:
        """Options as a request or the CLI gives them (JSON names), checked."""
        from kgsched.errors import InvalidRequest
        from kgsched.graph.binding import check_iri

        options = dict(options or {})
        known = {"force_recompute", "max_age_seconds", "preferred_runner", "trusted_owners", "deliver_to_site"}
        unknown = set(options) - known
        if unknown:
            raise InvalidRequest(
                f"unknown plan option(s): {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
        kwargs: dict[str, Any] = {}
        if "force_recompute" in options:
            if not isinstance(options["force_recompute"], bool):
                raise InvalidRequest("force_recompute must be true or false")
            kwargs["force_recompute"] = options["force_recompute"]
        if options.get("max_age_seconds") is not None:
            age = options["max_age_seconds"]
            if isinstance(age, bool) or not isinstance(age, int | float) or age < 0:
                raise InvalidRequest("max_age_seconds must be a number ≥ 0")
            kwargs["max_age_seconds"] = float(age)
        for key in ("preferred_runner", "deliver_to_site"):
            if options.get(key) is not None:
                kwargs[key] = check_iri(options[key])
        if options.get("trusted_owners") is not None:
            owners = options["trusted_owners"]
            if not isinstance(owners, list):
                raise InvalidRequest("trusted_owners must be a list of agent IRIs")
            kwargs["trusted_owners"] = frozenset(check_iri(o) for o in owners)
        return cls(**kwargs)


class Offer(NamedTuple):
    """A runner's answer to 'can you compute this': what it would cost, in seconds from now.

    ``transfer_seconds`` is how long until the inputs are at the runner: datasets it lacks moved at
    the sites' bandwidth, and upstream values computed or moved there (inputs are made in parallel,
    so the slowest counts). A named tuple, not a frozen dataclass: a plan makes three per recomputed
    node, and a frozen dataclass costs several times as much to build."""

    runner: URIRef
    site: URIRef
    queue_seconds: float
    transfer_seconds: float
    bytes_to_move: int
    duration_seconds: float
    duration_source: str
    finish_seconds: float

    def to_json(self) -> dict[str, Any]:
        return {"runner": str(self.runner), "site": str(self.site), "queue_seconds": _round(self.queue_seconds),
                "transfer_seconds": _round(self.transfer_seconds), "bytes_to_move": self.bytes_to_move,
                "duration_seconds": _round(self.duration_seconds), "duration_source": self.duration_source,
                "finish_seconds": _round(self.finish_seconds)}


@dataclass
class PlanStep:
    iri: URIRef
    expression: URIRef
    address: str
    workflow: URIRef
    decision: Decision
    reason: str
    estimated_cost_seconds: float | None = None
    runner: URIRef | None = None
    product: URIRef | None = None
    candidates: list[URIRef] = field(default_factory=list)
    offers: list[Offer] = field(default_factory=list)
    depends_on: list[URIRef] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "step": str(self.iri), "expression": str(self.expression), "address": self.address,
            "workflow": str(self.workflow), "decision": self.decision, "reason": self.reason,
            "estimated_cost_seconds": _round(self.estimated_cost_seconds),
            "runner": _str(self.runner), "product": _str(self.product),
            "candidates": [str(c) for c in self.candidates],
            "offers": [o.to_json() for o in self.offers],
            "depends_on": [str(d) for d in self.depends_on],
        }


@dataclass
class Plan:
    iri: URIRef
    request: URIRef
    requester: URIRef
    root: URIRef
    created: dt.datetime
    steps: list[PlanStep]
    expressions: list[Expression]
    options: PlanOptions
    skipped: dict[URIRef, str] = field(default_factory=dict)  # not needed and not cached
    request_json: dict[str, Any] | None = None

    def step_for(self, expression: URIRef) -> PlanStep:
        for step in self.steps:
            if step.expression == expression:
                return step
        raise KeyError(expression)

    def summary(self) -> dict[str, int]:
        counts = {"reuse": 0, "recompute": 0, "cannot": 0}
        for step in self.steps:
            counts[step.decision] += 1
        return counts

    def to_json(self) -> dict[str, Any]:
        return {
            "plan": str(self.iri), "request": str(self.request), "requester": str(self.requester),
            "root": str(self.root), "created": self.created.isoformat(), "summary": self.summary(),
            "steps": [s.to_json() for s in self.steps],
            "skipped": [{"expression": str(e), "reason": r} for e, r in self.skipped.items()],
        }

    def to_graph(self, include_expressions: bool = True) -> Graph:
        """The plan as RDF: request, plan, steps with decision, runner, cost, reason and offers."""
        graph = Graph()
        bind_prefixes(graph)
        if include_expressions:
            for expression in self.expressions:
                expression.to_graph(graph)
        graph.add((self.request, RDF.type, KS.Request))
        graph.add((self.request, KS.requestedBy, self.requester))
        graph.add((self.request, KS.rootExpression, self.root))
        graph.add((self.request, PROV.generatedAtTime, _dt_literal(self.created)))
        graph.add((self.iri, RDF.type, KS.Plan))
        graph.add((self.iri, KS.forRequest, self.request))
        graph.add((self.iri, PROV.generatedAtTime, _dt_literal(self.created)))
        summary = self.summary()
        graph.add((self.iri, RDFS.comment, RDFLiteral(
            f"{summary['reuse']} reuse, {summary['recompute']} recompute, {summary['cannot']} cannot")))
        decisions = {"reuse": KS.Reuse, "recompute": KS.Recompute, "cannot": KS.Cannot}
        for step in self.steps:
            graph.add((self.iri, KS.step, step.iri))
            graph.add((step.iri, RDF.type, KS.PlanStep))
            graph.add((step.iri, KS.forExpression, step.expression))
            graph.add((step.iri, KS.decision, decisions[step.decision]))
            graph.add((step.iri, KS.reason, RDFLiteral(step.reason)))
            if step.estimated_cost_seconds is not None and math.isfinite(step.estimated_cost_seconds):
                graph.add((step.iri, KS.estimatedCostSeconds, _decimal(step.estimated_cost_seconds)))
            if step.runner is not None:
                graph.add((step.iri, KS.chosenRunner, step.runner))
            if step.product is not None:
                graph.add((step.iri, KS.reusedProduct, step.product))
            for n, offer in enumerate(step.offers):
                node = URIRef(f"{step.iri}/offer/{n}")
                graph.add((step.iri, KS.consideredOffer, node))
                graph.add((node, RDF.type, KS.Offer))
                graph.add((node, KS.offeredBy, offer.runner))
                graph.add((node, KS.forExpression, step.expression))
                graph.add((node, KS.bytesToMove, RDFLiteral(offer.bytes_to_move, datatype=XSD.integer)))
                graph.add((node, KS.estimatedFinishSeconds, _decimal(offer.finish_seconds)))
        return graph


def _round(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(value, 3)


def _str(term: URIRef | None) -> str | None:
    return None if term is None else str(term)


def _decimal(value: float) -> RDFLiteral:
    return RDFLiteral(f"{value:.3f}", datatype=XSD.decimal)


def _dt_literal(moment: dt.datetime) -> RDFLiteral:
    return RDFLiteral(moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), datatype=XSD.dateTime)


# --------------------------------------------------------------------------------------------------
# Words
# --------------------------------------------------------------------------------------------------

def short(iri: URIRef | str | None) -> str:
    """The last path segment of an IRI, for sentences people read."""
    if iri is None:
        return "?"
    text = str(iri).rstrip("/")
    for base, kind in _HASH_NAMED:
        if text.startswith(base):  # named by a hash: its first 12 characters tell them apart for a reader
            return f"{kind} {text[len(base):][:12]}"
    return text.rsplit("#", 1)[-1].rsplit("/", 1)[-1]


_HASH_NAMED = ((str(KSID["expression/"]), "expression"), (str(KSID["product/"]), "product"))


def human_bytes(size: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(size) < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def human_seconds(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "never"
    if seconds < 1:
        return f"{seconds:.3f} s"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


# --------------------------------------------------------------------------------------------------
# The rules
# --------------------------------------------------------------------------------------------------

@dataclass
class _Pool:
    """The runners able and allowed to compute expressions of one workflow over one set of datasets.

    ``base`` is, per site, the lowest static cost (queue wait before this plan + staging the datasets
    + expected duration) of a runner there; ``heaps`` keep, per site, the runners ordered by current
    cost, where the load this plan adds only ever raises a cost — so stale entries are fixed lazily
    when they reach the top, and picking the best runner of a site stays O(log n)."""

    runners: list[URIRef]
    reason: str
    base: np.ndarray
    #: (site index, heap of (cost, bytes stored, name, runner id)) for every site with a runner
    site_heaps: list[tuple[int, list[tuple[float, int, str, int]]]]
    #: runner id → (static cost, staging seconds, staged bytes, duration, duration source, slots)
    static: dict[int, tuple[float, float, int, float, str, int]]


@dataclass
class _NodeState:
    expression: Expression
    index: int  # position in the topological order: the row of the estimate arrays
    products: list[ProductInfo]
    refused_products: list[str]
    pool: _Pool
    output_bytes: float
    input_bytes: int = 0  # bytes of the input values
    ready: list[float] = field(default_factory=list)  # seconds until all inputs could be at each site
    cheapest: float = INF  # seconds until the value could be anywhere (INF: it cannot be had)


#: how many (node, site, site) floats the estimate pass holds at once: bounds its memory whatever
#: the DAG's width and the number of sites
_ESTIMATE_BLOCK = 2_000_000


class Decider:
    """Applies the rules to one DAG and its facts. Pure: no I/O."""

    def __init__(self, dag: RequestDag, facts: Facts, options: PlanOptions) -> None:
        self.dag = dag
        self.facts = facts
        self.options = options
        self.order = dag.expressions()
        self.by_address = {e.address: e for e in self.order}
        self.consumers: dict[str, list[str]] = defaultdict(list)
        for expression in self.order:
            for child in expression.inputs:
                self.consumers[child].append(expression.address)
        self._index_sites()
        self._index_runners()
        self._where_cache: dict[frozenset[int], str] = {}
        self._out_factor_cache: dict[frozenset[int], list[float]] = {}
        self._pools: dict[tuple, _Pool] = {}
        self._able: dict[URIRef, list[URIRef]] = {}
        self._duration_cache: dict[tuple[URIRef, URIRef], tuple[float, str]] = {}
        self._workflow_history: dict[URIRef, tuple[float, int, float | None]] = {}
        sums: dict[URIRef, list[float]] = defaultdict(lambda: [0.0, 0, 0.0, 0])
        for (workflow, _), history in facts.history.items():
            entry = sums[workflow]
            entry[0] += history.mean_duration * history.runs
            entry[1] += history.runs
            if history.mean_output_bytes is not None:
                entry[2] += history.mean_output_bytes * history.runs
                entry[3] += history.runs
        for workflow, (total, runs, size_total, sized_runs) in sums.items():
            mean_size = size_total / sized_runs if sized_runs else None
            self._workflow_history[workflow] = (total / runs, int(runs), mean_size)

    # -- sites and bandwidth ---------------------------------------------------------------------
    def _index_sites(self) -> None:
        facts = self.facts
        sites = {r.site for r in facts.runners.values()}
        sites |= {d.site for d in facts.datasets.values()}
        sites |= {p.site for ps in facts.products.values() for p in ps}
        sites |= {s for pair in facts.bandwidth for s in pair}
        if self.options.deliver_to_site is not None:
            sites.add(self.options.deliver_to_site)
        self.sites = sorted(sites)
        self.site_index = {s: i for i, s in enumerate(self.sites)}
        n = len(self.sites)
        inverse = np.full((n, n), 1.0 / self.options.default_wan_bandwidth)
        for i in range(n):
            inverse[i, i] = 1.0 / self.options.default_local_bandwidth
        for (a, b), bandwidth in facts.bandwidth.items():
            inverse[self.site_index[a], self.site_index[b]] = 1.0 / bandwidth
        self.inverse_bandwidth = inverse  # seconds per byte from row site to column site
        self._inverse_rows = inverse.tolist()  # the same, for fast scalar access

    def _index_runners(self) -> None:
        """Runners and sites become small integers in the hot loops: a URIRef compares in Python
        (rdflib's ``__eq__``), and a 10,000-node plan did it hundreds of thousands of times."""
        self.runner_iris: list[URIRef] = sorted(self.facts.runners)
        self.runner_ids = {runner: n for n, runner in enumerate(self.runner_iris)}
        self.runner_site = [self.site_index[self.facts.runners[r].site] for r in self.runner_iris]
        #: slot-seconds this plan adds to each runner, by runner id
        self.extra_load = [0.0] * len(self.runner_iris)
        preferred = self.options.preferred_runner
        self.preferred_id = None if preferred is None else self.runner_ids.get(preferred)
        deliver = self.options.deliver_to_site
        self.delivery_site = ANYWHERE_INDEX if deliver is None else self.site_index[deliver]

    def transfer(self, size: float, source: URIRef, target: URIRef) -> float:
        return size * self._inverse_rows[self.site_index[source]][self.site_index[target]]

    # -- per-node facts ----------------------------------------------------------------------------
    def usable_products(self, expression: Expression) -> tuple[list[ProductInfo], list[str]]:
        usable, refused = [], []
        now, options = self.facts.now, self.options
        for product in self.facts.products.get(expression.iri, []):
            if product.expires is not None and product.expires <= now:
                refused.append(f"{short(product.iri)} expired at {product.expires.isoformat()}")
            elif options.max_age_seconds is not None and (
                    product.generated_at is None
                    or (now - product.generated_at).total_seconds() > options.max_age_seconds):
                refused.append(f"{short(product.iri)} is older than the maximum age of "
                               f"{human_seconds(options.max_age_seconds)}")
            elif product.owner is None:
                refused.append(f"{short(product.iri)} was not made by a registered runner, so it is not trusted")
            elif options.trusted_owners is not None and product.owner not in options.trusted_owners:
                refused.append(f"{short(product.iri)} was made by {short(product.runner)} of {short(product.owner)}, "
                               "whom the request does not trust")
            elif product.site not in self.site_index:
                refused.append(f"{short(product.iri)} is stored at an unknown site")
            else:
                usable.append(product)
        usable.sort(key=lambda p: (p.size_bytes, str(p.iri)))
        return usable, refused

    def pool(self, expression: Expression) -> _Pool:
        """Runners able and allowed to compute the expression (shared by every expression of the same
        workflow over the same datasets), or the reason there are none."""
        key = (expression.workflow.iri, expression.datasets)
        if key not in self._pools:
            runners, reason = self._compute_candidates(expression)
            base = np.full(len(self.sites), INF)
            heaps: dict[int, list[tuple[float, int, str, int]]] = defaultdict(list)
            static = {}
            for runner in runners:
                info = self.facts.runners[runner]
                rid = self.runner_ids[runner]
                i = self.runner_site[rid]
                staging, staged = self.staging(expression, runner, info.site)
                duration, source = self.duration(expression, runner)
                slots = max(1, info.cores // max(1, expression.workflow.requires_cores))
                waiting = self.facts.load.get(runner, 0) * self.options.default_duration_seconds / slots
                cost = waiting + staging + duration
                static[rid] = (cost, staging, staged, duration, source, slots)
                base[i] = min(base[i], cost)
                heaps[i].append((cost, info.storage_bytes, str(runner), rid))
            for heap in heaps.values():
                heapq.heapify(heap)
            self._pools[key] = _Pool(runners, reason, base, sorted(heaps.items()), static)
        return self._pools[key]

    def best_at_site(self, pool: _Pool, heap: list[tuple[float, int, str, int]]) -> tuple[float, int, str, int]:
        """The runner of the pool at a site (its heap) with the lowest current cost (queue as this
        plan left it), as its heap entry (cost, bytes stored, name, runner id)."""
        extra_load, static = self.extra_load, pool.static
        while True:
            entry = heap[0]
            cost, storage, name, rid = entry
            runner_static = static[rid]
            current = runner_static[0] + extra_load[rid] / runner_static[5]
            if current <= cost + 1e-9:
                return entry
            heapq.heapreplace(heap, (current, storage, name, rid))

    def _compute_candidates(self, expression: Expression) -> tuple[list[URIRef], str]:
        workflow = expression.workflow.iri
        if workflow not in self._able:
            self._able[workflow] = [row.runner for row in self.facts.eligibility.get(workflow, []) if row.able]
        able = self._able[workflow]
        if not able:
            return [], self._explain_no_runner(workflow)
        able_set = set(able)
        for dataset_iri in expression.datasets:
            dataset = self.facts.datasets.get(dataset_iri)
            if dataset is None:
                return [], f"dataset {short(dataset_iri)} is not registered"
            readers = [r for r in dataset.readers if r in able_set]
            if not readers:
                where = (f"it never leaves {short(dataset.site)} and no able runner there may read it"
                         if dataset.restricted else "no able runner holds it or may read it")
                return [], (f"{len(able)} runner(s) could run {short(workflow)}, but none can use dataset "
                            f"{short(dataset_iri)}: {where}")
            able, able_set = readers, set(readers)
        return sorted(able), ""

    def _explain_no_runner(self, workflow: URIRef) -> str:
        rows = self.facts.eligibility.get(workflow, [])
        if not rows:
            return "no runner is registered"
        steps = [("support its implementation kind", "supports_kind"), ("have enough cores", "enough_cores"),
                 ("have enough memory", "enough_memory"), ("trust one of its verifiers", "trusts_verifier"),
                 ("serve the requester", "serves_requester")]
        remaining = rows
        parts = [f"{len(rows)} runner(s) registered"]
        for words, attribute in steps:
            remaining = [r for r in remaining if getattr(r, attribute)]
            parts.append(f"{len(remaining)} {words}")
            if not remaining:
                break
        text = "no runner is able and allowed to run " + short(workflow) + ": " + ", ".join(parts)
        if all(not r.trusts_verifier for r in rows) and any(r.supports_kind for r in rows):
            text += " (is the workflow verified by anyone the runners trust?)"
        return text

    def duration(self, expression: Expression, runner: URIRef) -> tuple[float, str]:
        workflow = expression.workflow
        key = (workflow.iri, runner)
        if key in self._duration_cache:
            return self._duration_cache[key]
        history = self.facts.history.get(key)
        if history is not None:
            result = (history.mean_duration, f"mean of {history.runs} run(s) on this runner")
        else:
            overall = self._workflow_history.get(workflow.iri)
            if overall is not None:
                result = (overall[0], f"mean of {overall[1]} run(s) on other runners")
            elif workflow.estimated_duration is not None:
                result = (workflow.estimated_duration, "the author's estimate")
            else:
                result = (self.options.default_duration_seconds, "the default estimate")
        self._duration_cache[key] = result
        return result

    def output_bytes(self, expression: Expression, products: list[ProductInfo]) -> float:
        if products:
            return float(products[0].size_bytes)
        overall = self._workflow_history.get(expression.workflow.iri)
        if overall is not None and overall[2] is not None:
            return overall[2]
        if expression.workflow.estimated_output_bytes is not None:
            return float(expression.workflow.estimated_output_bytes)
        return float(self.options.default_output_bytes)

    def staging(self, expression: Expression, runner: URIRef, site: URIRef) -> tuple[float, int]:
        """Seconds and bytes to bring the expression's datasets to the runner (0 for what it holds)."""
        seconds, moved = 0.0, 0
        for dataset_iri in expression.datasets:
            dataset: DatasetInfo = self.facts.datasets[dataset_iri]
            if dataset.readers.get(runner):
                continue
            seconds += self.transfer(dataset.size_bytes, dataset.site, site)
            moved += dataset.size_bytes
        return seconds, moved

    # -- pass 1: cost of availability, inputs first ------------------------------------------------
    def estimate(self) -> dict[str, _NodeState]:
        """Per node and site, the seconds until the node's value could be there, and until its inputs
        could be. Nodes of one generation (the same distance from the leaves) are independent, so
        each generation is one numpy computation over all its nodes rather than about ten small
        ones per node: for 10,000 nodes the numpy work is now a few tens of milliseconds, and what
        remains of the pass (~0.2 s, measured) is per-node bookkeeping — pools, cached products."""
        order = self.order
        n, n_sites = len(order), len(self.sites)
        position = {e.address: k for k, e in enumerate(order)}
        inverse = self.inverse_bandwidth
        force = self.options.force_recompute
        states: dict[str, _NodeState] = {}
        pools: list[_Pool] = []
        pool_row: dict[int, int] = {}
        node_pool = np.empty(n, dtype=np.intp)
        sizes: list[float] = []
        reuse = np.full((n, n_sites), INF)
        generation: list[int] = []
        inputs_of: list[list[int]] = []
        for k, expression in enumerate(order):
            products, refused = self.usable_products(expression)
            pool = self.pool(expression)
            row = pool_row.get(id(pool))
            if row is None:
                row = pool_row[id(pool)] = len(pools)
                pools.append(pool)
            node_pool[k] = row
            size = self.output_bytes(expression, products)
            sizes.append(size)
            children = [position[c] for c in expression.inputs]
            inputs_of.append(children)
            generation.append(1 + max(generation[c] for c in children) if children else 0)
            state = _NodeState(expression, k, products, refused, pool, size)
            state.input_bytes = sum(int(sizes[c]) for c in children)
            if products and not force:
                rows = [self.site_index[p.site] for p in products]
                product_sizes = np.array([p.size_bytes for p in products], dtype=float)
                reuse[k] = (product_sizes[:, None] * inverse[rows]).min(axis=0)
            states[expression.address] = state

        out = np.array(sizes, dtype=float)
        base = np.array([p.base for p in pools]).reshape(len(pools), n_sites)
        avail = np.zeros((n, n_sites))
        ready = np.zeros((n, n_sites))
        by_generation: dict[int, list[int]] = defaultdict(list)
        for k, g in enumerate(generation):
            by_generation[g].append(k)
        block = max(1, _ESTIMATE_BLOCK // max(1, n_sites * n_sites))
        for g in sorted(by_generation):
            members = by_generation[g]
            for first in range(0, len(members), block):
                chunk = members[first:first + block]
                nodes = np.array(chunk, dtype=np.intp)
                if g > 0:  # every node past the leaves' generation has at least one input
                    flat = [c for k in chunk for c in inputs_of[k]]
                    counts = [len(inputs_of[k]) for k in chunk]
                    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
                    ready[nodes] = np.maximum.reduceat(avail[flat], starts, axis=0)
                site_cost = base[node_pool[nodes]] + ready[nodes]
                recompute = (site_cost[:, :, None] + out[nodes, None, None] * inverse[None, :, :]).min(axis=1)
                avail[nodes] = np.minimum(reuse[nodes], recompute)
        ready_rows = ready.tolist()
        cheapest = avail.min(axis=1).tolist()
        for state in states.values():
            state.ready = ready_rows[state.index]
            state.cheapest = cheapest[state.index]
        return states

    # -- pass 2: decisions, root first ---------------------------------------------------------------
    def decide(self, plan_iri: URIRef) -> tuple[list[PlanStep], dict[URIRef, str]]:
        states = self.estimate()
        #: the sites (indices; ANYWHERE_INDEX for "anywhere") where each needed node's value is wanted
        needed: dict[str, set[int]] = defaultdict(set)
        root = self.dag.root.address
        needed[root].add(self.delivery_site)
        steps: dict[str, PlanStep] = {}
        skipped: dict[URIRef, str] = {}
        for expression in reversed(self.order):
            address = expression.address
            state = states[address]
            step_iri = plan_iri  # provisional: steps are numbered below, in the order they happen
            depends_on = [self.by_address[a].iri for a in expression.inputs]
            if address not in needed:
                consumer = ", ".join(short(self.by_address[c].iri) for c in self.consumers[address])
                if state.products:
                    product = state.products[0]
                    steps[address] = PlanStep(
                        step_iri, expression.iri, address, expression.workflow.iri, "reuse",
                        f"cached {_describe_product(product)}; not needed now, since {consumer} is reused",
                        0.0, product=product.iri, depends_on=depends_on)
                else:
                    skipped[expression.iri] = f"not needed: {consumer} is reused"
                continue
            step, site = self._decide_node(step_iri, expression, state, needed[address], states)
            step.depends_on = depends_on
            steps[address] = step
            if site is not None:  # recomputed there: its inputs are needed there
                for child in expression.inputs:
                    needed[child].add(site)
        ordered = [steps[e.address] for e in self.order if e.address in steps]
        for n, step in enumerate(ordered, start=1):
            step.iri = URIRef(f"{plan_iri}/step/{n}")
        return ordered, skipped

    def _out_factor(self, targets: set[int]) -> list[float]:
        """Per source site, the seconds per byte to the slowest-to-reach target (0 for none)."""
        key = frozenset(targets)
        factor = self._out_factor_cache.get(key)
        if factor is None:
            real = sorted(t for t in targets if t != ANYWHERE_INDEX)
            factor = self.inverse_bandwidth[:, real].max(axis=1).tolist() if real else [0.0] * len(self.sites)
            self._out_factor_cache[key] = factor
        return factor

    def _where(self, targets: set[int]) -> str:
        key = frozenset(targets)
        words = self._where_cache.get(key)
        if words is None:
            sites = sorted(short(self.sites[t]) for t in targets if t != ANYWHERE_INDEX)
            words = self._where_cache[key] = "where it is needed" if not sites else "at " + " and ".join(sites)
        return words

    def _decide_node(self, step_iri: URIRef, expression: Expression, state: _NodeState, targets: set[int],
                     states: dict[str, _NodeState]) -> tuple[PlanStep, int | None]:
        """The node's step, and the site where it is recomputed (None when it is not)."""
        factor = self._out_factor(targets)
        # reuse: the cheapest usable copy, moved to every site that needs it
        best_product, reuse_cost = None, INF
        if not self.options.force_recompute:
            for product in state.products:
                cost = product.size_bytes * factor[self.site_index[product.site]]
                if cost < reuse_cost:
                    best_product, reuse_cost = product, cost
        # recompute: every able runner's offer with the queue as this plan has left it
        visited, moved = self._offers(state, factor)
        best_visit = None
        if self.preferred_id is not None:
            best_visit = next((v for v in visited if v[3] == self.preferred_id), None)
        if best_visit is None and visited:
            best_visit = min(visited)  # cost, then bytes stored, then name (names are unique)
        recompute_cost = INF if best_visit is None else best_visit[0]
        candidates = state.pool.runners

        if best_product is not None and reuse_cost <= recompute_cost:
            why = f"cached {_describe_product(best_product)} reused: having it {self._where(targets)} takes " \
                  f"{human_seconds(reuse_cost)}"
            if best_visit is not None:
                why += (f", recomputing would take {human_seconds(recompute_cost)} on "
                        f"{short(self.runner_iris[best_visit[3]])}")
            return PlanStep(step_iri, expression.iri, expression.address, expression.workflow.iri, "reuse", why,
                            reuse_cost, product=best_product.iri, candidates=candidates), None
        if best_visit is not None:
            best_offer = self._offer(state.pool, best_visit, moved)
            top = sorted(visited, key=lambda v: (v[5] + v[6], v[2]))[: self.options.max_offers_recorded]
            recorded = [best_offer if v is best_visit else self._offer(state.pool, v, moved) for v in top]
            self.extra_load[best_visit[3]] += best_offer.duration_seconds  # one slot busy that long
            why = self._recompute_reason(state, best_offer, best_visit[3] == self.preferred_id, best_product,
                                         reuse_cost, recompute_cost, len(visited), self._where(targets))
            return PlanStep(step_iri, expression.iri, expression.address, expression.workflow.iri, "recompute",
                            why, recompute_cost, runner=best_offer.runner, candidates=candidates,
                            offers=recorded), best_visit[4]
        reasons = []
        if self.options.force_recompute and state.products:
            reasons.append("recompute was forced")
        elif state.refused_products:
            reasons.append("no usable cached product (" + "; ".join(state.refused_products) + ")")
        else:
            reasons.append("no cached product")
        if state.pool.reason:
            reasons.append(state.pool.reason)
        else:
            blocked = [c for c in expression.inputs if not math.isfinite(states[c].cheapest)]
            if blocked:
                reasons.append("input " + ", ".join(short(self.by_address[c].iri) for c in blocked)
                               + " cannot be computed")
            else:
                reasons.append("no able runner can receive its inputs")
        return PlanStep(step_iri, expression.iri, expression.address, expression.workflow.iri, "cannot",
                        "; ".join(reasons), None), None

    def _offers(self, state: _NodeState, factor: list[float]) -> tuple[list[tuple], int]:
        """Each visited site's best runner as (cost at the targets, bytes stored, name, runner id,
        site, cost before inputs, inputs ready), best sites first, and the input bytes to move.
        ``factor`` is, per site, the seconds per byte of moving the output to the targets.

        Sites are visited in order of a lower bound (their best static cost plus moving the output),
        and the visit stops once enough offers are recorded and no remaining site can do better:
        the plan's load only ever raises a runner's cost above that bound."""
        pool = state.pool
        ready_at = state.ready
        moved = state.input_bytes  # an upper bound: unless an input is made or kept right there
        size = state.output_bytes
        # A heap's top key never exceeds the current cost of any runner in it, so it bounds the site.
        bounds = [(heap[0][0] + ready_at[i] + size * factor[i], i, heap) for i, heap in pool.site_heaps if heap]
        bounds.sort(key=_first)
        visited: list[tuple] = []
        best = INF
        enough = self.options.max_offers_recorded
        for bound, i, heap in bounds:
            ready = ready_at[i]
            if ready == INF or bound == INF:
                continue
            if len(visited) >= enough and bound >= best:
                break
            cost, storage, name, rid = self.best_at_site(pool, heap)
            total = cost + ready + size * factor[i]
            visited.append((total, storage, name, rid, i, cost, ready))
            if total < best:
                best = total
        preferred = self.preferred_id
        if preferred is not None and preferred in pool.static and all(v[3] != preferred for v in visited):
            i = self.runner_site[preferred]
            if ready_at[i] != INF:
                static = pool.static[preferred]
                cost = static[0] + self.extra_load[preferred] / static[5]
                runner = self.runner_iris[preferred]
                visited.append((cost + ready_at[i] + size * factor[i], self.facts.runners[runner].storage_bytes,
                                str(runner), preferred, i, cost, ready_at[i]))
        return visited, moved

    def _offer(self, pool: _Pool, visit: tuple, moved: int) -> Offer:
        _, _, _, rid, site, cost, ready = visit
        _, staging, staged, duration, source, _ = pool.static[rid]
        return Offer(self.runner_iris[rid], self.sites[site], cost - staging - duration, ready + staging,
                     moved + staged, duration, source, cost + ready)

    def _recompute_reason(self, state: _NodeState, offer: Offer, is_preferred: bool, product: ProductInfo | None,
                          reuse_cost: float, recompute_cost: float, n_offers: int, where: str) -> str:
        if self.options.force_recompute:
            head = "recompute was forced"
        elif product is not None:
            head = (f"recomputing ({human_seconds(recompute_cost)}) beats moving cached "
                    f"{_describe_product(product)} {where} ({human_seconds(reuse_cost)})")
        elif state.refused_products:
            head = "no usable cached product (" + "; ".join(state.refused_products) + ")"
        else:
            head = "not cached"
        preferred = " (the request's preferred runner)" if is_preferred else ""
        able = len(state.pool.runners)
        return (f"{head}; {short(offer.runner)}{preferred} at {short(offer.site)} chosen from {able} able runner(s) "
                f"({n_offers} site offer(s) weighed): finish in {human_seconds(offer.finish_seconds)} = queue "
                f"{human_seconds(offer.queue_seconds)} + inputs there in {human_seconds(offer.transfer_seconds)} "
                f"({human_bytes(offer.bytes_to_move)} to move) + run {human_seconds(offer.duration_seconds)} "
                f"({offer.duration_source})")


def _first(item: tuple) -> float:
    return item[0]


def _describe_product(product: ProductInfo) -> str:
    outcome = "analysis exception" if product.outcome == KS.AnalysisException else "result"
    return f"{outcome} {short(product.iri)} ({human_bytes(product.size_bytes)} at {short(product.site)})"


# --------------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------------

def decide(dag: RequestDag, facts: Facts, requester: URIRef, options: PlanOptions | None = None,
           request_json: dict[str, Any] | None = None) -> Plan:
    """The pure part: a plan from a DAG and the facts about it."""
    options = options or PlanOptions()
    token = uuid.uuid4().hex
    plan_iri = URIRef(KSID[f"plan/{token}"])
    steps, skipped = Decider(dag, facts, options).decide(plan_iri)
    return Plan(plan_iri, URIRef(KSID[f"request/{token}"]), requester, dag.root.iri, facts.now, steps,
                dag.expressions(), options, skipped, request_json)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Planning allocates hundreds of thousands of small, acyclic objects; the cyclic collector's
    full passes over them took a quarter of a 10,000-node plan (measured). Nothing planning makes
    needs it, so it waits until the plan is made (and catches up on its own afterwards)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def plan_request(store: Store, request: Mapping[str, Any] | Graph, requester: URIRef,
                 options: PlanOptions | None = None, now: dt.datetime | None = None) -> Plan:
    """Check the request, gather the facts in a few batched queries, decide."""
    with gc_paused():
        dag = build_dag(store, request)
        facts = gather_facts(store, dag, requester, now)
        request_json = dict(request) if isinstance(request, Mapping) else None
        return decide(dag, facts, requester, options, request_json)


def store_plan(store: Store, plan: Plan) -> None:
    """Write the request, its expressions and the plan into the plans graph, in one update."""
    store.add_to_graph(PLANS_GRAPH, plan.to_graph())
