"""A product's whole provenance, read out of the graph for export (Turtle, PROV-JSON, RO-Crate).

Two batched queries: the chain (the product, what its execution used, what their executions used, …;
queries/provenance-chain.rq) and then everything the export says about it (queries/provenance-export.rq,
the chain bound as one VALUES block). One query with the property path inside it is clearer but
took minutes on a 1,738-task Montage trace; split, it takes about a second.

:class:`Lineage` is the graph read into plain records, in the order the exporters need (inputs before
what used them), so the PROV-JSON and RO-Crate writers are small mappings without SPARQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

import networkx as nx
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import FOAF, PROV, RDF, RDFS
from rdflib.term import Node

from kgsched.errors import NotFound
from kgsched.graph import queries
from kgsched.graph.binding import check_iri
from kgsched.graph.store import Store
from kgsched.namespaces import KS, bind_prefixes


def provenance_graph(store: Store, product: URIRef) -> Graph:
    """The product's whole provenance as RDF (PROV-O with kgsched's terms); NotFound if no such product."""
    product = check_iri(product)
    if not queries.ask(store, "product-exists", [{"product": product}]):
        raise NotFound(f"no data product {product} in the graph")
    chain = [row["entity"] for row in queries.select(store, "provenance-chain", [{"product": product}])]
    graph = queries.construct(store, "provenance-export", {"entity": chain})
    bind_prefixes(graph)
    return graph


def to_turtle(graph: Graph) -> str:
    return graph.serialize(format="turtle")


# --------------------------------------------------------------------------------------------------
# The graph as records
# --------------------------------------------------------------------------------------------------

@dataclass
class Agent:
    iri: URIRef
    name: str
    kinds: set[URIRef] = field(default_factory=set)


@dataclass
class Workflow:
    iri: URIRef
    label: str
    version: str | None
    kind: URIRef | None
    implementation: str | None
    authors: list[URIRef] = field(default_factory=list)
    verifiers: list[URIRef] = field(default_factory=list)


@dataclass
class Runner:
    iri: URIRef
    label: str
    owner: URIRef | None
    site: URIRef | None


@dataclass
class Entity:
    """A data product or a dataset."""

    iri: URIRef
    kind: str  # "product" | "dataset"
    label: str
    size_bytes: int | None
    checksum: str | None
    location: str | None
    generated_by: URIRef | None = None
    generated_at: dt.datetime | None = None
    expression: URIRef | None = None
    providers: list[URIRef] = field(default_factory=list)
    outcome: URIRef | None = None


@dataclass
class Argument:
    name: str
    kind: str  # "literal" | "dataset" | "expression"
    value: Node


@dataclass
class Execution:
    iri: URIRef
    label: str
    workflow: URIRef | None
    expression: URIRef | None
    runner: URIRef | None
    started: dt.datetime | None
    ended: dt.datetime | None
    duration_seconds: float | None
    outcome: URIRef | None
    used: list[URIRef] = field(default_factory=list)
    generated: list[URIRef] = field(default_factory=list)
    arguments: list[Argument] = field(default_factory=list)


@dataclass
class Lineage:
    product: URIRef
    graph: Graph
    entities: dict[URIRef, Entity]
    executions: list[Execution]  # inputs' executions before those that used them
    workflows: dict[URIRef, Workflow]
    runners: dict[URIRef, Runner]
    agents: dict[URIRef, Agent]

    @property
    def main_execution(self) -> Execution | None:
        made_by = self.entities[self.product].generated_by
        return next((e for e in self.executions if e.iri == made_by), None)


def _text(graph: Graph, node: Node, *predicates: URIRef) -> str | None:
    for predicate in predicates:
        value = graph.value(node, predicate)
        if value is not None:
            return str(value)
    return None


def _time(value: Node | None) -> dt.datetime | None:
    if not isinstance(value, Literal):
        return None
    python = value.toPython()
    if isinstance(python, dt.datetime):
        return python if python.tzinfo else python.replace(tzinfo=dt.UTC)
    return None


def _number(value: Node | None) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _sorted(nodes: Iterable[Node]) -> list[URIRef]:
    return sorted(n for n in nodes if isinstance(n, URIRef))


def read_lineage(graph: Graph, product: URIRef) -> Lineage:
    """The export graph as records; the product must be in it."""
    g = graph
    entities: dict[URIRef, Entity] = {}
    for kind, cls in (("product", KS.DataProduct), ("dataset", KS.Dataset)):
        for iri in _sorted(g.subjects(RDF.type, cls)):
            size = g.value(iri, KS.sizeBytes)
            entities[iri] = Entity(
                iri, kind, _text(g, iri, RDFS.label) or str(iri).rstrip("/").rsplit("/", 1)[-1],
                int(size) if size is not None else None, _text(g, iri, KS.checksum), _text(g, iri, KS.location),
                g.value(iri, PROV.wasGeneratedBy), _time(g.value(iri, PROV.generatedAtTime)), g.value(iri, KS.valueOf),
                _sorted(g.objects(iri, KS.providedBy)), g.value(iri, KS.outcome))
    if product not in entities:
        raise NotFound(f"no data product {product} in the provenance graph")
    executions: dict[URIRef, Execution] = {}
    for iri in _sorted(g.subjects(RDF.type, KS.Execution)):
        expression = g.value(iri, KS.computes)
        arguments = []
        for node in g.objects(expression, KS.argument) if expression is not None else ():
            name = _text(g, node, KS.name) or "?"
            for predicate, kind in ((KS.value, "literal"), (KS.dataset, "dataset"), (KS.expression, "expression")):
                value = g.value(node, predicate)
                if value is not None:
                    arguments.append(Argument(name, kind, value))
        executions[iri] = Execution(
            iri, _text(g, iri, RDFS.label) or str(iri).rsplit("/", 1)[-1],
            g.value(expression, KS.workflow) if expression is not None else None, expression,
            g.value(iri, PROV.wasAssociatedWith), _time(g.value(iri, PROV.startedAtTime)),
            _time(g.value(iri, PROV.endedAtTime)), _number(g.value(iri, KS.durationSeconds)), g.value(iri, KS.outcome),
            _sorted(g.objects(iri, PROV.used)), _sorted(g.objects(iri, PROV.generated)),
            sorted(arguments, key=lambda a: a.name))
    order = nx.DiGraph()
    order.add_nodes_from(executions)
    for execution in executions.values():
        for used in execution.used:
            maker = entities[used].generated_by if used in entities else None
            if maker in executions:
                order.add_edge(maker, execution.iri)
    workflows = {}
    for iri in _sorted(g.subjects(RDF.type, KS.Workflow)):
        workflows[iri] = Workflow(iri, _text(g, iri, RDFS.label) or str(iri), _text(g, iri, KS.version),
                                  g.value(iri, KS.implementationKind), _text(g, iri, KS.implementation),
                                  _sorted(g.objects(iri, KS.author)), _sorted(g.objects(iri, KS.verifiedBy)))
    runners = {}
    for execution in executions.values():
        iri = execution.runner
        if iri is not None and iri not in runners:
            runners[iri] = Runner(iri, _text(g, iri, RDFS.label) or str(iri), g.value(iri, KS.ownedBy),
                                  g.value(iri, KS.atSite))
    agents = {}
    mentioned = {r.owner for r in runners.values()} | {a for w in workflows.values() for a in w.authors + w.verifiers}
    mentioned |= {p for e in entities.values() for p in e.providers}
    mentioned |= set(g.objects(None, KS.creditedTo))
    for iri in _sorted(mentioned):
        agents[iri] = Agent(iri, _text(g, iri, FOAF.name, RDFS.label) or str(iri), set(g.objects(iri, RDF.type)))
    ordered = [executions[e] for e in nx.lexicographical_topological_sort(order)]
    return Lineage(product, graph, entities, ordered, workflows, runners, agents)


def lineage(store: Store, product: URIRef) -> Lineage:
    return read_lineage(provenance_graph(store, product), URIRef(product))
