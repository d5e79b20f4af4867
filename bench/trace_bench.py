"""Planner benchmark on real workflow traces: where does the planner put the work, and how many bytes
does that move?

Two runs, each on an embedded Oxigraph store:
  * Montage 2MASS 0.5° (1,738 tasks), the largest sample trace;
  * a DAG of about 10,000 nodes: copies of the seven sample traces side by side (each copy with its
    own files, machines and sites), under one collecting root.
Each trace is imported with one site per machine (``--sites`` = its machines), so its input files are
spread over the sites that run it. Every run plans the whole DAG twice:
  1. *from scratch*: the federation (workflows, runners, sites, datasets) but no products;
  2. *everything cached*: after importing the trace's executions and products.
For the from-scratch plan it prints the bytes moved by the planner's placement against the trace's
own placement (each task on the machine it ran on), a random and a round-robin placement over the
same able runners, and a lower bound. Bytes are counted as the planner counts them: each task fetches
each input that is not at its site (a dataset its runner does not hold, a parent's product made at
another site), at the trace's real file sizes. The lower bound gives each task the site where the
fewest of its input files' bytes are missing and lets every parent's product be already there
(0 bytes moved for inputs already on the chosen site), so no placement can move less.

Usage: python bench/trace_bench.py [--nodes 10000] [--single NAME] [--traces NAME,...] [--seed 7]
"""

from __future__ import annotations

import argparse
import platform
import random
import sys
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rdflib import Literal, URIRef
from rdflib.namespace import RDF, RDFS, XSD

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kgsched.graph.store import EmbeddedStore, Store  # noqa: E402
from kgsched.namespaces import KS, ONTOLOGY_GRAPH, PLANS_GRAPH, PROVENANCE_GRAPH  # noqa: E402
from kgsched.planning.expressions import DATASET_VALUE, Argument, Expression, Parameter, WorkflowInfo, content_address  # noqa: E402
from kgsched.planning.facts import Facts, gather_facts  # noqa: E402
from kgsched.planning.model import Plan  # noqa: E402
from kgsched.planning.planner import decide  # noqa: E402
from kgsched.planning.words import human_bytes  # noqa: E402
from kgsched.provenance import statistics  # noqa: E402
from kgsched.registry.registration import registrant_graph  # noqa: E402
from kgsched.resources import ontology_graph  # noqa: E402
from kgsched.wfcommons.convert import Conversion, ImportOptions, convert, final_tasks, request_dag  # noqa: E402
from kgsched.wfcommons.wfformat import Trace, read_trace  # noqa: E402

TRACES = Path(__file__).resolve().parent.parent / "examples" / "wfcommons"
#: Largest first: the ~10,000-node DAG takes copies of these, in this order, round after round.
MIX = ["montage-chameleon-2mass-05d-001", "bwa-chameleon-medium-001", "montage-chameleon-dss-10d-001",
       "seismology-chameleon-100p-001", "montage-chameleon-dss-05d-001", "sarek-dirt02-001",
       "helloworld-chain-5-chameleon"]
B = "https://bench.example/"
ADMIN = URIRef(B + "admin")
REQUESTER = URIRef(B + "person/requester")
COLLECT = URIRef(B + "workflow/collect")


def trace_path(name: str) -> Path:
    for candidate in (TRACES / f"{name}.json", TRACES / f"{name}.json.gz"):
        if candidate.exists():
            return candidate
    raise SystemExit(f"no trace {name} in {TRACES}")


def ntriples(triples: Iterable[tuple]) -> str:
    """Triples one a line, as rdflib spells terms (a literal with a line break becomes a Turtle long
    string, so this is loaded as Turtle)."""
    return "".join(f"{s.n3()} {p.n3()} {o.n3()} .\n" for s, p, o in triples)


@dataclass
class Run:
    """Traces side by side under one collecting root, and what the benchmark needs about them."""

    conversions: list[Conversion]
    root: Expression
    collector: list[tuple]

    @property
    def tasks(self) -> int:
        return sum(len(c.expressions) for c in self.conversions)


def build_run(names: list[str], copies: bool, wan_bandwidth: float) -> tuple[Run, float]:
    """Convert the traces (copy k of a trace is named ``<trace>-<k>``) and make the collecting root."""
    t = time.perf_counter()
    cache: dict[str, Trace] = {}
    seen: dict[str, int] = defaultdict(int)
    conversions = []
    for name in names:
        if name not in cache:
            cache[name] = read_trace(trace_path(name))
        trace = cache[name]
        seen[name] += 1
        label = f"{name}-{seen[name]}" if copies else name
        conversions.append(convert(trace, ImportOptions(name=label, sites=max(1, len(trace.machines)),
                                                         wan_bandwidth=wan_bandwidth)))
    finals = [c.expressions[task] for c in conversions for task in final_tasks(c.trace)]
    width = len(str(len(finals)))
    slots = [f"input_{n:0{width}d}" for n in range(len(finals))]
    params = {name: Parameter(name, DATASET_VALUE, True) for name in slots}
    workflow = WorkflowInfo(COLLECT, "1", KS.CommandLine, None, params, 1.0, 0)
    args = tuple(Argument(name, "expression", e.address) for name, e in zip(slots, finals, strict=True))
    root = Expression(content_address(workflow, args), workflow, args, sorted({e.address for e in finals}))
    triples: list[tuple] = [
        (COLLECT, RDF.type, KS.Workflow), (COLLECT, RDFS.label, Literal("collect the traces' final products")),
        (COLLECT, KS.version, Literal("1")), (COLLECT, KS.implementationKind, KS.CommandLine),
        (COLLECT, KS.implementation, Literal("true")), (COLLECT, KS.author, conversions[0].agent),
        (COLLECT, KS.estimatedDurationSeconds, Literal("1.0", datatype=XSD.decimal)),
    ]
    for name, parameter in params.items():
        node = URIRef(f"{COLLECT}/param/{name}")
        triples += [(COLLECT, KS.parameter, node), (node, KS.name, Literal(name)),
                    (node, KS.parameterType, parameter.type), (node, KS.optional, Literal(True))]
    return Run(conversions, root, triples), time.perf_counter() - t


def load_federation(store: Store, run: Run) -> None:
    store.bulk_load(ontology_graph().serialize(format="nt"), ONTOLOGY_GRAPH, "application/n-triples")
    # Each trace's agent registers what its trace describes and verifies its workflows and the
    # collector, in its own graph (docs/authority.md); the administrator registers the collector.
    for c in run.conversions:
        graph = registrant_graph(c.agent)
        verification = URIRef(f"{c.agent}/verification/collect")
        own = [(graph, KS.registeredBy, c.agent), (verification, RDF.type, KS.WorkflowVerification),
               (verification, KS.verifiedWorkflow, COLLECT), (verification, KS.verifiedVersion, Literal("1")),
               (verification, KS.verifiedImplementationKind, KS.CommandLine),
               (verification, KS.verifiedImplementation, Literal("true"))]
        store.bulk_load(ntriples([*c.registry, *c.agent_own, *own]), graph, "text/turtle")
    admin_graph = registrant_graph(ADMIN)
    store.bulk_load(ntriples([*run.collector, (admin_graph, KS.registeredBy, ADMIN)]), admin_graph, "text/turtle")
    store.bulk_load(ntriples(t for c in run.conversions for t in c.plans), PLANS_GRAPH, "text/turtle")


def load_provenance(store: Store, run: Run) -> None:
    store.bulk_load(ntriples(t for c in run.conversions for t in c.provenance), PROVENANCE_GRAPH, "text/turtle")
    statistics.rebuild(store)


def plan(store: Store, run: Run) -> tuple[Plan, Facts, float]:
    t = time.perf_counter()
    dag = request_dag([e for c in run.conversions for e in c.expressions.values()], run.root)
    facts = gather_facts(store, dag, REQUESTER)
    result = decide(dag, facts, REQUESTER)
    return result, facts, time.perf_counter() - t


# --------------------------------------------------------------------------------------------------
# Bytes moved
# --------------------------------------------------------------------------------------------------

class Placements:
    """Bytes each placement of the trace tasks moves, counted the planner's way at real file sizes."""

    def __init__(self, run: Run, plan_result: Plan, facts: Facts, seed: int) -> None:
        self.facts = facts
        self.site = {r: info.site for r, info in facts.runners.items()}
        self.expressions = {e.address: e for c in run.conversions for e in c.expressions.values()}
        self.size = {c.expressions[t].address: n for c in run.conversions for t, n in c.output_bytes.items()}
        steps = {s.address: s for s in plan_result.steps if s.address in self.expressions}
        self.candidates = {a: tuple(s.candidates) for a, s in steps.items()}
        self.planner = {a: s.runner for a, s in steps.items() if s.runner is not None}
        self.traced = {c.expressions[t.id].address: c.runners[t.machine or "unknown-machine"]
                       for c in run.conversions for t in c.trace.tasks}
        rng = random.Random(seed)
        self.random = {a: rng.choice(c) for a, c in sorted(self.candidates.items()) if c}
        turn: dict[tuple, int] = defaultdict(int)
        self.round_robin = {}
        for address in (e.address for c in run.conversions for e in c.expressions.values()):
            pool = self.candidates.get(address)
            if pool:
                self.round_robin[address] = pool[turn[pool] % len(pool)]
                turn[pool] += 1

    def missing_datasets(self, expression: Expression, runner: URIRef) -> int:
        return sum(self.facts.datasets[d].size_bytes for d in expression.datasets
                   if not self.facts.datasets[d].readers.get(runner))

    def moved(self, placement: dict[str, URIRef], addresses: Iterable[str] | None = None) -> int | None:
        if len(placement) < len(self.expressions):
            return None  # some task was not placed (the planner said "cannot")
        total = 0
        for address in self.expressions if addresses is None else addresses:
            expression = self.expressions[address]
            runner = placement[address]
            total += self.missing_datasets(expression, runner)
            for child in expression.inputs:
                if self.site[placement[child]] != self.site[runner]:
                    total += self.size[child]
        return total

    def one_site(self, run: Run) -> int:
        """Each trace entirely at the one site where that moves least (runners there able to run it all)."""
        total = 0
        for conversion in run.conversions:
            addresses = [e.address for e in conversion.expressions.values()]
            options = []
            for runner in sorted(conversion.runners.values()):
                if all(runner in self.candidates.get(a, ()) for a in addresses):
                    options.append(self.moved({**self.planner, **dict.fromkeys(addresses, runner)}, addresses) or 0)
            total += min(options, default=0)
        return total

    def lower_bound(self) -> int:
        total = 0
        for address, expression in self.expressions.items():
            best: dict[URIRef, int] = {}
            for runner in self.candidates.get(address, ()):
                site = self.site[runner]
                best[site] = min(best.get(site, 1 << 62), self.missing_datasets(expression, runner))
            total += min(best.values(), default=0)
        return total


def ratio(a: int | None, b: int | None) -> str:
    if a is None or b is None:
        return "n/a"
    if b == 0:
        return "1.00x" if a == 0 else "∞"
    value = a / b
    return f"{value:,.0f}x" if value >= 100 else f"{value:.2f}x"


def report(title: str, names: list[str], copies: bool, seed: int, wan_bandwidth: float) -> None:
    run, convert_s = build_run(names, copies, wan_bandwidth)
    store = EmbeddedStore(None)
    t = time.perf_counter()
    load_federation(store, run)
    load_s = time.perf_counter() - t
    runners = sum(len(c.runners) for c in run.conversions)
    sites = sum(len(c.sites) for c in run.conversions)
    datasets = sum(len(c.datasets) for c in run.conversions)
    input_bytes = sum(c.trace.file_sizes[f] for c in run.conversions for f in c.datasets)
    print(f"run      : {title}: {len(run.conversions)} trace(s), {run.tasks:,} tasks + 1 collecting root, "
          f"{runners} runners at {sites} sites ({human_bytes(wan_bandwidth)}/s between them), "
          f"{datasets:,} input files ({human_bytes(input_bytes)})")
    print(f"load     : {store.quad_count():,} triples (converted in {convert_s:.2f} s, loaded in {load_s:.2f} s)")

    scratch, facts, scratch_s = plan(store, run)
    nodes = len(scratch.steps) + len(scratch.skipped)
    counts = scratch.summary()
    print(f"scratch  : {nodes:,} nodes planned in {scratch_s:.2f} s = {nodes / scratch_s:,.0f} nodes/s — "
          f"{counts['recompute']:,} recompute, {counts['reuse']:,} reuse, {counts['cannot']:,} cannot")

    t = time.perf_counter()
    load_provenance(store, run)
    provenance_s = time.perf_counter() - t
    cached, _, cached_s = plan(store, run)
    counts = cached.summary()
    moved_root = sum(s.offers[0].bytes_to_move for s in cached.steps if s.decision == "recompute" and s.offers)
    print(f"cached   : {nodes:,} nodes planned in {cached_s:.2f} s = {nodes / cached_s:,.0f} nodes/s — "
          f"{counts['reuse']:,} reuse, {counts['recompute']:,} recompute (the root: at most "
          f"{human_bytes(moved_root)} of final products to gather), {counts['cannot']:,} cannot "
          f"(products loaded in {provenance_s:.2f} s)")

    placements = Placements(run, scratch, facts, seed)
    planner, traced = placements.moved(placements.planner), placements.moved(placements.traced)
    rand, robin = placements.moved(placements.random), placements.moved(placements.round_robin)
    bound, single = placements.lower_bound(), placements.one_site(run)

    def show(n: int | None) -> str:
        return "n/a" if n is None else human_bytes(n)

    print(f"bytes    : planner {show(planner)}, as traced {show(traced)}, random {show(rand)}, "
          f"round-robin {show(robin)}, each trace on its best single site {show(single)}, lower bound {show(bound)}")
    print(f"ratios   : random / planner = {ratio(rand, planner)}, round-robin / planner = {ratio(robin, planner)}, "
          f"as traced / planner = {ratio(traced, planner)}, single site / planner = {ratio(single, planner)}, "
          f"planner / lower bound = {ratio(planner, bound)}")
    print()
    store.close()


def mix(target: int, names: list[str]) -> list[str]:
    """Copies of the traces, in order, round after round, until they hold at least ``target`` tasks."""
    sizes = {name: len(read_trace(trace_path(name)).tasks) for name in names}
    chosen, total = [], 0
    while total < target:
        for name in names:
            chosen.append(name)
            total += sizes[name]
            if total >= target:
                break
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--single", default=MIX[0], help="the trace of the first run (default: Montage 2MASS)")
    parser.add_argument("--nodes", type=int, default=10_000, help="tasks of the side-by-side run (0: skip it)")
    parser.add_argument("--traces", default=",".join(MIX), help="traces the side-by-side run takes copies of")
    parser.add_argument("--seed", type=int, default=7, help="seed of the random placement")
    parser.add_argument("--wan-bandwidth", type=float, default=1e8, help="bytes/s between a trace's sites")
    args = parser.parse_args()
    print(f"machine  : {platform.machine()}, {platform.python_implementation()} {platform.python_version()}, "
          f"{platform.system()}, {__import__('os').cpu_count()} cores\n")
    report(args.single, [args.single], copies=False, seed=args.seed, wan_bandwidth=args.wan_bandwidth)
    if args.nodes > 0:
        names = mix(args.nodes, args.traces.split(","))
        report(f"~{args.nodes:,} tasks side by side", names, copies=True, seed=args.seed,
               wan_bandwidth=args.wan_bandwidth)


if __name__ == "__main__":
    main()
