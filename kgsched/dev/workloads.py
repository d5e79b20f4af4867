"""Synthetic job workloads over the example federation, for the queue's tests and the claim benchmark.

Planning a thousand requests would measure the planner; these write a thousand expressions of the
example light-curve workflow (each with its own energy band) straight into the plans graph, in the
form kgsched.planning.expressions writes, and queue one job for each.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import RDF, XSD

from kgsched.graph.store import Store
from kgsched.jobs.queue import JobQueue, NewJob
from kgsched.namespaces import KS, KSID, PLANS_GRAPH

FED = "https://example.org/fed/"
LIGHT_CURVE = URIRef(FED + "workflow/light-curve")
ISGRI_EVENTS = URIRef(FED + "data/isgri-events-rev2670")
#: Runners of the example federation able to run the light curve on the ISGRI events.
LIGHT_CURVE_RUNNERS: tuple[URIRef, ...] = (
    URIRef(FED + "runner/geneva-batch"), URIRef(FED + "runner/paris-cluster"),
    URIRef(FED + "runner/alice-laptop"),
)


def light_curve_expressions(count: int, start: int = 0, tag: str = "synthetic") -> tuple[Graph, list[URIRef]]:
    """``count`` light-curve expressions over the ISGRI events, energy band [i, i+10) keV."""
    graph = Graph()
    iris = []
    for i in range(start, start + count):
        address = hashlib.sha256(f"{tag}:{i}".encode()).hexdigest()
        expression = URIRef(KSID[f"expression/{address}"])
        iris.append(expression)
        graph.add((expression, RDF.type, KS.Expression))
        graph.add((expression, KS.workflow, LIGHT_CURVE))
        graph.add((expression, KS.contentAddress, Literal(address)))
        for name, value in (("events", ISGRI_EVENTS), ("energy_min_kev", i), ("energy_max_kev", i + 10)):
            argument = URIRef(f"{expression}/arg/{name}")
            graph.add((expression, KS.argument, argument))
            graph.add((argument, RDF.type, KS.Argument))
            graph.add((argument, KS.name, Literal(name)))
            if isinstance(value, URIRef):
                graph.add((argument, KS.dataset, value))
            else:
                graph.add((argument, KS.value, Literal(f"{value}.0", datatype=XSD.decimal)))
    return graph, iris


def queue_light_curves(store: Store, queue: JobQueue, count: int, *, start: int = 0,
                       eligible: Sequence[URIRef] = LIGHT_CURVE_RUNNERS, tag: str = "synthetic") -> list[URIRef]:
    """Write ``count`` expressions and queue a job for each; returns the job IRIs."""
    graph, expressions = light_curve_expressions(count, start, tag)
    store.add_to_graph(PLANS_GRAPH, graph)
    return queue.enqueue([NewJob(e, tuple(eligible), eligible[0]) for e in expressions])


def fake_result(job_name: str, duration: float = 1.5) -> dict[str, object]:
    """A plausible success report for a job (what a runner would send)."""
    digest = hashlib.sha256(job_name.encode()).hexdigest()
    return {"outcome": "success", "location": f"products/{digest[:16]}.fits", "size_bytes": 2048,
            "checksum": f"sha256:{digest}", "duration_seconds": duration}
