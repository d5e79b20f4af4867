"""The planner's cost model: how long until a value could be where it is needed, and what each runner
would take to compute it.

* :class:`Network` — the sites and the seconds per byte between them (measured links, else defaults);
* :class:`Pool` — the runners able and allowed to compute one workflow over one set of datasets, with
  each runner's :class:`RunnerCost` and, per site, a heap of runners (``HeapEntry``) by current cost;
* :class:`CostModel` — the facts turned into those, the load this plan adds to each runner, and the
  inputs-first estimate (:meth:`CostModel.estimate`, numpy, one computation per DAG generation).

Pure: a function of :class:`~kgsched.planning.facts.Facts` and the options; it never reads the store
(kgsched.planning.facts gathers the facts). Runners and sites are small integers here: a URIRef
compares in Python (rdflib's ``__eq__``), and a 10,000-node plan did it hundreds of thousands of times.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from rdflib import URIRef

from kgsched.planning import words
from kgsched.planning.model import PlanOptions

if TYPE_CHECKING:  # types only: the rules never import the modules that query the store
    from kgsched.planning.expressions import Expression
    from kgsched.planning.facts import Facts, ProductInfo

INF = math.inf

#: how many (node, site, site) floats the estimate pass holds at once: bounds its memory whatever
#: the DAG's width and the number of sites
_ESTIMATE_BLOCK = 2_000_000


class Network:
    """The sites the facts mention (sorted: a site's index is its position) and the seconds per byte
    from each site to each other: the measured link, else the options' local or wide-area default."""

    __slots__ = ("inverse", "index", "rows", "sites")

    def __init__(self, facts: Facts, options: PlanOptions) -> None:
        sites = {r.site for r in facts.runners.values()}
        sites |= {d.site for d in facts.datasets.values()}
        sites |= {p.site for ps in facts.products.values() for p in ps}
        sites |= {s for pair in facts.bandwidth for s in pair}
        if options.deliver_to_site is not None:
            sites.add(options.deliver_to_site)
        self.sites: list[URIRef] = sorted(sites)
        self.index: dict[URIRef, int] = {s: i for i, s in enumerate(self.sites)}
        n = len(self.sites)
        inverse = np.full((n, n), 1.0 / options.default_wan_bandwidth)
        for i in range(n):
            inverse[i, i] = 1.0 / options.default_local_bandwidth
        for (a, b), bandwidth in facts.bandwidth.items():
            inverse[self.index[a], self.index[b]] = 1.0 / bandwidth
        self.inverse: np.ndarray = inverse  # seconds per byte from row site to column site
        self.rows: list[list[float]] = inverse.tolist()  # the same, for fast scalar access

    def seconds(self, size: float, source: URIRef, target: URIRef) -> float:
        return size * self.rows[self.index[source]][self.index[target]]


@dataclass(slots=True)
class RunnerCost:
    """What one runner of a pool would take before this plan adds to its queue."""

    static_seconds: float  # queue wait before this plan + staging + duration
    staging_seconds: float  # bringing the datasets it lacks
    staged_bytes: int
    duration_seconds: float
    duration_source: str  # words: where the duration comes from
    slots: int  # how many such jobs it runs at once


#: A runner in its site's heap: (current cost, bytes it stores, name, runner id) — the heap order,
#: cost first, then storing less, then the name. A plain tuple, unpacked by name where it is read:
#: a plan makes about five per node, and a named tuple costs ten times as much to build.
HeapEntry = tuple[float, int, str, int]


@dataclass(slots=True)
class Pool:
    """The runners able and allowed to compute expressions of one workflow over one set of datasets.

    ``base`` is, per site, the lowest static cost of a runner there; ``site_heaps`` keep, per site,
    the runners ordered by current cost, where the load this plan adds only ever raises a cost — so
    stale entries are fixed lazily when they reach the top, and picking the best runner of a site
    stays O(log n)."""

    runners: list[URIRef]
    reason: str  # why there is none ("" when there are runners)
    base: np.ndarray
    site_heaps: list[tuple[int, list[HeapEntry]]]  # (site index, heap) for every site with a runner
    costs: dict[int, RunnerCost]  # by runner id


@dataclass(slots=True)
class NodeState:
    """What the estimate learned about one node of the DAG."""

    expression: Expression
    index: int  # position in the topological order: the row of the estimate arrays
    products: list[ProductInfo]  # usable cached copies, smallest first
    refused_products: list[str]  # words: why the others are not usable
    pool: Pool
    output_bytes: float
    input_bytes: int = 0  # bytes of the input values
    ready: list[float] = field(default_factory=list)  # seconds until all inputs could be at each site
    cheapest: float = INF  # seconds until the value could be anywhere (INF: it cannot be had)


class CostModel:
    """The facts as costs. Mutable in one way only: :attr:`added_load`, the slot-seconds the plan being
    made has given each runner, which the decision pass raises as it chooses."""

    def __init__(self, facts: Facts, options: PlanOptions) -> None:
        self.facts = facts
        self.options = options
        self.network = Network(facts, options)
        self.runners: list[URIRef] = sorted(facts.runners)  # runner id → IRI
        self.runner_ids: dict[URIRef, int] = {runner: n for n, runner in enumerate(self.runners)}
        self.runner_site: list[int] = [self.network.index[facts.runners[r].site] for r in self.runners]
        self.added_load: list[float] = [0.0] * len(self.runners)
        self._able = {workflow: [row.runner for row in rows if row.able]
                      for workflow, rows in facts.eligibility.items()}
        self._history = _history_by_workflow(facts)
        #: expressions of one workflow over the same datasets share a pool (a DAG has few of them)
        self._pools: dict[tuple[URIRef, tuple[URIRef, ...]], Pool] = {}
        #: (workflow, runner) → duration and its words: pools of one workflow share runners
        self._durations: dict[tuple[URIRef, URIRef], tuple[float, str]] = {}

    # -- per-node facts ----------------------------------------------------------------------------
    def usable_products(self, expression: Expression) -> tuple[list[ProductInfo], list[str]]:
        """The cached copies the request may reuse (smallest first), and why each other is refused."""
        usable, refused = [], []
        now, options = self.facts.now, self.options
        for product in self.facts.products.get(expression.iri, []):
            if product.expires is not None and product.expires <= now:
                refused.append(words.expired(product))
            elif options.max_age_seconds is not None and (
                    product.generated_at is None
                    or (now - product.generated_at).total_seconds() > options.max_age_seconds):
                refused.append(words.too_old(product, options.max_age_seconds))
            elif product.owner is None:
                refused.append(words.unregistered_maker(product))
            elif options.trusted_owners is not None and product.owner not in options.trusted_owners:
                refused.append(words.untrusted_owner(product))
            elif product.site not in self.network.index:
                refused.append(words.unknown_site(product))
            else:
                usable.append(product)
        usable.sort(key=lambda p: (p.size_bytes, str(p.iri)))
        return usable, refused

    def pool(self, expression: Expression) -> Pool:
        """Runners able and allowed to compute the expression, or the reason there are none."""
        key = (expression.workflow.iri, expression.datasets)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = self._make_pool(expression)
        return pool

    def _make_pool(self, expression: Expression) -> Pool:
        runners, reason = self._able_runners(expression)
        base = np.full(len(self.network.sites), INF)
        heaps: dict[int, list[HeapEntry]] = defaultdict(list)
        costs: dict[int, RunnerCost] = {}
        for runner in runners:
            info = self.facts.runners[runner]
            rid = self.runner_ids[runner]
            i = self.runner_site[rid]
            staging, staged = self.staging(expression, runner, info.site)
            duration, source = self.duration(expression, runner)
            slots = max(1, info.cores // max(1, expression.workflow.requires_cores))
            waiting = self.facts.load.get(runner, 0) * self.options.default_duration_seconds / slots
            cost = waiting + staging + duration
            costs[rid] = RunnerCost(cost, staging, staged, duration, source, slots)
            base[i] = min(base[i], cost)
            heaps[i].append((cost, info.storage_bytes, str(runner), rid))
        for heap in heaps.values():
            heapq.heapify(heap)
        return Pool(runners, reason, base, sorted(heaps.items()), costs)

    def _able_runners(self, expression: Expression) -> tuple[list[URIRef], str]:
        workflow = expression.workflow.iri
        able = self._able.get(workflow, [])
        if not able:
            return [], words.no_able_runner(workflow, self.facts.eligibility.get(workflow, []))
        able_set = set(able)
        for dataset_iri in expression.datasets:
            dataset = self.facts.datasets.get(dataset_iri)
            if dataset is None:
                return [], words.dataset_not_registered(dataset_iri)
            readers = [r for r in dataset.readers if r in able_set]
            if not readers:
                return [], words.no_reader(workflow, len(able), dataset)
            able, able_set = readers, set(readers)
        return sorted(able), ""

    def current_cost(self, pool: Pool, runner: int) -> float:
        """The runner's cost with the queue as this plan has left it."""
        cost = pool.costs[runner]
        return cost.static_seconds + self.added_load[runner] / cost.slots

    def best_at_site(self, pool: Pool, heap: list[HeapEntry]) -> HeapEntry:
        """The runner of the pool at a site (its heap) with the lowest current cost, as its heap entry."""
        added_load, costs = self.added_load, pool.costs
        while True:
            entry = heap[0]
            listed, storage_bytes, name, runner = entry
            cost = costs[runner]
            current = cost.static_seconds + added_load[runner] / cost.slots
            if current <= listed + 1e-9:
                return entry
            heapq.heapreplace(heap, (current, storage_bytes, name, runner))

    def duration(self, expression: Expression, runner: URIRef) -> tuple[float, str]:
        """Expected seconds of the expression on the runner, and where the figure comes from: its own
        history, else other runners', else the author's estimate, else the default."""
        workflow = expression.workflow
        key = (workflow.iri, runner)
        result = self._durations.get(key)
        if result is not None:
            return result
        history = self.facts.history.get(key)
        if history is not None:
            result = (history.mean_duration, f"mean of {history.runs} run(s) on this runner")
        else:
            overall = self._history.get(workflow.iri)
            if overall is not None:
                result = (overall.mean_duration, f"mean of {overall.runs} run(s) on other runners")
            elif workflow.estimated_duration is not None:
                result = (workflow.estimated_duration, "the author's estimate")
            else:
                result = (self.options.default_duration_seconds, "the default estimate")
        self._durations[key] = result
        return result

    def output_bytes(self, expression: Expression, products: list[ProductInfo]) -> float:
        if products:
            return float(products[0].size_bytes)
        overall = self._history.get(expression.workflow.iri)
        if overall is not None and overall.mean_output_bytes is not None:
            return overall.mean_output_bytes
        if expression.workflow.estimated_output_bytes is not None:
            return float(expression.workflow.estimated_output_bytes)
        return float(self.options.default_output_bytes)

    def staging(self, expression: Expression, runner: URIRef, site: URIRef) -> tuple[float, int]:
        """Seconds and bytes to bring the expression's datasets to the runner (0 for what it holds)."""
        seconds, moved = 0.0, 0
        for dataset_iri in expression.datasets:
            dataset = self.facts.datasets[dataset_iri]
            if dataset.readers.get(runner):
                continue
            seconds += self.network.seconds(dataset.size_bytes, dataset.site, site)
            moved += dataset.size_bytes
        return seconds, moved

    # -- the estimate: cost of availability, inputs first --------------------------------------------
    def estimate(self, order: list[Expression]) -> dict[str, NodeState]:
        """Per node (in topological ``order``) and site, the seconds until the node's value could be
        there, and until its inputs could be. Nodes of one generation (the same distance from the
        leaves) are independent, so each generation is one numpy computation over all its nodes
        rather than about ten small ones per node: for 10,000 nodes the numpy work is a few tens of
        milliseconds, and what remains of the pass (~0.2 s, measured) is per-node bookkeeping —
        pools, cached products."""
        n, n_sites = len(order), len(self.network.sites)
        position = {e.address: k for k, e in enumerate(order)}
        inverse = self.network.inverse
        site_index = self.network.index
        force = self.options.force_recompute
        states: dict[str, NodeState] = {}
        pools: list[Pool] = []
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
            state = NodeState(expression, k, products, refused, pool, size)
            state.input_bytes = sum(int(sizes[c]) for c in children)
            if products and not force:
                rows = [site_index[p.site] for p in products]
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


class WorkflowHistory(NamedTuple):
    """A workflow's running means over every runner (weighted by runs)."""

    mean_duration: float
    runs: int
    mean_output_bytes: float | None


def _history_by_workflow(facts: Facts) -> dict[URIRef, WorkflowHistory]:
    sums: dict[URIRef, list[float]] = defaultdict(lambda: [0.0, 0, 0.0, 0])
    for (workflow, _), history in facts.history.items():
        entry = sums[workflow]
        entry[0] += history.mean_duration * history.runs
        entry[1] += history.runs
        if history.mean_output_bytes is not None:
            entry[2] += history.mean_output_bytes * history.runs
            entry[3] += history.runs
    result = {}
    for workflow, (total, runs, size_total, sized_runs) in sums.items():
        mean_size = size_total / sized_runs if sized_runs else None
        result[workflow] = WorkflowHistory(total / runs, int(runs), mean_size)
    return result
