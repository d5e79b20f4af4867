"""A product's provenance as an RO-Crate following the Workflow Run RO-Crate profiles (``rocrate``).

The crate conforms to the *Process Run Crate* and *Workflow Run Crate* profiles (0.5) on RO-Crate 1.1:

* the main entity is the workflow whose execution generated the product (a ``ComputationalWorkflow``),
  with a ``FormalParameter`` for each of that execution's arguments and one for its output;
* every execution in the product's provenance — the one that made it, and upstream, the ones that
  made what it used — is a ``CreateAction``: ``instrument`` its workflow, ``object`` the datasets and
  products it used (and its literal arguments as ``PropertyValue``), ``result`` the product it
  generated, ``agent`` the owner of the runner it ran on, with start and end times;
* products and datasets are web-based ``File`` entities named by their kgsched IRI, with their size,
  SHA-256 and location; people and organizations are contextual entities.

kgsched's workflows are not files in a workflow language, so the crate says so with its own
``ComputerLanguage`` entity. The bytes stay where the federation stores them: the crate describes them.
"""

from __future__ import annotations

from pathlib import Path

from rdflib import URIRef

from kgsched.namespaces import FOAF, KS, ORG, XSD
from kgsched.provenance.export import Entity, Execution, Lineage
from kgsched.vocabulary import ONTOLOGY_IRI

PROCESS_RUN_CRATE = "https://w3id.org/ro/wfrun/process/0.5"
WORKFLOW_RUN_CRATE = "https://w3id.org/ro/wfrun/workflow/0.5"
WORKFLOW_RO_CRATE = "https://w3id.org/workflowhub/workflow-ro-crate/1.0"
PROFILES = {PROCESS_RUN_CRATE: ("Process Run Crate", "0.5"), WORKFLOW_RUN_CRATE: ("Workflow Run Crate", "0.5"),
            WORKFLOW_RO_CRATE: ("Workflow RO-Crate", "1.0")}
STATUS = {KS.Success: "http://schema.org/CompletedActionStatus",
          KS.AnalysisException: "http://schema.org/CompletedActionStatus",
          KS.UnhandledException: "http://schema.org/FailedActionStatus"}
_LITERAL_TYPES = {str(XSD.integer): "Integer", str(XSD.decimal): "Float", str(XSD.double): "Float",
                  str(XSD.boolean): "Boolean", str(XSD.date): "Date", str(XSD.dateTime): "DateTime"}


def _iso(moment) -> str | None:
    return None if moment is None else moment.isoformat()


def _file_properties(entity: Entity) -> dict:
    properties: dict = {"name": entity.label,
                        "description": "kgsched data product" if entity.kind == "product" else "kgsched dataset"}
    if entity.size_bytes is not None:
        properties["contentSize"] = str(entity.size_bytes)
    if entity.checksum and entity.checksum.startswith("sha256:"):
        properties["sha256"] = entity.checksum.split(":", 1)[1]
    if entity.location:
        properties["identifier"] = entity.location
    if entity.generated_at is not None:
        properties["dateCreated"] = entity.generated_at.isoformat()
    if entity.providers:
        properties["author"] = [{"@id": str(p)} for p in entity.providers]
    return properties


def to_ro_crate(lineage: Lineage):
    """The lineage as a ``rocrate.rocrate.ROCrate`` (not yet written)."""
    from rocrate.model.computerlanguage import ComputerLanguage
    from rocrate.model.contextentity import ContextEntity
    from rocrate.rocrate import ROCrate

    crate = ROCrate(version="1.1")
    product = lineage.entities[lineage.product]
    main = lineage.main_execution
    crate.root_dataset["name"] = f"Provenance of {product.label}"
    datasets = sum(e.kind == "dataset" for e in lineage.entities.values())
    crate.root_dataset["description"] = (
        f"The whole provenance of the kgsched data product {lineage.product}: {len(lineage.executions)} "
        f"execution(s) of {len(lineage.workflows)} workflow(s) over {datasets} dataset(s), exported from the "
        "kgsched knowledge graph.")
    crate.root_dataset["conformsTo"] = [{"@id": iri} for iri in PROFILES]
    for iri, (name, version) in PROFILES.items():
        crate.add(ContextEntity(crate, iri, properties={"@type": "CreativeWork", "name": name, "version": version}))
    language = crate.add(ComputerLanguage(crate, "#kgsched-workflow", properties={
        "name": "kgsched workflow", "url": {"@id": ONTOLOGY_IRI},
        "description": "A pure function registered in kgsched: a Python callable, a command line or a notebook."}))

    for agent in lineage.agents.values():
        kind = "Person" if FOAF.Person in agent.kinds else (
            "Organization" if agent.kinds & {FOAF.Organization, ORG.Organization, FOAF.Group} else "Thing")
        crate.add(ContextEntity(crate, str(agent.iri), properties={"@type": kind, "name": agent.name}))
    files = {iri: crate.add_file(str(iri), fetch_remote=False, validate_url=False, properties=_file_properties(e))
             for iri, e in lineage.entities.items()}

    instruments = {}
    main_workflow = main.workflow if main is not None else None
    for iri, workflow in lineage.workflows.items():
        properties = {"name": workflow.label, "version": workflow.version or "",
                      "description": workflow.implementation or ""}
        if workflow.authors:
            properties["author"] = [{"@id": str(a)} for a in workflow.authors]
        if iri == main_workflow:
            instruments[iri] = crate.add_workflow(str(iri), main=True, lang=language, fetch_remote=False,
                                                  validate_url=False, properties=properties)
        else:
            instruments[iri] = crate.add(ContextEntity(crate, str(iri), properties={
                "@type": "SoftwareApplication", **properties}))
    crate.root_dataset["conformsTo"] = [{"@id": iri} for iri in PROFILES]  # add_workflow may add its own

    owners = {r.iri: r.owner for r in lineage.runners.values()}
    runners = {r.iri: r for r in lineage.runners.values()}
    for n, execution in enumerate(lineage.executions, start=1):
        is_main = main is not None and execution.iri == main.iri
        objects = [files[u] for u in execution.used if u in files]
        literals = []
        for argument in execution.arguments:
            if argument.kind != "literal":
                continue
            value = crate.add(ContextEntity(crate, f"#execution-{n}-{argument.name}", properties={
                "@type": "PropertyValue", "name": argument.name, "value": str(argument.value)}))
            literals.append((argument, value))
        properties = _action_properties(execution, runners, owners)
        instrument = instruments.get(execution.workflow) if execution.workflow is not None else None
        crate.add_action(instrument, identifier=str(execution.iri), object=objects + [v for _, v in literals],
                         result=[files[g] for g in execution.generated if g in files], properties=properties)
        if is_main and instrument is not None:
            _formal_parameters(crate, instrument, execution, lineage, files, literals)
    return crate


def _action_properties(execution: Execution, runners: dict, owners: dict) -> dict:
    runner = runners.get(execution.runner)
    where = f" on {runner.label}" if runner is not None else ""
    properties: dict = {"@type": "CreateAction", "name": f"{execution.label}{where}"}
    if execution.started is not None:
        properties["startTime"] = _iso(execution.started)
    if execution.ended is not None:
        properties["endTime"] = _iso(execution.ended)
    if owners.get(execution.runner) is not None:
        properties["agent"] = {"@id": str(owners[execution.runner])}
    if execution.outcome in STATUS:
        properties["actionStatus"] = {"@id": STATUS[execution.outcome]}
    if execution.expression is not None:
        properties["description"] = f"computes the expression {execution.expression}"
    return properties


def _formal_parameters(crate, workflow, execution: Execution, lineage: Lineage, files: dict, literals: list) -> None:
    """Inputs and output of the main workflow as FormalParameters, its run's values pointing at them."""
    from rocrate.model.contextentity import ContextEntity

    inputs = []
    for argument in execution.arguments:
        kind = "File" if argument.kind != "literal" else _LITERAL_TYPES.get(
            str(getattr(argument.value, "datatype", None)), "Text")
        parameter = crate.add(ContextEntity(crate, f"#param-input-{argument.name}", properties={
            "@type": "FormalParameter", "name": argument.name, "additionalType": kind,
            "conformsTo": {"@id": "https://bioschemas.org/profiles/FormalParameter/1.0-RELEASE"}}))
        inputs.append(parameter)
        if argument.kind == "literal":
            for literal, value in literals:
                if literal.name == argument.name:
                    value["exampleOfWork"] = parameter
    output = crate.add(ContextEntity(crate, "#param-output", properties={
        "@type": "FormalParameter", "name": "product", "additionalType": "File",
        "conformsTo": {"@id": "https://bioschemas.org/profiles/FormalParameter/1.0-RELEASE"}}))
    workflow["input"] = inputs
    workflow["output"] = [output]
    for generated in execution.generated:
        if generated in files:
            files[generated]["exampleOfWork"] = output
    data_inputs = {p["name"]: p for p in inputs if p["additionalType"] == "File"}
    # a data argument names a dataset, or an expression whose product the execution used
    used_value_of = {lineage.entities[u].expression: u for u in execution.used if u in lineage.entities}
    for argument in execution.arguments:
        target = URIRef(str(argument.value)) if argument.kind == "dataset" else used_value_of.get(argument.value)
        if argument.kind != "literal" and target in files and argument.name in data_inputs:
            files[target]["exampleOfWork"] = data_inputs[argument.name]


def write_ro_crate(lineage: Lineage, destination: Path) -> Path:
    """Write the crate: a ``.zip`` file if the destination ends so, else a directory."""
    crate = to_ro_crate(lineage)
    if destination.suffix == ".zip":
        crate.write_zip(str(destination))
    else:
        crate.write(str(destination))
    return destination
