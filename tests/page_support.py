"""A store with the example federation and a small recorded history, for the query page's tests:
an upstream product, a downstream product that used it (a two-level lineage), and one job still queued."""

from __future__ import annotations

from dataclasses import dataclass

from rdflib import Literal, URIRef
from rdflib.namespace import RDF

from kgsched.dev.workloads import fake_result, light_curve_expressions
from kgsched.graph.store import Store
from kgsched.jobs.queue import JobQueue, NewJob, QueueSettings
from kgsched.namespaces import KS, PLANS_GRAPH
from kgsched.provenance.recording import ResultReport
from service_support import GENEVA, PARIS, load_federation


@dataclass
class History:
    store: Store
    upstream: URIRef  # product
    downstream: URIRef  # product that used the upstream one
    waiting_job: URIRef


def record_history(store: Store) -> History:
    load_federation(store)
    queue = JobQueue(store, QueueSettings(lease_seconds=600, clock_skew_seconds=2, max_attempts=3, backoff_seconds=0))
    graph, [up, down, later] = light_curve_expressions(3, tag="page")
    argument = URIRef(f"{down}/arg/reference")
    graph.add((down, KS.argument, argument))
    graph.add((argument, RDF.type, KS.Argument))
    graph.add((argument, KS.name, Literal("reference")))
    graph.add((argument, KS.expression, up))
    store.add_to_graph(PLANS_GRAPH, graph)
    [up_job] = queue.enqueue([NewJob(up, (PARIS,))])
    grant = queue.claim(PARIS)
    assert grant is not None and grant.claim.job == up_job
    upstream = queue.report(up_job, PARIS, grant.claim.secret, ResultReport.from_json(fake_result("up"))).product
    [down_job] = queue.enqueue([NewJob(down, (GENEVA,), depends_on=(up,))])
    grant = queue.claim(GENEVA)
    assert grant is not None and grant.claim.job == down_job
    downstream = queue.report(down_job, GENEVA, grant.claim.secret, ResultReport.from_json(fake_result("down"))).product
    [waiting] = queue.enqueue([NewJob(later, (GENEVA, PARIS))])
    assert upstream is not None and downstream is not None
    return History(store, upstream, downstream, waiting)
