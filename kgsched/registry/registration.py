"""Registration: Turtle in, SHACL-checked, written into the registrant's own named graph in one update.

Each registrant owns one named graph. A registration replaces the registrant's description of the
resources it names (their triples and the blank nodes hanging off them) and leaves the rest of the
registrant's graph alone. Nothing is written unless the whole input parses, conforms to the shapes
(checked on the registrant's graph as it would be after the change, with the ontology and the types
of everything it refers to) and names only resources the registrant owns or that are new.
"""

from __future__ import annotations

import hashlib
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
from kgsched.graph.rdfio import parse_rdf
from kgsched.graph.store import Store, insert_data
from kgsched.namespaces import KS, ONTOLOGY_GRAPH, REGISTRANT_GRAPH_BASE, bind_prefixes
from kgsched.registry import authority
from kgsched.registry.tokens import TOKENS_GRAPH


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


class Registry:
    """Registers RDF descriptions into a store, on behalf of registrants.

    ``protected_agents`` (the administrator) are identities no registrant may describe."""

    def __init__(self, store: Store, protected_agents: Iterable[URIRef] = ()) -> None:
        self.store = store
        self.protected_agents = frozenset(protected_agents)

    # -- checking ----------------------------------------------------------------------------------
    def parse(self, documents: Iterable[tuple[str, str | bytes]], fmt: str = "turtle") -> Graph:
        """Parse (source name, text) pairs into one graph; the first syntax error stops everything."""
        merged = Graph()
        bind_prefixes(merged)
        for source, text in documents:
            for triple in parse_rdf(text, fmt=fmt, source=source):
                merged.add(triple)
        if len(merged) == 0:
            raise InvalidRequest("the input holds no triples")
        return merged

    def named_subjects(self, data: Graph) -> list[URIRef]:
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

    def context_for(self, data: Graph) -> Graph:
        """Types (and superclass-relevant facts) of resources the data refers to but does not describe."""
        described = set(data.subjects())
        referenced = {o for o in data.objects() if isinstance(o, URIRef) and o not in described}
        context = Graph()
        if not referenced:
            return context
        rows = queries.select(self.store, "resource-types", {"x": sorted(referenced)})
        for row in rows:
            context.add((row["x"], RDF.type, row["type"]))
        return context

    def check_identities(self, registrant: URIRef, subjects: list[URIRef]) -> None:
        """Refuse describing another agent's identity: the administrator, a registrant, a token holder."""
        others = [s for s in subjects if s != registrant]
        if not others:
            return
        rows = queries.select(self.store, "agent-identities", {"s": others})
        authority.identity_conflicts(others, registrant, [r["s"] for r in rows] + list(self.protected_agents))

    def check_owners(self, registrant: URIRef, data: Graph) -> None:
        """A runner's ks:ownedBy names the registrant, or an owner that authorises it in its own graph."""
        for runner, owner in sorted(data.subject_objects(KS.ownedBy)):
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

    def check(self, documents: Iterable[tuple[str, str | bytes]], registrant: URIRef,
              fmt: str = "turtle") -> tuple[Graph, list[URIRef]]:
        """Everything registration checks, without writing: returns the registrant's graph as it
        would become, and the resources named."""
        data = self.parse(documents, fmt=fmt)
        authority.check_statements(data, registrant)
        subjects = self.named_subjects(data)
        self.check_identities(registrant, subjects)
        self.check_ownership(registrant, subjects)
        current = self.store.graph(registrant_graph(registrant))
        new_graph = Graph()
        bind_prefixes(new_graph)
        stale = describe_closure(current, subjects)
        for triple in current:
            if triple not in stale and triple[0] != registrant_graph(registrant):
                new_graph.add(triple)
        for triple in data:
            new_graph.add(triple)
        validate_graph(new_graph, self.context_for(new_graph)).raise_if_violated()
        self.check_owners(registrant, data)
        return new_graph, subjects

    # -- writing -----------------------------------------------------------------------------------
    def register(self, documents: Iterable[tuple[str, str | bytes]], registrant: URIRef,
                 fmt: str = "turtle") -> RegistrationResult:
        """Check, then replace the registrant's graph in one update (under the store's write lock,
        so a concurrent registration cannot slip between the ownership check and the write)."""
        documents = list(documents)
        with self.store.write_lock:
            new_graph, subjects = self.check(documents, registrant, fmt=fmt)
            graph_iri = registrant_graph(registrant)
            new_graph.add((graph_iri, KS.registeredBy, registrant))
            self.store.update(_replace_and_revoke(graph_iri, new_graph))
        return RegistrationResult(registrant, graph_iri, subjects, len(new_graph))

    def registered(self, registrant: URIRef) -> Graph:
        graph = self.store.graph(registrant_graph(registrant))
        bind_prefixes(graph)
        return graph

    def unregister(self, registrant: URIRef) -> int:
        """Remove the registrant's whole graph; returns how many triples went."""
        graph_iri = registrant_graph(registrant)
        with self.store.write_lock:
            count = len(self.store.graph(graph_iri))
            self.store.update(_replace_and_revoke(graph_iri, Graph()))
        return count


def _replace_and_revoke(graph_iri: URIRef, data: Graph) -> str:
    """One update: the registrant's graph becomes ``data`` (dropped when empty), and every runner token
    issued under that graph for a runner it no longer holds (no ks:ownedBy there) is deleted — a runner removed from its
    registration loses its tokens at once, and a re-used IRI never inherits them."""
    graph_iri = check_iri(graph_iri)
    update = f"DROP SILENT GRAPH <{graph_iri}> ;\n"
    if len(data):
        update += insert_data(graph_iri, data) + " ;\n"
    return update + (
        f"DELETE {{ GRAPH <{TOKENS_GRAPH}> {{ ?token ?p ?o }} }}\n"
        f"WHERE {{ GRAPH <{TOKENS_GRAPH}> {{ ?token <{KS.issuedUnder}> <{graph_iri}> ; <{KS.tokenFor}> ?runner ;"
        f" ?p ?o }}\n  FILTER NOT EXISTS {{ GRAPH <{graph_iri}> {{ ?runner <{KS.ownedBy}> ?owner }} }} }}"
    )


def load_ontology(store: Store) -> int:
    """Put the ontology (with its resolved imports) into its own named graph; idempotent."""
    graph = resources.ontology_graph()
    with store.write_lock:
        store.replace_graph(ONTOLOGY_GRAPH, graph)
    return len(graph)
