"""The decision pass: root first, each needed node is reused, recomputed on a chosen runner, or cannot be had.

A needed node takes the cheaper of moving its cheapest usable cached copy to where it is needed and
recomputing it. Recomputing, each site's best runner is a :class:`Candidate`, and one function,
:func:`objective` (like dask.distributed's ``worker_objective``, extended with duration and the
request's preference), both chooses the runner and ranks the offers the plan records — so the
chosen runner's offer is always recorded, first. A recomputed node needs its inputs at its runner's
site; a reused one needs nothing upstream. Each choice adds to the runner's queue for later nodes.

Pure: a function of the DAG and the :class:`~kgsched.planning.cost.CostModel`; no store.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from rdflib import URIRef

from kgsched.planning import words
from kgsched.planning.cost import INF, CostModel, NodeState, Pool
from kgsched.planning.model import Offer, PlanStep

if TYPE_CHECKING:  # types only: the rules never import the modules that query the store
    from kgsched.planning.expressions import Expression, RequestDag

ANYWHERE = -1  # the site index of "anywhere": the root's, unless the request names a delivery site


@dataclass(slots=True)
class Candidate:
    """One site's best runner for a node, with the queue as this plan has left it. (A dataclass with
    slots: a plan builds about three per node and reads each field several times, and slots are the
    fastest to read.)"""

    preferred: bool  # the request's preferred runner
    delivered: float  # seconds until the output could be at every site that needs it
    storage_bytes: int  # what the runner stores already (ties go to the one storing less)
    name: str  # the runner's IRI: the last tie-break (names are unique)
    runner: int  # runner id: its position in CostModel.runners
    site: int  # site index: its position in Network.sites
    cost: float  # queue + staging + duration
    ready: float  # seconds until the inputs could be at the site


def objective(candidate: Candidate) -> tuple[bool, float, int, str]:
    """What the decision minimises, for choosing the runner and for ranking the offers recorded: the
    request's preferred runner first, then the earliest the output could be where it is needed
    (queue + inputs there + duration + moving the output), then the runner storing less, then the name."""
    return (not candidate.preferred, candidate.delivered, candidate.storage_bytes, candidate.name)


class Targets(NamedTuple):
    """Where a node's value is needed, as the decision uses it."""

    factor: list[float]  # per source site, seconds per byte to the slowest-to-reach target (0 for none)
    where: str  # words: "at A and B"


class Decider:
    """Applies the rules to one DAG and its costs; the plan's steps and the nodes skipped."""

    def __init__(self, dag: RequestDag, model: CostModel) -> None:
        self.dag = dag
        self.model = model
        self.order = dag.expressions()
        self.by_address = {e.address: e for e in self.order}
        self.consumers: dict[str, list[str]] = defaultdict(list)
        for expression in self.order:
            for child in expression.inputs:
                self.consumers[child].append(expression.address)
        preferred, deliver = model.options.preferred_runner, model.options.deliver_to_site
        self.preferred = None if preferred is None else model.runner_ids.get(preferred)
        self.delivery_site = ANYWHERE if deliver is None else model.network.index[deliver]
        #: a plan's nodes are needed at a few distinct sets of sites
        self._targets: dict[frozenset[int], Targets] = {}

    def decide(self, plan_iri: URIRef) -> tuple[list[PlanStep], dict[URIRef, str]]:
        states = self.model.estimate(self.order)
        #: the sites (indices; ANYWHERE for "anywhere") where each needed node's value is wanted
        needed: dict[str, set[int]] = defaultdict(set)
        needed[self.dag.root.address].add(self.delivery_site)
        steps: dict[str, PlanStep] = {}
        skipped: dict[URIRef, str] = {}
        for expression in reversed(self.order):
            address = expression.address
            state = states[address]
            step_iri = plan_iri  # provisional: steps are numbered below, in the order they happen
            depends_on = [self.by_address[a].iri for a in expression.inputs]
            if address not in needed:
                consumers = ", ".join(words.short(self.by_address[c].iri) for c in self.consumers[address])
                if state.products:
                    product = state.products[0]
                    steps[address] = PlanStep(
                        step_iri, expression.iri, address, expression.workflow.iri, "reuse",
                        words.not_needed_but_cached(product, consumers), 0.0, product=product.iri,
                        depends_on=depends_on)
                else:
                    skipped[expression.iri] = words.not_needed(consumers)
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

    def _targets_of(self, sites: set[int]) -> Targets:
        key = frozenset(sites)
        targets = self._targets.get(key)
        if targets is None:
            network = self.model.network
            real = sorted(t for t in sites if t != ANYWHERE)
            factor = network.inverse[:, real].max(axis=1).tolist() if real else [0.0] * len(network.sites)
            targets = self._targets[key] = Targets(factor, words.where(words.short(network.sites[t]) for t in real))
        return targets

    def _decide_node(self, step_iri: URIRef, expression: Expression, state: NodeState, sites: set[int],
                     states: dict[str, NodeState]) -> tuple[PlanStep, int | None]:
        """The node's step, and the site where it is recomputed (None when it is not)."""
        model, options = self.model, self.model.options
        targets = self._targets_of(sites)
        factor = targets.factor
        # reuse: the cheapest usable copy, moved to every site that needs it
        best_product, reuse_cost = None, INF
        if not options.force_recompute:
            site_index = model.network.index
            for product in state.products:
                cost = product.size_bytes * factor[site_index[product.site]]
                if cost < reuse_cost:
                    best_product, reuse_cost = product, cost
        # recompute: the candidates ranked by the objective; the first is the choice
        ranked = sorted(self._candidates(state, factor), key=objective)
        best = ranked[0] if ranked else None
        recompute_cost = INF if best is None else best.delivered
        candidates = state.pool.runners

        if best_product is not None and reuse_cost <= recompute_cost:
            why = words.reuse(best_product, targets.where, reuse_cost, recompute_cost,
                              None if best is None else model.runners[best.runner])
            return PlanStep(step_iri, expression.iri, expression.address, expression.workflow.iri, "reuse", why,
                            reuse_cost, product=best_product.iri, candidates=candidates), None
        if best is not None:
            moved = state.input_bytes  # an upper bound: unless an input is made or kept right there
            offers = [self._offer(state.pool, c, moved) for c in ranked[: max(1, options.max_offers_recorded)]]
            chosen = offers[0]
            model.added_load[best.runner] += chosen.duration_seconds  # one slot busy that long
            why = words.recompute(chosen, forced=options.force_recompute, product=best_product, reuse_cost=reuse_cost,
                                  recompute_cost=recompute_cost, refused=state.refused_products,
                                  preferred=best.preferred, able=len(candidates), weighed=len(ranked),
                                  where=targets.where)
            return PlanStep(step_iri, expression.iri, expression.address, expression.workflow.iri, "recompute",
                            why, recompute_cost, runner=chosen.runner, candidates=candidates,
                            offers=offers), best.site
        blocked = [] if state.pool.reason else [
            self.by_address[c].iri for c in expression.inputs if not math.isfinite(states[c].cheapest)]
        why = words.cannot(forced=options.force_recompute, cached=bool(state.products),
                           refused=state.refused_products, pool_reason=state.pool.reason, blocked=blocked)
        return PlanStep(step_iri, expression.iri, expression.address, expression.workflow.iri, "cannot", why,
                        None), None

    def _candidates(self, state: NodeState, factor: list[float]) -> list[Candidate]:
        """Each visited site's best runner, and the preferred runner wherever it is. ``factor`` is, per
        site, the seconds per byte of moving the output to the targets.

        Sites are visited in order of a lower bound (their best static cost plus moving the output),
        and the visit stops once enough offers are weighed and no remaining site can do better: the
        plan's load only ever raises a runner's cost above that bound."""
        model, pool = self.model, state.pool
        ready_at = state.ready
        size = state.output_bytes
        preferred = self.preferred
        # A heap's top cost never exceeds the current cost of any runner in it, so it bounds the site.
        bounds = [(heap[0][0] + ready_at[i] + size * factor[i], i, heap) for i, heap in pool.site_heaps if heap]
        bounds.sort()  # by bound, then site index (unique: the heaps are never compared); no key function to call
        visited: list[Candidate] = []
        best = INF
        enough = model.options.max_offers_recorded
        for bound, i, heap in bounds:
            ready = ready_at[i]
            if ready == INF or bound == INF:
                continue
            if len(visited) >= enough and bound >= best:
                break
            cost, storage_bytes, name, runner = model.best_at_site(pool, heap)
            delivered = cost + ready + size * factor[i]
            visited.append(Candidate(runner == preferred, delivered, storage_bytes, name, runner, i, cost, ready))
            if delivered < best:
                best = delivered
        if preferred is not None and preferred in pool.costs and not any(c.preferred for c in visited):
            i = model.runner_site[preferred]
            ready = ready_at[i]
            if ready != INF:
                cost = model.current_cost(pool, preferred)
                runner = model.runners[preferred]
                storage_bytes = model.facts.runners[runner].storage_bytes
                visited.append(Candidate(True, cost + ready + size * factor[i], storage_bytes, str(runner), preferred,
                                         i, cost, ready))
        return visited

    def _offer(self, pool: Pool, candidate: Candidate, moved: int) -> Offer:
        runner_cost = pool.costs[candidate.runner]
        staging, duration = runner_cost.staging_seconds, runner_cost.duration_seconds
        return Offer(self.model.runners[candidate.runner], self.model.network.sites[candidate.site],
                     candidate.cost - staging - duration, candidate.ready + staging, moved + runner_cost.staged_bytes,
                     duration, runner_cost.duration_source, candidate.cost + candidate.ready, candidate.delivered)
