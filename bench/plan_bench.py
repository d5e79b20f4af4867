"""Planner benchmark: plan a 10,000-node request over a knowledge graph of about a million triples.

The federation: 20 sites, 1,000 runners, 200 datasets, 10 workflows, 100,000 cached products (with
the executions that made them, which feed the cost model), and links between every pair of sites.
The request is a binary reduction tree: 5,000 leaves over the datasets, combined pairwise up to one
root (9,999 expressions); 30 % of the leaves are already cached.

It prints nodes planned per second for
  * Oxigraph (the embedded store: the same queries/*.rq, one batched VALUES query per question),
  * the same queries on rdflib's in-memory store (run on a smaller subtree: it is far slower),
  * a plain-dict reference: the same rules fed from dictionaries, no store at all,
as ratios within one run. Usage: python bench/plan_bench.py [--scale 1.0] [--rdflib-nodes 255]
"""

from __future__ import annotations

import argparse
import gc
import platform
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rdflib import URIRef  # noqa: E402

from kgsched.graph.store import EmbeddedStore, Store  # noqa: E402
from kgsched.namespaces import KS, KSID, ONTOLOGY_GRAPH, PROVENANCE_GRAPH  # noqa: E402
from kgsched.planning.expressions import build_dag  # noqa: E402
from kgsched.planning.facts import (  # noqa: E402
    DatasetInfo,
    Eligibility,
    Facts,
    History,
    ProductInfo,
    RunnerInfo,
    gather_facts,
)
from kgsched.planning.planner import decide, gc_paused  # noqa: E402
from kgsched.provenance.statistics import statistics_iri  # noqa: E402
from kgsched.registry.registration import registrant_graph  # noqa: E402
from kgsched.resources import ontology_graph  # noqa: E402

B = "https://bench.example/"
OWNER = B + "person/owner"
RDF_TYPE = "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>"
XSD = "http://www.w3.org/2001/XMLSchema#"
PROV = "http://www.w3.org/ns/prov#"


def iri(text: str) -> str:
    return f"<{text}>"


def ks(term: str) -> str:
    return f"<{KS[term]}>"


def integer(n: int) -> str:
    return f'"{n}"^^<{XSD}integer>'


def decimal(x: float) -> str:
    return f'"{x:.3f}"^^<{XSD}decimal>'


class Federation:
    """Generates the benchmark graph as N-Triples, and remembers it as plain dictionaries."""

    def __init__(self, scale: float, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.n_sites = 20
        self.n_runners = max(20, int(1000 * scale))
        self.n_datasets = max(10, int(200 * scale))
        self.n_workflows = 10
        self.n_products = int(100_000 * scale)
        self.n_leaves = max(4, int(5000 * scale))
        self.sites = [f"{B}site/{i}" for i in range(self.n_sites)]
        self.runner_site = {f"{B}runner/{i}": self.sites[i % self.n_sites] for i in range(self.n_runners)}
        self.dataset_site = {f"{B}data/{i}": self.sites[i % self.n_sites] for i in range(self.n_datasets)}
        self.restricted = {d for i, d in enumerate(self.dataset_site) if i % 10 == 0}
        self.readers: dict[str, dict[str, bool]] = {}
        runners_at: dict[str, list[str]] = {}
        for runner, site in self.runner_site.items():
            runners_at.setdefault(site, []).append(runner)
        all_runners = list(self.runner_site)
        for dataset, site in self.dataset_site.items():
            local = runners_at[site]
            readers = {r: True for r in local[:3]}
            pool = local[3:] if dataset in self.restricted else all_runners
            for r in self.rng.sample(pool, min(10, len(pool))):
                readers.setdefault(r, False)
            self.readers[dataset] = readers
        self.bandwidth = {(a, b): (1e9 if a == b else self.rng.choice([1e7, 5e7, 1e8])) for a in self.sites
                          for b in self.sites}

    def workflow(self, i: int) -> str:
        return f"{B}workflow/{i}"

    def verifier_ntriples(self) -> str:
        """The verifier's own graph: one verification per workflow, pinned to it (docs/authority.md)."""
        verifier = B + "person/verifier"
        lines = [f"{iri(str(registrant_graph(URIRef(verifier))))} {ks('registeredBy')} {iri(verifier)} ."]
        for i in range(self.n_workflows):
            wf, verification = self.workflow(i), f"{self.workflow(i)}/verification"
            lines += [f"{iri(verification)} {RDF_TYPE} {ks('WorkflowVerification')} .",
                      f"{iri(verification)} {ks('verifiedWorkflow')} {iri(wf)} .",
                      f'{iri(verification)} {ks("verifiedVersion")} "1.0" .',
                      f"{iri(verification)} {ks('verifiedImplementationKind')} {ks('PythonCallable')} .",
                      f'{iri(verification)} {ks("verifiedImplementation")} "bench:workflow_{i}" .']
        return "\n".join(lines) + "\n"

    def registry_ntriples(self) -> str:
        """The runners' owner's graph: it registered the sites, runners, datasets and workflows."""
        lines = []
        add = lines.append
        add(f"{iri(str(registrant_graph(URIRef(OWNER))))} {ks('registeredBy')} {iri(OWNER)} .")
        add(f"{iri(B + 'person/verifier')} {RDF_TYPE} <http://xmlns.com/foaf/0.1/Person> .")
        add(f"{iri(B + 'person/owner')} {RDF_TYPE} <http://xmlns.com/foaf/0.1/Person> .")
        for site in self.sites:
            add(f"{iri(site)} {RDF_TYPE} {ks('Site')} .")
            add(f"{iri(site + '/disk')} {RDF_TYPE} {ks('Storage')} .")
            add(f"{iri(site + '/disk')} {ks('atSite')} {iri(site)} .")
        for (a, b_), bw in self.bandwidth.items():
            if a == b_:
                add(f"{iri(a)} {ks('bandwidthBytesPerSecond')} {decimal(bw)} .")
            else:
                link = f"{B}link/{a.rsplit('/', 1)[1]}-{b_.rsplit('/', 1)[1]}"
                add(f"{iri(link)} {RDF_TYPE} {ks('NetworkLink')} .")
                add(f"{iri(link)} {ks('fromSite')} {iri(a)} .")
                add(f"{iri(link)} {ks('toSite')} {iri(b_)} .")
                add(f"{iri(link)} {ks('bandwidthBytesPerSecond')} {decimal(bw)} .")
        for runner, site in self.runner_site.items():
            add(f"{iri(runner)} {RDF_TYPE} {ks('JobRunner')} .")
            add(f"{iri(runner)} {ks('atSite')} {iri(site)} .")
            add(f"{iri(runner)} {ks('ownedBy')} {iri(B + 'person/owner')} .")
            add(f"{iri(runner)} {ks('cores')} {integer(8)} .")
            add(f"{iri(runner)} {ks('memoryBytes')} {integer(32_000_000_000)} .")
            add(f"{iri(runner)} {ks('supports')} {ks('PythonCallable')} .")
            add(f"{iri(runner)} {ks('trusts')} {iri(B + 'person/verifier')} .")
            add(f"{iri(runner)} {ks('serves')} {ks('Anyone')} .")
            add(f"{iri(runner)} {ks('usesStorage')} {iri(site + '/disk')} .")
        for dataset, site in self.dataset_site.items():
            add(f"{iri(dataset)} {RDF_TYPE} {ks('Dataset')} .")
            add(f"{iri(dataset)} {ks('heldAt')} {iri(site)} .")
            add(f"{iri(dataset)} {ks('sizeBytes')} {integer(self.rng.randrange(10**6, 10**9))} .")
            if dataset in self.restricted:
                add(f'{iri(dataset)} {ks("neverLeavesSite")} "true"^^<{XSD}boolean> .')
            for runner, holds in self.readers[dataset].items():
                add(f"{iri(runner)} {ks('holds' if holds else 'canRead')} {iri(dataset)} .")
        for i in range(self.n_workflows):
            wf = self.workflow(i)
            add(f"{iri(wf)} {RDF_TYPE} {ks('Workflow')} .")
            add(f'{iri(wf)} {ks("version")} "1.0" .')
            add(f"{iri(wf)} {ks('implementationKind')} {ks('PythonCallable')} .")
            add(f'{iri(wf)} {ks("implementation")} "bench:workflow_{i}" .')
            add(f"{iri(wf)} {ks('estimatedDurationSeconds')} {decimal(10 + i)} .")
            params = [("a", "DatasetValue"), ("p", "integer")] if i < 5 else [("a", "DatasetValue"),
                                                                                ("b", "DatasetValue")]
            for name, kind in params:
                param = f"{wf}/param/{name}"
                add(f"{iri(wf)} {ks('parameter')} {iri(param)} .")
                add(f'{iri(param)} {ks("name")} "{name}" .')
                datatype = ks("DatasetValue") if kind == "DatasetValue" else f"<{XSD}integer>"
                add(f"{iri(param)} {ks('parameterType')} {datatype} .")
        return "\n".join(lines) + "\n"

    def request(self) -> dict:
        """A binary reduction tree over ``n_leaves`` leaf expressions."""
        datasets = list(self.dataset_site)
        level = [{"workflow": self.workflow(i % 5), "args": {"a": {"dataset": datasets[i % len(datasets)]}, "p": i}}
                 for i in range(self.n_leaves)]
        n = 0
        while len(level) > 1:
            nxt = []
            for j in range(0, len(level) - 1, 2):
                nxt.append({"workflow": self.workflow(5 + n % 5), "args": {"a": level[j], "b": level[j + 1]}})
                n += 1
            if len(level) % 2:
                nxt.append(level[-1])
            level = nxt
        return level[0]

    def provenance_ntriples(self, cached_addresses: list[str]) -> tuple[str, list[tuple]]:
        """Products and executions: some for the request's expressions, the rest for others."""
        lines, records = [], []
        add = lines.append
        runners = list(self.runner_site)
        for k in range(self.n_products):
            address = cached_addresses[k] if k < len(cached_addresses) else f"{k:064x}"
            expression = str(KSID[f"expression/{address}"])
            workflow = self.workflow(k % self.n_workflows)
            product, execution = f"{KSID['product/']}{k}", f"{KSID['execution/']}{k}"
            runner = runners[k % len(runners)]
            site = self.runner_site[runner]
            size = 1000 + (k * 7919) % 5_000_000
            duration = 5.0 + (k % 50)
            if k >= len(cached_addresses):
                add(f"{iri(expression)} {RDF_TYPE} {ks('Expression')} .")
                add(f"{iri(expression)} {ks('workflow')} {iri(workflow)} .")
            add(f"{iri(product)} {RDF_TYPE} {ks('DataProduct')} .")
            add(f"{iri(product)} {ks('valueOf')} {iri(expression)} .")
            add(f"{iri(product)} {ks('sizeBytes')} {integer(size)} .")
            add(f"{iri(product)} {ks('storedAt')} {iri(site + '/disk')} .")
            add(f"{iri(product)} {ks('outcome')} {ks('Success')} .")
            add(f"{iri(product)} <{PROV}wasGeneratedBy> {iri(execution)} .")
            add(f"{iri(execution)} {RDF_TYPE} {ks('Execution')} .")
            add(f"{iri(execution)} <{PROV}wasAssociatedWith> {iri(runner)} .")
            add(f"{iri(execution)} {ks('computes')} {iri(expression)} .")
            add(f"{iri(execution)} {ks('durationSeconds')} {decimal(duration)} .")
            add(f"{iri(execution)} {ks('outcome')} {ks('Success')} .")
            add(f"{iri(execution)} <{PROV}generated> {iri(product)} .")
            records.append((expression, product, size, site, runner, workflow, duration))
        sums: dict[tuple[str, str], list[float]] = {}
        for _, _, size, _, runner, workflow, duration in records:
            entry = sums.setdefault((workflow, runner), [0.0, 0, 0.0])
            entry[0] += duration
            entry[1] += 1
            entry[2] += size
        for (workflow, runner), (total, runs, size_total) in sums.items():
            node = iri(str(statistics_iri(URIRef(workflow), URIRef(runner))))
            add(f"{node} {RDF_TYPE} {ks('ExecutionStatistics')} .")
            add(f"{node} {ks('workflow')} {iri(workflow)} .")
            add(f"{node} {ks('runner')} {iri(runner)} .")
            add(f"{node} {ks('runs')} {integer(int(runs))} .")
            add(f"{node} {ks('meanDurationSeconds')} {decimal(total / runs)} .")
            add(f"{node} {ks('meanOutputBytes')} {decimal(size_total / runs)} .")
        return "\n".join(lines) + "\n", records

    def dict_facts(self, dag, records: list[tuple]) -> Facts:
        """The reference: the same facts from dictionaries, no store."""
        import datetime as dt

        facts = Facts(now=dt.datetime.now(dt.UTC))
        owner = URIRef(B + "person/owner")
        for runner, site in self.runner_site.items():
            facts.runners[URIRef(runner)] = RunnerInfo(URIRef(runner), URIRef(site), 8, 0, owner)
        for i in range(self.n_workflows):
            facts.eligibility[URIRef(self.workflow(i))] = [
                Eligibility(URIRef(r), True, True, True, True, True) for r in self.runner_site]
        wanted = {e.iri for e in dag.expressions()}
        for dataset, site in self.dataset_site.items():
            facts.datasets[URIRef(dataset)] = DatasetInfo(
                URIRef(dataset), URIRef(site), 10**8, dataset in self.restricted,
                {URIRef(r): h for r, h in self.readers[dataset].items()})
        sums: dict[tuple, list[float]] = {}
        for expression, product, size, site, runner, workflow, duration in records:
            if URIRef(expression) in wanted:
                facts.products.setdefault(URIRef(expression), []).append(ProductInfo(
                    URIRef(product), KS.Success, size, URIRef(site), URIRef(site + "/disk"), runner=URIRef(runner),
                    owner=owner))
            entry = sums.setdefault((URIRef(workflow), URIRef(runner)), [0.0, 0, 0.0])
            entry[0] += duration
            entry[1] += 1
            entry[2] += size
        for key, (total, runs, size_total) in sums.items():
            facts.history[key] = History(total / runs, runs, size_total / runs)
        facts.bandwidth = {(URIRef(a), URIRef(b_)): bw for (a, b_), bw in self.bandwidth.items()}
        return facts


def load_registry(store: Store, federation: Federation) -> None:
    """The owner's graph and the verifier's graph, each where docs/authority.md says it counts."""
    store.bulk_load(federation.registry_ntriples(), registrant_graph(URIRef(OWNER)), "application/n-triples")
    store.bulk_load(federation.verifier_ntriples(), registrant_graph(URIRef(B + "person/verifier")),
                    "application/n-triples")


def load(store: Store, federation: Federation, provenance: str) -> None:
    store.bulk_load(ontology_graph().serialize(format="nt"), ONTOLOGY_GRAPH, "application/n-triples")
    load_registry(store, federation)
    store.bulk_load(provenance, PROVENANCE_GRAPH, "application/n-triples")


def time_plan(store: Store, request: dict, requester: URIRef) -> tuple[float, float, float, int]:
    """(build DAG, gather facts, decide) seconds and the number of nodes."""
    gc.collect()  # a collection the previous run left pending would otherwise land in this one
    with gc_paused():  # as plan_request does
        t0 = time.perf_counter()
        dag = build_dag(store, request)
        t1 = time.perf_counter()
        facts = gather_facts(store, dag, requester)
        t2 = time.perf_counter()
        plan = decide(dag, facts, requester)
        t3 = time.perf_counter()
    return t1 - t0, t2 - t1, t3 - t2, len(plan.steps) + len(plan.skipped)


def subtree(request: dict, max_nodes: int) -> dict:
    """The largest left subtree of the request with at most max_nodes expressions."""
    def size(node: dict) -> int:
        return 1 + sum(size(v) for v in node["args"].values() if isinstance(v, dict) and "workflow" in v)

    node = request
    while size(node) > max_nodes:
        node = node["args"]["a"]
    return node


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1.0: 1,000 runners, 100k products, 10k nodes")
    parser.add_argument("--rdflib-nodes", type=int, default=255, help="size of the subtree rdflib plans")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each kind; the best is reported")
    args = parser.parse_args()
    requester = URIRef(B + "person/requester")

    federation = Federation(args.scale)
    t = time.perf_counter()
    oxigraph = EmbeddedStore(None)
    load_registry(oxigraph, federation)
    oxigraph.bulk_load(ontology_graph().serialize(format="nt"), ONTOLOGY_GRAPH, "application/n-triples")
    request = federation.request()
    dag = build_dag(oxigraph, request)
    leaves = [e.address for e in dag.expressions() if not e.inputs]
    cached = leaves[: int(len(leaves) * 0.3)]
    provenance, records = federation.provenance_ntriples(cached)
    oxigraph.bulk_load(provenance, PROVENANCE_GRAPH, "application/n-triples")
    triples = oxigraph.quad_count()
    print(f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}, "
          f"{platform.system()}; graph: {triples:,} triples ({len(federation.runner_site):,} runners, "
          f"{len(federation.sites)} sites, {federation.n_products:,} products), built in "
          f"{time.perf_counter() - t:.1f} s")
    print(f"request: {len(dag.dag):,} expressions, {len(cached):,} leaves cached")

    runs = sorted((time_plan(oxigraph, request, requester) for _ in range(args.repeat)), key=lambda r: sum(r[:3]))
    dag_s, facts_s, decide_s, nodes = runs[0]
    ox_total = dag_s + facts_s + decide_s
    ox_rate = nodes / ox_total
    print(f"oxigraph : {nodes:,} nodes in {ox_total:.3f} s = {ox_rate:,.0f} nodes/s "
          f"(DAG {dag_s:.3f} s, queries {facts_s:.3f} s, rules {decide_s:.3f} s); best of {len(runs)}, "
          f"median {sum(runs[len(runs) // 2][:3]):.3f} s")

    dict_best = None
    for _ in range(args.repeat):
        gc.collect()
        with gc_paused():
            t0 = time.perf_counter()
            facts = federation.dict_facts(dag, records)
            t1 = time.perf_counter()
            decide(dag, facts, requester)
            t2 = time.perf_counter()
        if dict_best is None or (t2 - t0) < sum(dict_best):
            dict_best = (t1 - t0, t2 - t1)
    dict_rate = nodes / (dag_s + sum(dict_best))
    print(f"dict     : {nodes:,} nodes in {dag_s + sum(dict_best):.3f} s = {dict_rate:,.0f} nodes/s "
          f"(DAG {dag_s:.3f} s, facts from dicts {dict_best[0]:.3f} s, rules {dict_best[1]:.3f} s); "
          f"oxigraph time / dict time = {ox_total / (dag_s + sum(dict_best)):.2f}")

    from rdflib_store import RdflibStore

    t = time.perf_counter()
    rdflib_store = RdflibStore()
    load(rdflib_store, federation, provenance)
    print(f"rdflib   : loaded the same {rdflib_store.quad_count():,} triples in {time.perf_counter() - t:.1f} s")
    small = subtree(request, args.rdflib_nodes)
    dag_s_r, facts_s_r, decide_s_r, nodes_r = time_plan(rdflib_store, small, requester)
    rd_total = dag_s_r + facts_s_r + decide_s_r
    rd_rate = nodes_r / rd_total
    print(f"rdflib   : {nodes_r:,} nodes in {rd_total:.3f} s = {rd_rate:,.1f} nodes/s "
          f"(DAG {dag_s_r:.3f} s, queries {facts_s_r:.3f} s, rules {decide_s_r:.3f} s)")
    small_ox = min((time_plan(oxigraph, small, requester) for _ in range(args.repeat)), key=lambda r: sum(r[:3]))
    small_rate = small_ox[3] / sum(small_ox[:3])
    print(f"oxigraph : the same {small_ox[3]:,}-node subtree at {small_rate:,.0f} nodes/s (best of {args.repeat}; "
          f"rdflib's single run above takes too long to repeat)")
    print()
    print(f"ratios   : oxigraph / rdflib = {ox_rate / rd_rate:,.0f}x nodes/s "
          f"(same {nodes_r}-node subtree: {small_rate / rd_rate:,.0f}x); "
          f"dict reference / oxigraph = {dict_rate / ox_rate:.2f}x")
    print(f"target   : {nodes:,} nodes in {ox_total:.2f} s with oxigraph "
          f"({'meets' if ox_total <= 1.0 else 'misses'} the 1 s target on this machine)")


if __name__ == "__main__":
    main()
