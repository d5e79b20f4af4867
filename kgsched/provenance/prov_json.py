"""A product's provenance as W3C PROV-JSON, written with the ``prov`` package (PROV-DM).

kgsched already speaks PROV-O; this maps it onto PROV-DM records: products, datasets, expressions
and workflows are entities (workflows typed ``prov:Plan``), executions are activities associated with
their runner (a ``prov:SoftwareAgent``) under their workflow as the plan, runners act on behalf of
their owners, datasets are attributed to their providers and workflows to their authors, and every
product was derived from the inputs its execution used. kgsched's own facts (sizes, checksums,
outcomes, content addresses, arguments) ride along as ``ks:`` attributes.
"""

from __future__ import annotations

from rdflib import URIRef

from kgsched.namespaces import FOAF, KS, KSID, ORG
from kgsched.provenance.export import Lineage

_ORGANIZATIONS = {FOAF.Organization, ORG.Organization, ORG.OrganizationalUnit, FOAF.Group}


class _Names:
    """Qualified names for IRIs: kgsched's namespaces by prefix, any other IRI under a generated one."""

    def __init__(self, document) -> None:
        self.document = document
        self.namespaces: dict[str, object] = {}
        for prefix, iri in (("ksid", str(KSID)), ("ks", str(KS)), ("foaf", str(FOAF))):
            self.namespaces[iri] = document.add_namespace(prefix, iri)

    def __call__(self, iri: URIRef | str):
        text = str(iri)
        for base in sorted(self.namespaces, key=len, reverse=True):
            if text.startswith(base) and len(text) > len(base):
                return self.namespaces[base][text[len(base):]]  # type: ignore[index]
        cut = max(text.rfind("/"), text.rfind("#"), text.rfind(":")) + 1
        base = text[:cut] if 0 < cut < len(text) else text + "#"
        if base not in self.namespaces:
            self.namespaces[base] = self.document.add_namespace(f"ns{len(self.namespaces) - 2}", base)
        return self.namespaces[base][text[len(base):]]  # type: ignore[index]


def to_prov_document(lineage: Lineage):
    """The lineage as a ``prov.model.ProvDocument``."""
    from prov.constants import PROV, PROV_LABEL, PROV_TYPE
    from prov.model import ProvDocument

    document = ProvDocument()
    q = _Names(document)
    ks = document.add_namespace("ks", str(KS))

    for workflow in lineage.workflows.values():
        attributes = {PROV_TYPE: PROV["Plan"], PROV_LABEL: workflow.label}
        if workflow.version:
            attributes[ks["version"]] = workflow.version
        if workflow.implementation:
            attributes[ks["implementation"]] = workflow.implementation
        if workflow.kind is not None:
            attributes[ks["implementationKind"]] = q(workflow.kind)
        document.entity(q(workflow.iri), attributes)
    for agent in lineage.agents.values():
        kind = PROV["Person"] if FOAF.Person in agent.kinds else (
            PROV["Organization"] if agent.kinds & _ORGANIZATIONS else None)
        attributes = {PROV_LABEL: agent.name}
        if kind is not None:
            attributes[PROV_TYPE] = kind
        document.agent(q(agent.iri), attributes)
    for workflow in lineage.workflows.values():
        for author in workflow.authors:
            document.wasAttributedTo(q(workflow.iri), q(author))
    for runner in lineage.runners.values():
        document.agent(q(runner.iri), {PROV_TYPE: PROV["SoftwareAgent"], PROV_LABEL: runner.label})
        if runner.owner is not None:
            document.actedOnBehalfOf(q(runner.iri), q(runner.owner))

    for entity in lineage.entities.values():
        attributes = {PROV_TYPE: ks["DataProduct" if entity.kind == "product" else "Dataset"],
                      PROV_LABEL: entity.label}
        for name, value in (("sizeBytes", entity.size_bytes), ("checksum", entity.checksum),
                            ("location", entity.location)):
            if value is not None:
                attributes[ks[name]] = value
        if entity.outcome is not None:
            attributes[ks["outcome"]] = q(entity.outcome)
        if entity.expression is not None:
            attributes[ks["valueOf"]] = q(entity.expression)
        document.entity(q(entity.iri), attributes)
        for provider in entity.providers:
            document.wasAttributedTo(q(entity.iri), q(provider))

    for execution in lineage.executions:
        if execution.expression is not None:
            expression = [(PROV_TYPE, ks["Expression"])]
            if execution.workflow is not None:
                expression.append((ks["workflow"], q(execution.workflow)))
            for argument in execution.arguments:  # name=value, or name=<IRI> of the dataset or expression
                shown = str(argument.value) if argument.kind == "literal" else f"<{argument.value}>"
                expression.append((ks["argument"], f"{argument.name}={shown}"))
            document.entity(q(execution.expression), expression)
        attributes = {PROV_LABEL: execution.label}
        if execution.duration_seconds is not None:
            attributes[ks["durationSeconds"]] = execution.duration_seconds
        if execution.outcome is not None:
            attributes[ks["outcome"]] = q(execution.outcome)
        if execution.expression is not None:
            attributes[ks["computes"]] = q(execution.expression)
        activity = document.activity(q(execution.iri), execution.started, execution.ended, attributes)
        if execution.runner is not None:
            document.wasAssociatedWith(activity, q(execution.runner),
                                       q(execution.workflow) if execution.workflow is not None else None)
        for used in execution.used:
            document.used(activity, q(used))
        for generated in execution.generated:
            made = lineage.entities.get(generated)
            document.wasGeneratedBy(q(generated), activity, made.generated_at if made else execution.ended)
            for used in execution.used:
                document.wasDerivedFrom(q(generated), q(used), activity)
    return document


def to_prov_json(lineage: Lineage) -> str:
    return to_prov_document(lineage).serialize(format="json", indent=2)
