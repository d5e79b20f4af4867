"""The example federation, split by who may state each part (docs/authority.md).

A federation's Turtle is written by many parties: people describe themselves (and confirm the groups
they belong to), owners register their runners, verifiers state their verifications, the
administrator registers sites, datasets and workflows. The examples keep them in a few readable
files; this splits them into one registration per party, so the demo and the tests register each
part as the party entitled to state it — exactly what those parties would post themselves.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from rdflib import Graph, URIRef
from rdflib.namespace import DCTERMS, FOAF, ORG, RDF

from kgsched.descriptions import describe_closure
from kgsched.graph.rdfio import parse_rdf
from kgsched.namespaces import KS, bind_prefixes

FED = "https://example.org/fed/"
#: Registers what no other party speaks for: sites, storage, links, datasets, workflows.
ADMIN_REGISTRANT = URIRef(FED + "admin")

SELF_DESCRIBING = (FOAF.Person, FOAF.Group, FOAF.Organization, ORG.Organization, FOAF.Agent)
RUNNER_CLASSES = (KS.Runner, KS.AnonymousJobTokenRunner, KS.JobRunner, KS.SessionRunner, KS.UserRunner,
                  KS.GroupRunner)


def party_of(graph: Graph, subject: URIRef, admin: URIRef = ADMIN_REGISTRANT) -> URIRef:
    """Who registers ``subject``: an agent itself, a runner's owner, a verification's verifier, else
    the administrator."""
    types = set(graph.objects(subject, RDF.type))
    if types & set(SELF_DESCRIBING):
        return subject
    if types & set(RUNNER_CLASSES):
        owner = graph.value(subject, KS.ownedBy)
        return owner if isinstance(owner, URIRef) else admin
    if KS.WorkflowVerification in types:
        creator = graph.value(subject, DCTERMS.creator)
        return creator if isinstance(creator, URIRef) else admin
    return admin


def party_registrations(documents: Iterable[tuple[str, bytes]],
                        admin: URIRef = ADMIN_REGISTRANT) -> list[tuple[URIRef, bytes]]:
    """(registrant, Turtle) pairs, in an order that registers agents first, then the administrator's
    part (sites, datasets, workflows), then owners' runners and verifiers' verifications — each part
    refers only to what is registered before it."""
    merged = Graph()
    for source, text in documents:
        merged += parse_rdf(text, source=source)
    # Phases: people describe themselves, then groups and organisations (they list people); then the
    # administrator's part (it refers to agents); then runners and verifications (they refer to sites,
    # datasets and workflows), each by its party.
    parts: dict[tuple[int, URIRef], Graph] = {}
    for subject in sorted({s for s in merged.subjects() if isinstance(s, URIRef)}):
        party = party_of(merged, subject, admin)
        if party == subject:
            phase = 0 if (subject, RDF.type, FOAF.Person) in merged else 1  # groups list registered people
        else:
            phase = 2 if party == admin else 3
        part = parts.setdefault((phase, party), Graph())
        for triple in describe_closure(merged, [subject]):
            part.add(triple)
    registrations = []
    for (_, party), part in sorted(parts.items(), key=lambda item: (item[0][0], str(item[0][1]))):
        bind_prefixes(part)
        registrations.append((party, part.serialize(format="turtle").encode()))
    return registrations


def example_files(examples: Path) -> list[tuple[str, bytes]]:
    """The example federation's Turtle files (not the invalid ones, not the requests)."""
    return [(p.name, p.read_bytes()) for p in sorted(examples.glob("*.ttl"))]
