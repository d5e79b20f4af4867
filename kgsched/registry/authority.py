"""Who may say what: the authority of every statement a registration may carry.

A fact counts only when the party entitled to state it stated it (docs/authority.md has the table
in prose). A registrant speaks for itself and for what it owns, in its own named graph:

* **own** — a statement about a resource the registrant describes (its subject). Registration
  already guarantees that a subject is described in one registrant graph only, so such a statement
  is the owner's whatever graph a query finds it in.
* **confirmed** — a statement about the registrant's resource that involves another party, and
  that counts only when that party confirms it in its own graph: a runner's ``ks:ownedBy`` (the owner
  registered it, or ``owner ks:authorizes registrant``), a group's ``foaf:member`` (the member states
  ``org:memberOf`` the group), a runner's ``ks:holds``/``ks:canRead`` of a compute-to-data dataset (the
  dataset's registrant states ``ks:accessGrantedTo`` the runner). The queries that decide read the
  confirmation from the confirming party's graph.
* **service** — products, executions, claims, jobs, plans, statistics, credit entries, tokens and
  the derived ``ks:verifiedBy``: written only by the service into its own graphs. A registration that
  carries one is refused (403) with a message naming it, before anything else is checked.

A verification is its verifier's own resource (``ks:WorkflowVerification`` in the verifier's graph,
pinned to the workflow's IRI, version, implementation kind and implementation), never a property a
workflow's registrant sets.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from rdflib import Graph, URIRef
from rdflib.namespace import DCTERMS, FOAF, ORG, OWL, PROV, RDF, RDFS

from kgsched.errors import NotEntitled
from kgsched.namespaces import KS, KSG, KSID, KSS

Who = Literal["own", "confirmed", "service"]


@dataclass(frozen=True)
class Rule:
    """Who may assert a predicate, and (for ``confirmed``) whose confirmation makes it count."""

    who: Who
    note: str = ""


OWN = Rule("own")
SERVICE = Rule("service", "recorded by the service")

#: Every predicate of the vocabulary, by who may assert it. A ks: predicate missing here is refused.
PREDICATES: dict[URIRef, Rule] = {
    # workflows (their registrant: the publisher)
    **dict.fromkeys([KS.version, KS.parameter, KS.name, KS.parameterType, KS.optional, KS.defaultValue, KS.processInput,
                     KS.implementationKind, KS.implementation, KS.environment, KS.estimatedDurationSeconds,
                     KS.estimatedOutputBytes, KS.requiresCores, KS.requiresMemoryBytes], OWN),
    KS.author: Rule("own", "the publisher's attribution; the named authors earn authorship credit"),
    KS.verifiedBy: Rule("service", "derived from ks:WorkflowVerification statements in verifiers' own graphs"),
    # verifications (their registrant: the verifier)
    **dict.fromkeys([KS.verifiedWorkflow, KS.verifiedVersion, KS.verifiedImplementationKind,
                     KS.verifiedImplementation], Rule("own", "the verifier, in its own graph")),
    # datasets (their registrant: the provider's representative)
    **dict.fromkeys([KS.heldAt, KS.neverLeavesSite, KS.sizeBytes, KS.checksum, KS.storedAt, KS.location], OWN),
    KS.providedBy: Rule("own", "the dataset's registrant names the provider, who earns data credit"),
    KS.accessGrantedTo: Rule("own", "the dataset's registrant grants a runner access (compute-to-data)"),
    # sites, links, storage
    **dict.fromkeys([KS.fromSite, KS.toSite, KS.bandwidthBytesPerSecond, KS.atSite, KS.capacityBytes, KS.layer,
                     KS.baseUrl, KS.directory, KS.s3Endpoint, KS.bucket, KS.keyPrefix], OWN),
    # runners (their registrant: the owner, or an agent the owner authorises)
    **dict.fromkeys([KS.cores, KS.memoryBytes, KS.storageBytes, KS.supports, KS.usesStorage, KS.trusts,
                     KS.serves, KS.productEndpoint, KS.endpoint, KS.offersWorkflow], OWN),
    KS.ownedBy: Rule("confirmed", "counts when the owner registered the runner or states ks:authorizes"),
    KS.holds: Rule("confirmed", "for a compute-to-data dataset, counts when its registrant grants access"),
    KS.canRead: Rule("confirmed", "for a compute-to-data dataset, counts when its registrant grants access"),
    KS.authorizes: Rule("own", "an agent, about itself, in its own graph"),
    # agents
    FOAF.member: Rule("confirmed", "counts when the member states org:memberOf the group in its own graph"),
    ORG.memberOf: Rule("own", "an agent confirming its membership, in its own graph"),
    # everything the service records
    **dict.fromkeys([
        KS.registeredBy, KS.queuedJobs,
        KS.workflow, KS.argument, KS.value, KS.dataset, KS.expression, KS.contentAddress, KS.requestedBy,
        KS.rootExpression,
        KS.valueOf, KS.outcome, KS.expires, KS.computes, KS.durationSeconds, KS.errorMessage, KS.executedNotebook,
        KS.runner, KS.runs, KS.meanDurationSeconds, KS.meanOutputBytes,
        KS.offeredBy, KS.forExpression, KS.offeredCores, KS.offeredMemoryBytes, KS.bytesToMove,
        KS.estimatedFinishSeconds, KS.forRequest, KS.step, KS.decision, KS.chosenRunner, KS.reusedProduct,
        KS.consideredOffer, KS.estimatedCostSeconds, KS.reason,
        KS.state, KS.fromPlan, KS.eligibleRunner, KS.dependsOn, KS.maxAttempts, KS.claimOf, KS.claimedBy,
        KS.claimedWith, KS.claimTokenHash, KS.claimedAt, KS.leaseUntil, KS.progress, KS.reportedOutcome,
        KS.reportDigest, KS.released, KS.heldUntil, KS.excludedRunner, KS.forJob, KS.refusalReason, KS.lastContact,
        KS.tokenHash, KS.tokenFor, KS.issuedBy, KS.oneJob, KS.issuedUnder, KS.registryGeneration,
        KS.creditedTo, KS.amount, KS.creditReason, KS.forExecution, KS.forProduct,
        KS.replicaOf, KS.replicaStatus, KS.servedBy, KS.statusReason, KS.statusReportedBy, KS.statusChangedAt,
    ], SERVICE),
}

#: Classes a registrant may give its resources (and their subclasses in the ontology).
REGISTRABLE_CLASSES = frozenset({
    KS.Workflow, KS.Parameter, KS.WorkflowVerification, KS.Dataset, KS.Site, KS.NetworkLink, KS.Storage,
    KS.Runner, KS.AnonymousJobTokenRunner, KS.JobRunner, KS.SessionRunner, KS.UserRunner, KS.GroupRunner,
    KS.ServiceRunner,
})

#: PROV terms a registrant may use about its own resources (a dataset's origin, say). The rest —
#: generation, association, use, times — describe executions, which only the service records.
REGISTRABLE_PROV = frozenset({PROV.wasDerivedFrom, PROV.wasAttributedTo, PROV.hadPrimarySource,
                              PROV.wasQuotedFrom, PROV.wasRevisionOf, PROV.Agent, PROV.Person,
                              PROV.Organization, PROV.SoftwareAgent, PROV.Entity, PROV.Location})

#: Statements about the vocabulary itself: the ontology's, never a registrant's (a subclass of
#: ks:Runner or ks:DataProduct would change what every query means).
SCHEMA_PREDICATES = frozenset({RDFS.subClassOf, RDFS.subPropertyOf, RDFS.domain, RDFS.range,
                               OWL.equivalentClass, OWL.equivalentProperty, OWL.sameAs, OWL.inverseOf})

#: Namespaces no registrant may use as subjects: the vocabulary, the shapes, the service's graphs and
#: everything the service mints (expressions, products, executions, plans, jobs, tokens, credits).
RESERVED_NAMESPACES = (str(KS), str(KSS), str(KSG), str(KSID))


def _refuse(detail: str, subject: URIRef | None = None, predicate: URIRef | None = None) -> NotEntitled:
    extra = {}
    if subject is not None:
        extra["resource"] = str(subject)
    if predicate is not None:
        extra["predicate"] = str(predicate)
    return NotEntitled(detail + " (docs/authority.md)", extra=extra)


def check_statements(data: Graph | Any, registrant: URIRef) -> None:
    """Refuse (403) anything in the registration that the registrant is not entitled to state, looking
    at the statements alone: reserved subjects, system classes, service-only or schema predicates.
    ``data`` is an rdflib graph or the registry's triple set (iteration and ``triples`` patterns)."""
    for subject in sorted({s for s, _, _ in data if isinstance(s, URIRef)}):
        if str(subject).startswith(RESERVED_NAMESPACES):
            raise _refuse(f"{subject} is in a namespace kgsched reserves for the vocabulary and what the service "
                          "records; describe your own IRIs", subject)
    for s, p, o in sorted(data, key=lambda t: (str(t[0]), str(t[1]), str(t[2]))):
        if p == RDF.type:
            _check_class(s, o)
            continue
        if p in SCHEMA_PREDICATES or str(p).startswith(str(OWL)):
            raise _refuse(f"{_show(p)} describes the vocabulary, which only the ontology defines", s, p)
        if str(p).startswith(str(PROV)) and p not in REGISTRABLE_PROV:
            raise _refuse(f"{_show(p)} describes an execution, which only the service records", s, p)
        if str(p).startswith(str(KS)):
            rule = PREDICATES.get(p)
            if rule is None:
                raise _refuse(f"{_show(p)} is not a term a registration may use", s, p)
            if rule.who == "service":
                if p == KS.verifiedBy:
                    raise _refuse(f"{s} states ks:verifiedBy {o}: a verification counts only when the verifier "
                                  "states it, as a ks:WorkflowVerification in the verifier's own graph", s, p)
                raise _refuse(f"{_show(p)} is {rule.note or 'recorded by the service'}; a registration may not "
                              "state it", s, p)
    for verification, _, _ in data.triples((None, RDF.type, KS.WorkflowVerification)):
        creator = next((o for _, _, o in data.triples((verification, DCTERMS.creator, None))), None)
        if creator is not None and creator != registrant:
            raise _refuse(f"{verification} names {creator} as its verifier, but {registrant} is registering it: "
                          "a verification is stated by the verifier, in its own graph", verification)


def _check_class(subject: URIRef, cls: object) -> None:
    if not isinstance(cls, URIRef):
        return
    if str(cls).startswith(str(KS)) and cls not in REGISTRABLE_CLASSES:
        raise _refuse(f"{subject} is typed {_show(cls)}, which only the service records (or no registration "
                      "may declare)", subject, RDF.type)
    if str(cls).startswith(str(PROV)) and cls not in REGISTRABLE_PROV:
        raise _refuse(f"{subject} is typed {_show(cls)}, which only the service records", subject, RDF.type)


def identity_conflicts(subjects: Iterable[URIRef], registrant: URIRef, identities: Iterable[URIRef]) -> None:
    """Refuse describing another agent's identity: the administrator, a registrant, a token holder."""
    taken = set(identities)
    for subject in subjects:
        if subject != registrant and subject in taken:
            raise _refuse(f"{subject} is the identity of another agent (the administrator, a registrant or a token "
                          "holder); only that agent may describe itself", subject)


def _show(term: object) -> str:
    text = str(term)
    for prefix, namespace in (("ks:", KS), ("prov:", PROV), ("owl:", OWL), ("rdfs:", RDFS)):
        if text.startswith(str(namespace)):
            return prefix + text[len(str(namespace)):]
    return text
