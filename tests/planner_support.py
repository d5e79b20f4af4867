"""Helpers for planner tests: requests of the example federation and products put into the graph
the way the job service records them (docs/interfaces.md)."""

from __future__ import annotations

import datetime as dt
import uuid

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import PROV, RDF, XSD

from kgsched.graph.store import Store
from kgsched.namespaces import KS, KSID, PROVENANCE_GRAPH
from kgsched.provenance import statistics

FED = "https://example.org/fed/"
ALICE = URIRef(FED + "person/alice")
BOB = URIRef(FED + "person/bob")
ERIN = URIRef(FED + "person/erin")
ISGRI = FED + "data/isgri-events-rev2670"
SPI = FED + "data/spi-acs-rates-2023"


def light_curve(emin: float, emax: float, dataset: str = ISGRI, **extra) -> dict:
    return {"workflow": FED + "workflow/light-curve",
            "args": {"events": {"dataset": dataset}, "energy_min_kev": emin, "energy_max_kev": emax, **extra}}


def combined(soft: dict | None = None, hard: dict | None = None) -> dict:
    return {"workflow": FED + "workflow/combine-light-curves",
            "args": {"soft": soft or light_curve(20, 40), "hard": hard or light_curve(40, 100)}}


def runner(name: str) -> URIRef:
    return URIRef(FED + "runner/" + name)


def stamp(moment: dt.datetime) -> Literal:
    return Literal(moment.strftime("%Y-%m-%dT%H:%M:%SZ"), datatype=XSD.dateTime)


def add_product(store: Store, expression: URIRef, by: URIRef, *, storage: str = "geneva-disk",
                outcome: URIRef = KS.Success, size: int = 200_000, expires: dt.datetime | None = None,
                generated: dt.datetime | None = None, duration: float = 12.0) -> URIRef:
    """Record an execution of ``expression`` on runner ``by`` and the product it generated."""
    token = uuid.uuid4().hex
    product, execution = URIRef(KSID[f"product/{token}"]), URIRef(KSID[f"execution/{token}"])
    generated = generated or dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    g = Graph()
    g.add((product, RDF.type, KS.DataProduct))
    g.add((product, KS.valueOf, expression))
    g.add((product, KS.sizeBytes, Literal(size)))
    g.add((product, KS.checksum, Literal("sha256:" + "0" * 64)))
    g.add((product, KS.storedAt, URIRef(FED + "storage/" + storage)))
    g.add((product, KS.outcome, outcome))
    g.add((product, PROV.wasGeneratedBy, execution))
    g.add((product, PROV.generatedAtTime, stamp(generated)))
    if expires is not None:
        g.add((product, KS.expires, stamp(expires)))
    g.add((execution, RDF.type, KS.Execution))
    g.add((execution, PROV.wasAssociatedWith, by))
    g.add((execution, KS.computes, expression))
    g.add((execution, PROV.generated, product))
    g.add((execution, KS.outcome, outcome))
    g.add((execution, KS.durationSeconds, Literal(duration)))
    g.add((execution, PROV.startedAtTime, stamp(generated - dt.timedelta(seconds=duration))))
    store.add_to_graph(PROVENANCE_GRAPH, g)
    workflow = store.select("SELECT ?w WHERE { ?e <https://w3id.org/kgsched#workflow> ?w }", [{"e": expression}])
    if workflow:
        statistics.record_execution(store, workflow[0]["w"], by, duration, size)
    return product


def add_failed_execution(store: Store, expression: URIRef, by: URIRef) -> URIRef:
    execution = URIRef(KSID[f"execution/{uuid.uuid4().hex}"])
    g = Graph()
    g.add((execution, RDF.type, KS.Execution))
    g.add((execution, PROV.wasAssociatedWith, by))
    g.add((execution, KS.computes, expression))
    g.add((execution, KS.outcome, KS.UnhandledException))
    g.add((execution, KS.durationSeconds, Literal(1.0)))
    g.add((execution, KS.errorMessage, Literal("ZeroDivisionError: division by zero")))
    g.add((execution, PROV.startedAtTime, stamp(dt.datetime.now(dt.UTC))))
    store.add_to_graph(PROVENANCE_GRAPH, g)
    return execution
