"""A WfCommons trace becomes what kgsched knows: workflows, a federation, expressions and PROV.

Mapping (docs/wfcommons.md says it for people):

* one **workflow** per task category (the task's program, e.g. ``mProject``), a command-line
  workflow whose parameters are its data inputs (``input_000``, … — the most any task of the
  category reads, the fewest required) and two strings: the command ``arguments`` and the names of
  the ``outputs`` (so two tasks that write different files are different expressions);
* one **runner** per machine (cores and memory from the trace), spread over ``sites`` sites, each
  with its storage; one **dataset** per input file no task writes, held at a site chosen by a hash
  of its name (so a federation's sites hold different parts of the trace's input);
* one **expression** per task, content-addressed by kgsched.planning.expressions, with the datasets it reads
  and the expressions of its parent tasks as arguments;
* one **execution** per task (PROV: runner = the machine, duration = ``runtimeInSeconds``, start
  reconstructed as the end of its last parent from the trace's ``executedAt``, since WfFormat 1.5
  records no start times) generating one **product**: the task's output files together, sized as
  their sum. Traces carry no checksums, so products get a *synthetic* one, the SHA-256 of their
  files' ids and sizes: it names the product but checks no bytes.

Who wrote, verified, provided and contributed what, a trace does not say: one organization per
trace stands for all of it, and every runner of the trace trusts it. All IRIs are derived from the
trace's name, so importing twice writes the same resources (the second import replaces the first).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import quote

import networkx as nx
from rdflib import Literal, URIRef
from rdflib.namespace import FOAF, ORG, PROV, RDF, RDFS, XSD
from rdflib.term import Node

from kgsched.clock import dt_literal
from kgsched.errors import InvalidRequest
from kgsched.graph import queries
from kgsched.graph.store import Store, insert_data
from kgsched.graph.updates import joined
from kgsched.literals import decimal_literal
from kgsched.namespaces import KS, KSID, PLANS_GRAPH, PROVENANCE_GRAPH
from kgsched.planning.expressions import (
    DATASET_VALUE,
    X_STRING,
    Argument,
    Expression,
    Parameter,
    RequestDag,
    WorkflowInfo,
    content_address,
    typed_literal,
)
from kgsched.registry.registration import Registry, registrant_graph
from kgsched.wfcommons.wfformat import Machine, Task, Trace

Triple = tuple[Node, Node, Node]
DEFAULT_MEMORY_BYTES = 8_000_000_000


@dataclass(frozen=True)
class ImportOptions:
    """How to lay a trace out as a federation."""

    name: str | None = None  # namespace of the trace's IRIs (default: the trace's name)
    sites: int = 1  # spread the machines and the input files over this many sites (at most one per machine)
    wan_bandwidth: float = 1e8  # bytes/s between the trace's sites
    local_bandwidth: float = 1e9  # bytes/s within a site
    provenance: bool = True  # False: only workflows, runners, sites and datasets (plan from scratch)

    def __post_init__(self) -> None:
        if self.sites < 1:
            raise InvalidRequest("sites must be ≥ 1")
        if not (self.wan_bandwidth > 0 and self.local_bandwidth > 0):
            raise InvalidRequest("bandwidths must be > 0")


class _Triples(list):
    """A list of triples with Graph's ``add``, so Expression.to_graph writes into it unchanged."""

    def add(self, triple: Triple) -> None:
        self.append(triple)


@dataclass
class Conversion:
    """A trace as triples for three graphs, and the expressions and facts the benchmark needs."""

    trace: Trace
    namespace: str
    agent: URIRef
    registry: list[Triple] = field(default_factory=_Triples)  # → the registrant's graph
    #: The trace's agent about itself (→ its own graph): its description, its verifications of the
    #: trace's workflows, and that it authorises the registrant to register the runners it owns
    #: (docs/authority.md: an owner or a verifier speaks in its own graph).
    agent_own: list[Triple] = field(default_factory=_Triples)
    plans: list[Triple] = field(default_factory=_Triples)  # expressions → the plans graph
    provenance: list[Triple] = field(default_factory=_Triples)  # executions, products → provenance
    workflows: dict[str, WorkflowInfo] = field(default_factory=dict)  # category → workflow
    expressions: dict[str, Expression] = field(default_factory=dict)  # task id → expression
    runners: dict[str, URIRef] = field(default_factory=dict)  # machine → runner
    runner_site: dict[URIRef, URIRef] = field(default_factory=dict)
    sites: list[URIRef] = field(default_factory=list)
    datasets: dict[str, URIRef] = field(default_factory=dict)  # file id → dataset
    dataset_site: dict[URIRef, URIRef] = field(default_factory=dict)
    products: dict[str, URIRef] = field(default_factory=dict)  # task id → product
    output_bytes: dict[str, int] = field(default_factory=dict)  # task id → bytes of its outputs

    def subjects(self, triples: Iterable[Triple]) -> list[URIRef]:
        return sorted({s for s, _, _ in triples if isinstance(s, URIRef)})

    def counts(self) -> dict[str, int]:
        return {"workflows": len(self.workflows), "expressions": len(self.expressions),
                "executions": len(self.products), "runners": len(self.runners), "sites": len(self.sites),
                "datasets": len(self.datasets), "triples": len(self.registry) + len(self.agent_own) + len(self.plans)
                + len(self.provenance),
                "product_bytes": sum(self.output_bytes.values()) if self.products else 0}

    def all_triples(self) -> Iterable[Triple]:
        yield from self.registry
        yield from self.agent_own
        yield from self.plans
        yield from self.provenance


def slug(text: str) -> str:
    """A name safe in an IRI path segment."""
    return quote(text, safe="-_.~")


def _int(n: int) -> Literal:
    return Literal(str(int(n)), datatype=XSD.integer)


def _decimal(x: float, digits: int = 6) -> Literal:
    return decimal_literal(x, digits)  # durations to the microsecond unless the caller says otherwise


def _site_of(key: str, n_sites: int) -> int:
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % n_sites


def synthetic_checksum(files: Iterable[tuple[str, int]]) -> str:
    """``sha256:`` of the files' ids and sizes: traces record no bytes, so nothing better exists."""
    text = "".join(f"{file_id}\t{size}\n" for file_id, size in files)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _sources(task: Task, producer: dict[str, str]) -> list[tuple[str, str]]:
    """The task's data inputs, deduplicated in the order it lists them: ("dataset", file id) for an
    input file no task writes, ("task", parent id) for a parent's outputs (once per parent)."""
    seen: dict[tuple[str, str], None] = {}
    for file_id in task.inputs:
        seen.setdefault(("task", producer[file_id]) if file_id in producer else ("dataset", file_id))
    for parent in task.parents:  # a parent whose files it does not list is still an input
        seen.setdefault(("task", parent))
    return list(seen)


def convert(trace: Trace, options: ImportOptions | None = None,
            progress: Callable[[int], None] | None = None) -> Conversion:
    """The trace as triples and expressions, computed in memory (nothing is written)."""
    options = options or ImportOptions()
    name = options.name or trace.name
    namespace = str(KSID[f"wfcommons/{slug(name)}/"])
    conversion = Conversion(trace, namespace, URIRef(namespace + "agent"))
    _federation(conversion, options)
    _workflows(conversion)
    _expressions(conversion, options, progress)
    return conversion


def _federation(c: Conversion, options: ImportOptions) -> None:
    trace, add, ns = c.trace, c.registry.add, c.namespace
    c.agent_own.add((c.agent, RDF.type, ORG.Organization))
    who = f" (recorded by {trace.author})" if trace.author else ""
    c.agent_own.add((c.agent, FOAF.name, Literal(f"Contributors to the WfCommons trace {trace.name}{who}")))
    c.agent_own.add((c.agent, RDFS.comment, Literal(
        "The trace names no authors, verifiers, data providers or machine owners; this organization stands "
        "for all of them.")))
    machines = list(trace.machines)
    if not machines or any(t.machine is None for t in trace.tasks):
        machines.append(Machine("unknown-machine", None, None))
    n_sites = min(options.sites, len(machines))
    for i in range(n_sites):
        site, storage = URIRef(f"{ns}site/{i}"), URIRef(f"{ns}site/{i}/storage")
        c.sites.append(site)
        add((site, RDF.type, KS.Site))
        add((site, RDFS.label, Literal(f"site {i} of the {trace.name} federation")))
        add((site, KS.bandwidthBytesPerSecond, _decimal(options.local_bandwidth, 1)))
        add((storage, RDF.type, KS.Storage))
        add((storage, KS.atSite, site))
        add((storage, KS.layer, Literal("disk")))
    for i, a in enumerate(c.sites):
        for j, b in enumerate(c.sites):
            if i != j:
                link = URIRef(f"{ns}link/{i}-{j}")
                add((link, RDF.type, KS.NetworkLink))
                add((link, KS.fromSite, a))
                add((link, KS.toSite, b))
                add((link, KS.bandwidthBytesPerSecond, _decimal(options.wan_bandwidth, 1)))
    for file_id in trace.external_inputs:
        dataset = URIRef(f"{ns}file/{slug(file_id)}")
        site = c.sites[_site_of(file_id, n_sites)]
        c.datasets[file_id] = dataset
        c.dataset_site[dataset] = site
        add((dataset, RDF.type, KS.Dataset))
        add((dataset, RDFS.label, Literal(file_id)))
        add((dataset, KS.heldAt, site))
        add((dataset, KS.storedAt, URIRef(f"{site}/storage")))
        add((dataset, KS.location, Literal(file_id)))
        add((dataset, KS.sizeBytes, _int(trace.file_sizes[file_id])))
        add((dataset, KS.providedBy, c.agent))
    tasks_on: dict[str, list[Task]] = defaultdict(list)
    for task in trace.tasks:
        tasks_on[task.machine or "unknown-machine"].append(task)
    for i, machine in enumerate(machines):
        if machine.name == "unknown-machine" and not tasks_on[machine.name]:
            continue
        runner, site = URIRef(f"{ns}runner/{slug(machine.name)}"), c.sites[i % n_sites]
        c.runners[machine.name] = runner
        c.runner_site[runner] = site
        ran = tasks_on[machine.name]
        cores = machine.cores or max([t.cores or 1 for t in ran], default=1)
        memory = machine.memory_bytes or max([t.memory_bytes or 0 for t in ran], default=0) or DEFAULT_MEMORY_BYTES
        add((runner, RDF.type, KS.JobRunner))
        add((runner, RDFS.label, Literal(f"{machine.name} ({trace.name})")))
        add((runner, KS.ownedBy, c.agent))
        add((runner, KS.atSite, site))
        add((runner, KS.cores, _int(cores)))
        add((runner, KS.memoryBytes, _int(memory)))
        add((runner, KS.supports, KS.CommandLine))
        add((runner, KS.usesStorage, URIRef(f"{site}/storage")))
        add((runner, KS.trusts, c.agent))
        add((runner, KS.serves, KS.Anyone))
        for dataset, held_at in c.dataset_site.items():
            add((runner, KS.holds if held_at == site else KS.canRead, dataset))


def _workflows(c: Conversion) -> None:
    trace, add, ns = c.trace, c.registry.add, c.namespace
    producer = trace.producer
    by_category: dict[str, list[Task]] = defaultdict(list)
    for task in trace.tasks:
        by_category[task.category].append(task)
    for category, tasks in sorted(by_category.items()):
        iri = URIRef(f"{ns}workflow/{slug(category)}")
        counts = [len(_sources(t, producer)) for t in tasks]
        width = max(3, len(str(max(counts) - 1))) if max(counts) else 3
        parameters = {f"input_{n:0{width}d}": Parameter(f"input_{n:0{width}d}", DATASET_VALUE, n >= min(counts))
                      for n in range(max(counts))}
        has_arguments = any(t.arguments for t in tasks)
        if has_arguments:
            parameters["arguments"] = Parameter("arguments", X_STRING, not all(t.arguments for t in tasks))
        parameters["outputs"] = Parameter("outputs", X_STRING, False)
        sizes = [sum(trace.file_sizes[f] for f in t.outputs) for t in tasks]
        cores = [t.cores for t in tasks if t.cores]
        info = WorkflowInfo(
            iri=iri, version=trace.name, kind=KS.CommandLine, environment=trace.runtime_system,
            parameters=parameters, estimated_duration=sum(t.runtime_seconds for t in tasks) / len(tasks),
            estimated_output_bytes=round(sum(sizes) / len(sizes)), requires_cores=max(cores, default=1))
        c.workflows[category] = info
        add((iri, RDF.type, KS.Workflow))
        add((iri, RDFS.label, Literal(category)))
        add((iri, RDFS.comment, Literal(f"{category} as run {len(tasks)} time(s) in the WfCommons trace {trace.name}; "
                                        "its data inputs are input_… in the order the task lists them.")))
        add((iri, KS.version, Literal(info.version)))
        add((iri, KS.implementationKind, KS.CommandLine))
        add((iri, KS.implementation, Literal(tasks[0].program or category)))
        if info.environment:
            add((iri, KS.environment, Literal(info.environment)))
        add((iri, KS.author, c.agent))
        verification = URIRef(f"{iri}/verification")
        c.agent_own.add((verification, RDF.type, KS.WorkflowVerification))
        c.agent_own.add((verification, KS.verifiedWorkflow, iri))
        c.agent_own.add((verification, KS.verifiedVersion, Literal(info.version)))
        c.agent_own.add((verification, KS.verifiedImplementationKind, KS.CommandLine))
        c.agent_own.add((verification, KS.verifiedImplementation, Literal(tasks[0].program or category)))
        add((iri, KS.estimatedDurationSeconds, _decimal(info.estimated_duration or 0.0)))
        add((iri, KS.estimatedOutputBytes, _int(info.estimated_output_bytes or 0)))
        if cores:
            add((iri, KS.requiresCores, _int(info.requires_cores)))
        for parameter in parameters.values():
            node = URIRef(f"{iri}/param/{parameter.name}")
            add((iri, KS.parameter, node))
            add((node, RDF.type, KS.Parameter))
            add((node, KS.name, Literal(parameter.name)))
            add((node, KS.parameterType, parameter.type))
            if parameter.optional:
                add((node, KS.optional, Literal(True)))


def _expressions(c: Conversion, options: ImportOptions, progress: Callable[[int], None] | None) -> None:
    trace = c.trace
    producer = trace.producer
    ends: dict[str, float] = {}
    for done, task in enumerate(trace.tasks, start=1):
        workflow = c.workflows[task.category]
        data_names = sorted(n for n, p in workflow.parameters.items() if p.takes_data)
        arguments: list[Argument] = []
        inputs: list[str] = []
        used: list[URIRef] = []
        for (kind, key), param in zip(_sources(task, producer), data_names, strict=False):
            if kind == "dataset":
                arguments.append(Argument(param, "dataset", c.datasets[key]))
                used.append(c.datasets[key])
            else:
                parent = c.expressions[key]
                arguments.append(Argument(param, "expression", parent.address))
                inputs.append(parent.address)
                if key in c.products:
                    used.append(c.products[key])
        if task.arguments:
            arguments.append(Argument("arguments", "literal",
                                      typed_literal("arguments", json.dumps(list(task.arguments)), X_STRING)))
        arguments.append(Argument("outputs", "literal",
                                  typed_literal("outputs", json.dumps(list(task.outputs)), X_STRING)))
        frozen = tuple(sorted(arguments, key=lambda a: a.name))
        address = content_address(workflow, frozen)
        expression = Expression(address, workflow, frozen, sorted(set(inputs)))
        c.expressions[task.id] = expression
        expression.to_graph(c.plans)  # type: ignore[arg-type]  # _Triples has Graph's add
        files = [(f, trace.file_sizes[f]) for f in task.outputs]
        c.output_bytes[task.id] = sum(size for _, size in files)
        start = max((ends[p] for p in task.parents), default=0.0)
        ends[task.id] = start + task.runtime_seconds
        if options.provenance:
            began = trace.executed_at + dt.timedelta(seconds=start)
            ended = trace.executed_at + dt.timedelta(seconds=ends[task.id])
            _execution(c, task, expression, used, files, began, ended)
        if progress is not None:
            progress(done)


def _execution(c: Conversion, task: Task, expression: Expression, used: list[URIRef],
               files: list[tuple[str, int]], began: dt.datetime, ended: dt.datetime) -> None:
    add = c.provenance.add
    runner = c.runners[task.machine or "unknown-machine"]
    execution = URIRef(KSID[f"execution/{uuid.uuid5(uuid.NAMESPACE_URL, c.namespace + 'task/' + task.id).hex}"])
    checksum = synthetic_checksum(files)
    product = URIRef(KSID[f"product/{checksum.split(':', 1)[1]}-{expression.address[:16]}"])
    c.products[task.id] = product
    add((execution, RDF.type, KS.Execution))
    add((execution, RDFS.label, Literal(f"{task.id} ({c.trace.name})")))
    add((execution, PROV.wasAssociatedWith, runner))
    add((execution, KS.computes, expression.iri))
    for entity in used:
        add((execution, PROV.used, entity))
    add((execution, PROV.generated, product))
    add((execution, PROV.startedAtTime, dt_literal(began)))
    add((execution, PROV.endedAtTime, dt_literal(ended)))
    add((execution, KS.outcome, KS.Success))
    add((execution, KS.durationSeconds, _decimal(task.runtime_seconds)))
    add((product, RDF.type, KS.DataProduct))
    add((product, RDFS.label, Literal(", ".join(f for f, _ in files[:5]) + (" …" if len(files) > 5 else ""))))
    add((product, KS.valueOf, expression.iri))
    add((product, KS.sizeBytes, _int(c.output_bytes[task.id])))
    add((product, KS.checksum, Literal(checksum)))
    add((product, KS.storedAt, URIRef(f"{c.runner_site[runner]}/storage")))
    add((product, KS.location, Literal(f"{slug(c.trace.name)}/{slug(task.id)}/")))
    add((product, KS.outcome, KS.Success))
    add((product, PROV.wasGeneratedBy, execution))
    add((product, PROV.generatedAtTime, dt_literal(ended)))
    add((product, PROV.wasAttributedTo, runner))


# --------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------

def _replace(graph: URIRef, subjects: list[URIRef], triples: list[Triple]) -> str:
    """Remove what the graph says about the subjects, then insert the triples (one update part)."""
    if not triples:
        return ""
    delete = ""
    if subjects:
        delete = queries.text("subjects-delete", [{"g": graph, "s": s} for s in subjects]) + " ;\n"
    return delete + insert_data(graph, triples)


def write(store: Store, conversion: Conversion, registrant: URIRef) -> int:
    """Write the conversion in **one** update (so a failure leaves the store as it was): the federation
    into the registrant's graph, expressions into the plans graph, executions and products into the
    provenance graph, each replacing what an earlier import of the same trace said. Then rebuild the
    running execution statistics. Returns the number of triples written."""
    graph = registrant_graph(registrant)
    registry = list(conversion.registry) + [(graph, KS.registeredBy, registrant)]
    agent_graph = registrant_graph(conversion.agent)
    agent_own = list(conversion.agent_own) + [(agent_graph, KS.registeredBy, conversion.agent)]
    if registrant == conversion.agent:
        registry, agent_own = registry + agent_own, []
    else:
        agent_own.append((conversion.agent, KS.authorizes, registrant))
    registry_subjects = conversion.subjects(registry)
    with store.write_lock:
        Registry(store).check_ownership(registrant, registry_subjects)
        # Removing what an earlier import said doubles the time of a write to disk; a first import
        # (the trace's agent is unknown) has nothing to remove.
        again = queries.ask(store, "subject-known", [{"s": conversion.agent}])
        parts = [
            _replace(graph, registry_subjects if again else [], registry),
            _replace(agent_graph, conversion.subjects(agent_own) if again else [], agent_own) if agent_own else "",
            _replace(PLANS_GRAPH, conversion.subjects(conversion.plans) if again else [], conversion.plans),
            _replace(PROVENANCE_GRAPH, conversion.subjects(conversion.provenance) if again else [],
                     conversion.provenance),
        ]
        store.update(joined(*parts))
    if conversion.provenance:
        from kgsched.provenance import statistics

        statistics.rebuild(store)
    return len(registry) + len(agent_own) + len(conversion.plans) + len(conversion.provenance)


# --------------------------------------------------------------------------------------------------
# Planning a trace
# --------------------------------------------------------------------------------------------------

def final_tasks(trace: Trace) -> list[str]:
    """Tasks no other task depends on: their products are what the trace was run for."""
    parents = {p for t in trace.tasks for p in t.parents}
    return [t.id for t in trace.tasks if t.id not in parents]


def request_dag(expressions: Iterable[Expression], root: Expression) -> RequestDag:
    """A request's DAG built straight from expressions (a trace's DAG shares sub-expressions so much
    that the nested JSON form would repeat them exponentially often). The root must depend, directly
    or not, on every expression given."""
    dag = nx.DiGraph()
    for expression in [*expressions, root]:
        dag.add_node(expression.address, expression=expression)
    for expression in [*expressions, root]:
        for child in expression.inputs:
            if child not in dag:
                raise InvalidRequest(f"expression {expression.address[:12]} uses {child[:12]}, which is not given")
            dag.add_edge(child, expression.address)
    unreached = set(dag) - nx.ancestors(dag, root.address) - {root.address}
    if unreached:
        raise InvalidRequest(f"{len(unreached)} expression(s) are not inputs of the root")
    return RequestDag(dag, root)
