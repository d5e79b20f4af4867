"""Registration: Turtle in, SHACL-checked, written into the registrant's own named graph.

Each registrant owns one named graph. A registration replaces the registrant's description of the
resources it names (their triples and the blank nodes hanging off them) and leaves the rest of the
registrant's graph alone. Nothing is written unless the whole input parses (strictly, literals
included), conforms to the shapes (checked on what the registration describes, with the ontology and
the context its shapes need: the types of everything it refers to) and names only resources the
registrant owns or that are new. Checking costs what the body costs and holds no lock; see Registry.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from pyshacl import validate as shacl_validate
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import RDF, SH
from rdflib.term import Node

from kgsched import resources
from kgsched.descriptions import describe_closure
from kgsched.errors import InvalidRequest, NotEntitled, OwnershipConflict, ShapeViolation
from kgsched.graph import queries
from kgsched.graph.binding import check_iri
from kgsched.graph.rdfio import TripleSet, parse_triples
from kgsched.graph.store import Store
from kgsched.namespaces import KS, ONTOLOGY_GRAPH, REGISTRANT_GRAPH_BASE, bind_prefixes
from kgsched.registry import authority
from kgsched.registry.generation import bump_update
from kgsched.registry.shapes_check import Index, compiled_shapes, ontology_index, spo_index, violations
from kgsched.registry.tokens import TOKENS_GRAPH
from kgsched.registry.writes import (
    DEFAULT_CHUNK_TRIPLES,
    blank_depth,
    current_descriptions,
    described_roots,
    description_groups,
    replace_descriptions,
)


def registrant_graph(registrant: URIRef) -> URIRef:
    """The named graph a registrant owns (a hash, so any agent IRI maps to a safe graph IRI)."""
    digest = hashlib.sha256(str(registrant).encode()).hexdigest()[:32]
    return URIRef(REGISTRANT_GRAPH_BASE + digest)


@dataclass
class ValidationOutcome:
    conforms: bool
    report_text: str = ""
    report_turtle: str = ""
    results: list[dict] = field(default_factory=list)

    def raise_if_violated(self) -> None:
        if not self.conforms:
            lines = [f"- {r['focusNode']} {r.get('path', '')}: {r['message']}" for r in self.results]
            raise ShapeViolation(
                f"{len(self.results)} shape violation(s):\n" + "\n".join(lines),
                report_text=self.report_text,
                report_turtle=self.report_turtle,
                results=self.results,
            )


@dataclass
class RegistrationResult:
    registrant: URIRef
    graph: URIRef
    resources: list[URIRef]
    triples: int

    def to_dict(self) -> dict:
        return {
            "registrant": str(self.registrant),
            "graph": str(self.graph),
            "resources": [str(r) for r in self.resources],
            "triples": self.triples,
        }


def validate_graph(data: Graph, context: Graph | None = None) -> ValidationOutcome:
    """SHACL-check the resources ``data`` describes against the shapes.

    ``context`` holds facts about resources the data only refers to (their types, for sh:class);
    they are not themselves validated, so a registrant answers only for what it describes."""
    # The ontology goes into the data graph itself (class hierarchy for sh:class, ks:Anyone...):
    # relying on pySHACL's ont_graph mixing depends on its inference settings.
    data_graph = resources.ontology_graph()
    for triple in data:
        data_graph.add(triple)
    if context is not None:
        for triple in context:
            data_graph.add(triple)
    conforms, report_graph, report_text = shacl_validate(
        data_graph,
        shacl_graph=resources.shapes_graph(),
        inference="none",
        abort_on_first=False,
        allow_warnings=True,
    )
    if conforms:
        return ValidationOutcome(True)
    # Context nodes are validated too (pySHACL's focus_nodes mode skips nested sh:node checks), but
    # only results about what ``data`` describes count — in the results, the text and the Turtle.
    described = set(data.subjects())
    kept = [result for result in report_graph.objects(None, SH.result)
            if report_graph.value(result, SH.resultSeverity) == SH.Violation
            and report_graph.value(result, SH.focusNode) in described]
    if not kept:
        return ValidationOutcome(True)
    results = [_result_entry(report_graph, result) for result in kept]
    results.sort(key=lambda r: (r["focusNode"], r.get("path", ""), r["message"]))
    return ValidationOutcome(False, _report_text(results), _report_turtle(report_graph, kept), results)


def _result_entry(report: Graph, result: Node) -> dict[str, str]:
    entry = {
        "focusNode": _show(report.value(result, SH.focusNode)),
        "message": str(report.value(result, SH.resultMessage) or "violates a shape"),
        "shape": _show(report.value(result, SH.sourceShape)),
    }
    path = report.value(result, SH.resultPath)
    if path is not None:
        entry["path"] = _show(path)
    value = report.value(result, SH.value)
    if value is not None:
        entry["value"] = _show(value)
    return entry


def _report_text(results: list[dict[str, str]]) -> str:
    lines = ["Validation Report", "Conforms: False", f"Results ({len(results)}):"]
    for r in results:
        lines.append("Constraint Violation:")
        lines.append(f"\tFocus Node: {r['focusNode']}")
        if "path" in r:
            lines.append(f"\tResult Path: {r['path']}")
        if "value" in r:
            lines.append(f"\tValue Node: {r['value']}")
        lines.append(f"\tMessage: {r['message']}")
    return "\n".join(lines)


def _report_turtle(report: Graph, kept: list[Node]) -> str:
    """The sh:ValidationReport with only the kept results (and their nested details)."""
    graph = Graph()
    bind_prefixes(graph)
    for node in report.subjects(RDF.type, SH.ValidationReport):
        graph.add((node, RDF.type, SH.ValidationReport))
        graph.add((node, SH.conforms, Literal(False)))
        for result in kept:
            graph.add((node, SH.result, result))
    for triple in describe_closure(report, kept):
        graph.add(triple)
    return graph.serialize(format="turtle")


def _show(term: Node | None) -> str:
    if term is None:
        return ""
    if isinstance(term, BNode):
        return "[blank node]"
    return str(term)


@dataclass
class Prepared:
    """A registration checked outside any lock: what ``Registry.write_checked`` needs, and what the
    validation assumed about the rest of the store (re-checked under the lock)."""

    registrant: URIRef
    graph: URIRef
    data: TripleSet
    subjects: list[URIRef]
    context: Graph
    context_rows: frozenset[tuple[Node, Node]]
    also_validated: Graph


class Registry:
    """Registers RDF descriptions into a store, on behalf of registrants.

    A registration costs what its body costs, not what the registrant's graph holds, and holds no lock
    while it parses and validates:

    1. ``prepare`` (no lock): strict parse, named subjects, a first ownership check, and SHACL on the
       body with the context its shapes need — the types of the resources it refers to (and the
       descriptions of those a ``sh:node`` reaches), plus, if it takes a type away from one of its
       resources, the registrant's resources that refer to it;
    2. ``check_preconditions`` (under ``self.lock``, short): ownership re-checked against the store as
       it is now and against registrations in flight, the context re-read (a change re-validates); the
       subjects are then reserved for this registration;
    3. ``write_checked`` (the registrant's own lock only): the descriptions replaced in updates of at most
       ``chunk_triples`` triples (kgsched.registry.writes), so claims, heartbeats and other registrants'
       registrations are not held behind one huge update.

    ``self.lock`` is the registry's, not the store's ``write_lock``: registrations write only
    registrants' graphs, which the job queue's read-modify-writes never write, so the two need not
    wait for each other.
    """

    def __init__(self, store: Store, chunk_triples: int = DEFAULT_CHUNK_TRIPLES, *,
                 protected_agents: Iterable[URIRef] = ()) -> None:
        self.store = store
        self.chunk_triples = chunk_triples
        #: identities no registrant may describe (the administrator): docs/authority.md
        self.protected_agents = frozenset(protected_agents)
        self.lock = threading.Lock()
        self._in_flight: dict[URIRef, URIRef] = {}  # subject -> registrant whose registration writes it
        self._registrant_locks: dict[URIRef, threading.Lock] = {}

    # -- checking ----------------------------------------------------------------------------------
    def parse(self, documents: Iterable[tuple[str, str | bytes]], fmt: str = "turtle") -> TripleSet:
        """Parse (source name, text) pairs into one set; the first syntax error stops everything."""
        merged = TripleSet()
        for source, text in documents:
            for triple in parse_triples(text, fmt=fmt, source=source):
                merged.add(triple)
        if len(merged) == 0:
            raise InvalidRequest("the input holds no triples")
        return merged

    def named_subjects(self, data: TripleSet | Graph) -> list[URIRef]:
        """The IRIs the input describes; every blank node must hang off one of them."""
        subjects = sorted({s for s in data.subjects() if isinstance(s, URIRef)})
        covered = {s for s, _, _ in describe_closure(data, subjects)}
        orphans = {s for s in data.subjects() if isinstance(s, BNode)} - covered
        if orphans:
            sample = next(iter(orphans))
            kinds = ", ".join(sorted(str(o) for o in data.objects(sample, RDF.type))) or "untyped"
            raise InvalidRequest(
                f"a blank node ({kinds}) is not attached to any named resource; give it an IRI so that a "
                "later registration can update it"
            )
        return subjects

    def context_for(self, data: TripleSet | Graph) -> Graph:
        """Types of the resources the data refers to but does not describe, and the descriptions of those
        a ``sh:node`` constraint reaches (kgsched.registry.shapes_context)."""
        described = set(data.subjects())
        referenced = {o for o in data.objects() if isinstance(o, URIRef) and o not in described}
        context = Graph()
        if not referenced:
            return context
        rows = queries.select(self.store, "resource-types", {"x": sorted(referenced)})
        for row in rows:
            context.add((row["x"], RDF.type, row["type"]))
        nested = sorted({o for p in node_shape_predicates() for o in data.objects(None, p)
                         if isinstance(o, URIRef) and o not in described})
        if nested:
            for row in self.store.select("SELECT ?x ?p ?o WHERE {\n# @values\n?x ?p ?o }", {"x": nested}):
                context.add((row["x"], row["p"], row["o"]))
        return context

    def check_identities(self, registrant: URIRef, subjects: list[URIRef]) -> None:
        """Refuse describing another agent's identity: the administrator, a registrant, a token holder."""
        others = [s for s in subjects if s != registrant]
        if not others:
            return
        rows = queries.select(self.store, "agent-identities", {"s": others})
        authority.identity_conflicts(others, registrant, [r["s"] for r in rows] + list(self.protected_agents))

    def check_owners(self, registrant: URIRef, data: TripleSet | Graph) -> None:
        """A runner's ks:ownedBy names the registrant, or an owner that authorises it in its own graph."""
        for runner, owner in sorted((s, o) for s, _, o in data.triples((None, KS.ownedBy, None))):
            if owner == registrant or not isinstance(owner, URIRef):
                continue
            if not queries.ask(self.store, "owner-authorizes", [{"owner": owner, "registrant": registrant}]):
                raise NotEntitled(
                    f"{runner} is ks:ownedBy {owner}, but {registrant} is registering it: a runner is registered by "
                    f"its owner, or by an agent the owner names with ks:authorizes in its own graph "
                    "(docs/authority.md)", extra={"resource": str(runner), "owner": str(owner)})

    def check_ownership(self, registrant: URIRef, subjects: list[URIRef]) -> None:
        """Refuse subjects that any other graph (another registrant, provenance, ontology) describes. A
        registrant may always describe itself (a directory may describe it too)."""
        subjects = [s for s in subjects if s != registrant]
        if not subjects:
            return
        own = registrant_graph(registrant)
        rows = queries.select(self.store, "resource-owners", {"s": subjects})
        for row in rows:
            if row["g"] != own:
                owner = row.get("owner") or ("the ontology" if row["g"] == ONTOLOGY_GRAPH else row["g"])
                raise OwnershipConflict(
                    f"{row['s']} is already described by {owner}; only its owner can change it",
                    extra={"resource": str(row["s"]), "owner": str(owner)},
                )

    def referrers_affected(self, registrant: URIRef, data: TripleSet, subjects: list[URIRef]) -> Graph:
        """Descriptions of the registrant's other resources that refer to a subject whose types the
        registration removes: their sh:class constraints may no longer hold, so they are validated too."""
        graph = registrant_graph(registrant)
        rows = self.store.select("SELECT ?s ?type WHERE {\n# @values\nGRAPH ?g { ?s a ?type } }",
                                 [{"s": s, "g": graph} for s in subjects])
        losing = sorted({row["s"] for row in rows if (row["s"], RDF.type, row["type"]) not in data})
        affected = Graph()
        if not losing:
            return affected
        referrers = {row["r"] for row in self.store.select(
            "SELECT DISTINCT ?r WHERE {\n# @values\nGRAPH ?g { ?r ?p ?s } FILTER(isIRI(?r)) }",
            [{"s": s, "g": graph} for s in losing])} - set(subjects)
        for referrer in sorted(referrers):
            for triple in current_descriptions(self.store, graph, [referrer]):
                affected.add(triple)
        return affected

    def prepare(self, documents: Iterable[tuple[str, str | bytes]], registrant: URIRef,
                fmt: str = "turtle") -> Prepared:
        """Everything that can be checked without a lock (see the class docstring, step 1)."""
        data = self.parse(documents, fmt=fmt)
        authority.check_statements(data, registrant)  # what no registrant may state, from the body alone
        subjects = self.named_subjects(data)
        self.check_identities(registrant, subjects)
        self.check_ownership(registrant, subjects)
        also = self.referrers_affected(registrant, data, subjects)
        validated = _union(data, also)
        context = self.context_for(validated)
        check_shapes(validated, context)
        self.check_owners(registrant, data)
        return Prepared(registrant, registrant_graph(registrant), data, subjects, context,
                        _type_rows(context), also)

    def check_preconditions(self, prepared: Prepared) -> None:
        """THE place where a registration's preconditions are re-checked against the store as it is now.

        Runs under ``self.lock``, after validation and right before the write (no other registration
        can pass this point meanwhile). Checks that depend on the rest of the store — ownership, and
        any authority rule (reserved namespaces, forbidden system types, who may describe what) —
        belong here, so that a registration validated against an older snapshot cannot slip through.
        (The statement rules of kgsched.registry.authority depend on the body alone: ``prepare`` applied
        them; identities and owners' authorisations depend on the store, so they are read again here.)"""
        for subject in prepared.subjects:
            holder = self._in_flight.get(subject)
            if holder is not None and holder != prepared.registrant:
                raise OwnershipConflict(f"{subject} is being registered by {holder}; only its owner can change it",
                                        extra={"resource": str(subject), "owner": str(holder)})
        self.check_identities(prepared.registrant, prepared.subjects)
        self.check_ownership(prepared.registrant, prepared.subjects)
        self.check_owners(prepared.registrant, prepared.data)
        context = self.context_for(_union(prepared.data, prepared.also_validated))
        if _type_rows(context) != prepared.context_rows:  # what it refers to changed meanwhile
            check_shapes(_union(prepared.data, prepared.also_validated), context)

    def check(self, documents: Iterable[tuple[str, str | bytes]], registrant: URIRef,
              fmt: str = "turtle") -> tuple[Graph, list[URIRef]]:
        """Everything registration checks, without writing: returns the data and the resources named."""
        prepared = self.prepare(documents, registrant, fmt=fmt)
        with self.lock:
            self.check_preconditions(prepared)
        return prepared.data, prepared.subjects

    # -- writing -----------------------------------------------------------------------------------
    def _registrant_lock(self, registrant: URIRef) -> threading.Lock:
        with self.lock:
            return self._registrant_locks.setdefault(registrant, threading.Lock())

    def register(self, documents: Iterable[tuple[str, str | bytes]], registrant: URIRef,
                 fmt: str = "turtle") -> RegistrationResult:
        """Check without a lock, re-check the preconditions under ``self.lock``, then write."""
        documents = list(documents)
        with self._registrant_lock(registrant):  # one registration at a time per registrant
            prepared = self.prepare(documents, registrant, fmt=fmt)
            with self.lock:
                self.check_preconditions(prepared)
                for subject in prepared.subjects:
                    self._in_flight[subject] = registrant
            try:
                self.write_checked(prepared)
                self.store.update(revoke_removed_runner_tokens(prepared.graph) + " ;\n" + bump_update())
            finally:
                with self.lock:
                    for subject in prepared.subjects:
                        if self._in_flight.get(subject) == registrant:
                            del self._in_flight[subject]
        return RegistrationResult(registrant, prepared.graph, prepared.subjects, len(prepared.data))

    def write_checked(self, prepared: Prepared) -> None:
        """Replace the subjects' descriptions in the registrant's graph (kgsched.registry.writes)."""
        groups = description_groups(prepared.data, prepared.subjects, self.chunk_triples)
        marker = [(prepared.graph, KS.registeredBy, prepared.registrant)]
        if len(groups) == 1:
            replace_descriptions(self.store, prepared.graph, prepared.subjects, groups[0][1], marker)
            return
        existing = set(described_roots(self.store, prepared.graph, prepared.subjects))
        depth = blank_depth(self.store, prepared.graph, sorted(existing))
        before = current_descriptions(self.store, prepared.graph, sorted(existing))
        written: list[list[URIRef]] = []
        try:
            for index, (roots, triples) in enumerate(groups):
                replace_descriptions(self.store, prepared.graph, [r for r in roots if r in existing], triples,
                                     marker if index == 0 else (), depth=depth)
                written.append(roots)
        except Exception:
            for roots in written:  # undo: the previous descriptions back
                previous = describe_closure(before, roots)
                replace_descriptions(self.store, prepared.graph, roots, previous)
            raise

    def registered(self, registrant: URIRef) -> Graph:
        graph = self.store.graph(registrant_graph(registrant))
        bind_prefixes(graph)
        return graph

    def unregister(self, registrant: URIRef) -> int:
        """Remove the registrant's whole graph; returns how many triples went."""
        graph_iri = registrant_graph(registrant)
        with self._registrant_lock(registrant):
            count = len(self.store.graph(graph_iri))
            drop = f"DROP SILENT GRAPH <{check_iri(graph_iri)}> ;\n"
            self.store.update(drop + revoke_removed_runner_tokens(graph_iri) + " ;\n" + bump_update())
        return count


def revoke_removed_runner_tokens(graph_iri: URIRef) -> str:
    """An update deleting every runner token issued under the registrant graph for a runner that graph no
    longer holds (no ks:ownedBy there). Authentication already refuses such a token on the next request
    (queries/token-lookup.rq joins the graph); this removes its record, so a runner registered again
    under the same IRI does not revive it."""
    graph_iri = check_iri(graph_iri)
    return (f"DELETE {{ GRAPH <{TOKENS_GRAPH}> {{ ?token ?p ?o }} }}\n"
            f"WHERE {{ GRAPH <{TOKENS_GRAPH}> {{ ?token <{KS.issuedUnder}> <{graph_iri}> ; <{KS.tokenFor}> ?runner ;"
            f" ?p ?o }}\n  FILTER NOT EXISTS {{ GRAPH <{graph_iri}> {{ ?runner <{KS.ownedBy}> ?owner }} }} }}")


def _type_rows(context: Graph) -> frozenset[tuple[Node, Node]]:
    return frozenset((s, o) for s, _, o in context.triples((None, RDF.type, None)))


def _union(first: TripleSet, second: Graph) -> TripleSet:
    if not len(second):
        return first
    union = TripleSet(first)
    for triple in second:
        union.add(triple)
    return union


def check_shapes(data: TripleSet, context: Graph) -> None:
    """Raise ShapeViolation unless the resources ``data`` describes conform to the shapes.

    The compiled shapes (kgsched.registry.shapes_check) decide; when they find violations, pySHACL
    validates the offending resources (with the rest as context) so the report is pySHACL's, as before.
    Without compiled shapes (a shapes file using SHACL beyond them) pySHACL validates everything."""
    shapes = compiled_shapes()
    if shapes is None:
        validate_graph(data.to_graph(), context).raise_if_violated()
        return
    index = Index([data.spo, spo_index(context), ontology_index()])
    found = list(violations(index, data.subjects(), shapes))
    if not found:
        return
    offenders = sorted({v.focus for v in found}, key=str)
    subset = Graph()
    bind_prefixes(subset)
    for triple in describe_closure(data, offenders):
        subset.add(triple)
    around = Graph()
    for triple in context:
        around.add(triple)
    for triple in data:  # the other resources, as context: what sh:class and sh:node read of them
        if triple not in subset:
            around.add(triple)
    outcome = validate_graph(subset, around)
    if outcome.conforms:  # pySHACL disagrees: refuse anyway, with the compiled shapes' findings
        results = [{"focusNode": str(v.focus), "message": v.message or "violates a shape", "shape": "",
                    **({"path": str(v.path)} if v.path is not None else {})} for v in found]
        outcome = ValidationOutcome(False, _report_text(results), "", results)
    outcome.raise_if_violated()


@functools.cache
def node_shape_predicates() -> frozenset[URIRef]:
    """Predicates whose property shapes have ``sh:node``: their IRI values' descriptions are context."""
    shapes = resources.shapes_graph()
    return frozenset(path for shape in shapes.subjects(SH.node, None)
                     if isinstance(path := shapes.value(shape, SH.path), URIRef))


def load_ontology(store: Store) -> int:
    """Put the ontology (with its resolved imports) into its own named graph; idempotent."""
    graph = resources.ontology_graph()
    with store.write_lock:
        store.replace_graph(ONTOLOGY_GRAPH, graph)
    return len(graph)
