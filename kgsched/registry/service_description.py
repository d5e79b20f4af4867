"""Turtle for a remote OGC API – Processes service, drafted from its process descriptions, for review.

``kgsched register-service URL`` calls this: it reads what the service says about its processes and
writes the ks:ServiceRunner and one ks:WebService workflow per process, with each process input as a
parameter (``ks:processInput`` keeps the remote id when it is not a valid parameter name). It is a
convenience: the owner reviews the draft — who verified the workflows, the capacity, whom the service
serves — and registers it like any Turtle (registration stays Turtle, checked by the shapes).

Input types map from the JSON schema: integer → xsd:integer, number → xsd:decimal, boolean →
xsd:boolean, string → xsd:string; an object, array or binary input is data (ks:DatasetValue: a
dataset or an upstream product, sent inline).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from rdflib import Literal, URIRef
from rdflib.namespace import XSD

from kgsched.namespaces import KS

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SCALAR_TYPES = {"integer": "xsd:integer", "number": "xsd:decimal", "boolean": "xsd:boolean", "string": "xsd:string"}


@dataclass(frozen=True)
class ServiceDraft:
    endpoint: str
    service: str  # IRI of the service runner
    owner: str
    site: str
    workflow_base: str  # workflow IRIs are this + the process id
    storage: str | None = None
    verifier: str | None = None
    cores: int = 2
    memory_bytes: int = 4_000_000_000


def parameter_name(input_id: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", input_id)
    return name if _NAME.match(name) else f"p_{name}"


def parameter_type(schema: Any) -> str:
    if not isinstance(schema, dict):
        return "ks:DatasetValue"
    kind = schema.get("type")
    if kind in _SCALAR_TYPES and not schema.get("contentMediaType") and schema.get("format") != "binary":
        return _SCALAR_TYPES[kind]
    return "ks:DatasetValue"


def text(value: Any) -> str:
    """A Turtle string literal (escaped by rdflib)."""
    if isinstance(value, dict):  # i18n strings: {"en": ...}
        value = value.get("en") or next(iter(value.values()), "")
    return Literal(str(value)).n3()


def iri(value: str) -> str:
    return URIRef(value).n3()


def default_literal(schema: dict[str, Any], kind: str) -> str | None:
    if "default" not in schema or kind == "ks:DatasetValue":
        return None
    datatype = {"xsd:integer": XSD.integer, "xsd:decimal": XSD.decimal, "xsd:boolean": XSD.boolean}.get(kind)
    return Literal(schema["default"], datatype=datatype).n3() if datatype else text(schema["default"])


def workflow_turtle(draft: ServiceDraft, description: dict[str, Any]) -> str:
    process = str(description.get("id"))
    inputs = description.get("inputs", {})
    if isinstance(inputs, list):
        inputs = {i.get("id"): i for i in inputs if isinstance(i, dict)}
    lines = [f"{iri(draft.workflow_base + process)} a ks:Workflow ;",
             f"    rdfs:label {text(description.get('title') or process)} ;"]
    if description.get("description"):
        lines.append(f"    rdfs:comment {text(description['description'])} ;")
    lines += [f"    ks:version {text(description.get('version') or '1.0.0')} ;",
              "    ks:implementationKind ks:WebService ;",
              f"    ks:implementation {text(process)} ;  # the process id at the service",
              f"    ks:author {iri(draft.owner)} ;  # the service's owner; change it if someone else wrote the process"]
    lines.append("    ks:requiresCores 1 ;")
    parameters = []
    for input_id, spec in sorted(inputs.items()):
        spec = spec if isinstance(spec, dict) else {}
        schema = spec.get("schema", {})
        kind = parameter_type(schema)
        name = parameter_name(input_id)
        parts = [f"ks:name {text(name)}", f"ks:parameterType {kind}"]
        if name != input_id:
            parts.append(f"ks:processInput {text(input_id)}")
        optional = int(spec.get("minOccurs", 1) or 0) == 0
        default = default_literal(schema, kind) if isinstance(schema, dict) else None
        if optional and default is not None:
            parts += ["ks:optional true", f"ks:defaultValue {default}"]
        comment = "" if not optional or default is not None else \
            "  # optional at the service; without a default here every request must give it"
        parameters.append(f"        [ {' ; '.join(parts)} ]" + comment)
    if parameters:
        lines.append("    ks:parameter")
        lines.append(_comma_safe(parameters))
    else:
        lines[-1] = lines[-1].rstrip(" ;") + " ."
    return "\n".join(lines)


def _comma_safe(parameters: list[str]) -> str:
    """Parameters separated by commas, each comment after its separator (where Turtle allows it)."""
    out = []
    for n, parameter in enumerate(parameters):
        body, _, comment = parameter.partition("  # ")
        separator = " ." if n == len(parameters) - 1 else ","
        out.append(body + separator + (f"  # {comment}" if comment else ""))
    return "\n".join(out)


def service_turtle(draft: ServiceDraft, descriptions: list[dict[str, Any]]) -> str:
    """The draft: prefixes, the service runner, and a workflow per described process."""
    workflows = [iri(draft.workflow_base + str(d.get("id"))) for d in descriptions]
    head = [
        f"# Drafted by `kgsched register-service {draft.endpoint}` from the service's process descriptions.",
        "# Review before registering: who verified the processes, capacity (ks:cores = jobs at once),",
        "# whom the service serves, which verifiers it trusts. Then: kgsched register this-file.ttl",
        f"@prefix ks:   <{KS}> .",
        "@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .",
        "@prefix xsd:  <http://www.w3.org/2001/XMLSchema#> .",
        "",
        f"{iri(draft.service)} a ks:ServiceRunner ;",
        f"    rdfs:label {text('OGC API - Processes service at ' + draft.endpoint)} ;",
        f"    ks:ownedBy {iri(draft.owner)} ;",
        f"    ks:atSite {iri(draft.site)} ;",
        f"    ks:endpoint {Literal(draft.endpoint, datatype=XSD.anyURI).n3()} ;",
        f"    ks:cores {draft.cores} ; ks:memoryBytes {draft.memory_bytes} ;",
        "    ks:supports ks:WebService ;",
        f"    ks:offersWorkflow {', '.join(workflows)} ;",
    ]
    if draft.storage:
        head.append(f"    ks:usesStorage {iri(draft.storage)} ;")
    else:
        head.append("    # ks:usesStorage <a registered ks:Storage> ;  # where its products are recorded as stored")
    if draft.verifier:
        head.append(f"    ks:trusts {iri(draft.verifier)} ;")
    else:
        head.append("    # ks:trusts <a verifier> ;  # the service runs only workflows verified by someone it trusts")
    head.append("    ks:serves ks:Anyone .")
    return ("\n".join(head) + "\n\n" + "\n\n".join(workflow_turtle(draft, d) for d in descriptions) + "\n"
            + verification_turtle(draft, descriptions))


def verification_turtle(draft: ServiceDraft, descriptions: list[dict[str, Any]]) -> str:
    """The verifications, for the verifier to register in its own graph (docs/authority.md: a workflow's
    registrant cannot say who verified it) — commented out, so the owner's registration stays its own."""
    who = iri(draft.verifier) if draft.verifier else "<who checked it>"
    lines = ["", f"# For {who} to register with its own token, once it has checked each process (runners run",
             "# only what someone they trust verified; a change of version or process voids it):",
             f"# @prefix ks: <{KS}> ."]
    for description in descriptions:
        process = str(description.get("id"))
        lines += [f"# {iri(draft.workflow_base + process + '/verification')} a ks:WorkflowVerification ;",
                  f"#     ks:verifiedWorkflow {iri(draft.workflow_base + process)} ;",
                  f"#     ks:verifiedVersion {text(description.get('version') or '1.0.0')} ;",
                  "#     ks:verifiedImplementationKind ks:WebService ;",
                  f"#     ks:verifiedImplementation {text(process)} ."]
    return "\n".join(lines) + "\n"
