"""The plan as data: its options, steps and offers, as JSON and as RDF (what the planner decides, not how).

Pure: nothing here reads or writes the store (kgsched.planning.planner writes a plan with ``store_plan``).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from rdflib import Graph, URIRef
from rdflib import Literal as RDFLiteral
from rdflib.namespace import PROV, RDF, RDFS, XSD

from kgsched.clock import dt_literal
from kgsched.literals import decimal_literal, optional_str
from kgsched.namespaces import KS, bind_prefixes

if TYPE_CHECKING:  # types only: the rules never import the modules that query the store
    from kgsched.planning.expressions import Expression

Decision = Literal["reuse", "recompute", "cannot"]


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
    max_offers_recorded: int = 3  # the chosen runner's offer is always recorded, first

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
    so the slowest counts). ``finish_seconds`` is when the runner would have the value;
    ``delivered_seconds`` adds moving it to every site that needs it, which is what the decision's
    objective (kgsched.planning.decision.objective) ranks offers by. A named tuple, not a frozen
    dataclass: a plan makes three per recomputed node, and a frozen dataclass costs several times as
    much to build."""

    runner: URIRef
    site: URIRef
    queue_seconds: float
    transfer_seconds: float
    bytes_to_move: int
    duration_seconds: float
    duration_source: str
    finish_seconds: float
    delivered_seconds: float

    def to_json(self) -> dict[str, Any]:
        return {"runner": str(self.runner), "site": str(self.site), "queue_seconds": _round(self.queue_seconds),
                "transfer_seconds": _round(self.transfer_seconds), "bytes_to_move": self.bytes_to_move,
                "duration_seconds": _round(self.duration_seconds), "duration_source": self.duration_source,
                "finish_seconds": _round(self.finish_seconds), "delivered_seconds": _round(self.delivered_seconds)}


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
    offers: list[Offer] = field(default_factory=list)  # best first by the decision's objective; [0] was chosen
    depends_on: list[URIRef] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "step": str(self.iri), "expression": str(self.expression), "address": self.address,
            "workflow": str(self.workflow), "decision": self.decision, "reason": self.reason,
            "estimated_cost_seconds": _round(self.estimated_cost_seconds),
            "runner": optional_str(self.runner), "product": optional_str(self.product),
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
        graph.add((self.request, PROV.generatedAtTime, dt_literal(self.created)))
        graph.add((self.iri, RDF.type, KS.Plan))
        graph.add((self.iri, KS.forRequest, self.request))
        graph.add((self.iri, PROV.generatedAtTime, dt_literal(self.created)))
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
                graph.add((step.iri, KS.estimatedCostSeconds, decimal_literal(step.estimated_cost_seconds, 3)))
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
                graph.add((node, KS.estimatedFinishSeconds, decimal_literal(offer.finish_seconds, 3)))
        return graph


def _round(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(value, 3)

