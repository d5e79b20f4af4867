"""Exporting a product's provenance: the whole chain, read back with rdflib, ``prov`` and ``rocrate``."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import pytest
from click.testing import CliRunner
from prov.model import ProvActivity, ProvDocument, ProvEntity, ProvGeneration, ProvUsage
from rdflib import Graph, URIRef
from rocrate.rocrate import ROCrate

from conftest import ROOT
from kgsched.cli import main
from kgsched.graph.store import EmbeddedStore, Store
from kgsched.namespaces import KS, PROV
from kgsched.provenance.export import lineage, provenance_graph
from kgsched.provenance.ro_crate import PROCESS_RUN_CRATE, WORKFLOW_RUN_CRATE
from kgsched.registry.registration import load_ontology
from kgsched.wfcommons.convert import Conversion, ImportOptions, convert, write
from kgsched.wfcommons.wfformat import read_trace

DSS = ROOT / "examples" / "wfcommons" / "montage-chameleon-dss-05d-001.json.gz"
ADMIN = URIRef("https://example.org/fed/admin")


def import_dss(store: Store) -> Conversion:
    load_ontology(store)
    conversion = convert(read_trace(DSS), ImportOptions(sites=2))
    write(store, conversion, ADMIN)
    return conversion


def upstream(conversion: Conversion, task_id: str) -> set[str]:
    """The task and every task it depends on, directly or not."""
    dag = nx.DiGraph((p, t.id) for t in conversion.trace.tasks for p in t.parents)
    return nx.ancestors(dag, task_id) | {task_id}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One imported trace in a store on disk, a final mViewer product of it and its upstream tasks."""
    path = tmp_path_factory.mktemp("export") / "store"
    with EmbeddedStore(path) as store:
        conversion = import_dss(store)
    task = next(t for t in conversion.trace.tasks if t.category == "mViewer" and len(upstream(conversion, t.id)) > 10)
    tasks = upstream(conversion, task.id)
    return {"store": str(path), "conversion": conversion, "task": task.id, "product": conversion.products[task.id],
            "tasks": tasks, "executions": {conversion.products[t] for t in tasks}}


def run_cli(exported: dict, *args: str):
    return CliRunner().invoke(main, ["--store", exported["store"], *args], catch_exceptions=False)


def test_turtle_holds_the_whole_chain(exported: dict, tmp_path: Path) -> None:
    out = tmp_path / "provenance.ttl"
    result = run_cli(exported, "export", str(exported["product"]), "--format", "turtle", "-o", str(out))
    assert result.exit_code == 0, result.output
    graph = Graph().parse(out, format="turtle")
    conversion, tasks = exported["conversion"], exported["tasks"]
    products = set(graph.subjects(PROV.wasGeneratedBy, None))
    assert products == {conversion.products[t] for t in tasks}
    assert len(set(graph.subjects(KS.computes, None))) == len(tasks)
    # every upstream execution's expression and workflow come along, and the datasets used
    for task in conversion.trace.tasks:
        if task.id in tasks:
            expression = conversion.expressions[task.id].iri
            assert (expression, KS.workflow, conversion.workflows[task.category].iri) in graph
            for file_id in task.inputs:
                if file_id in conversion.datasets:
                    assert (conversion.datasets[file_id], KS.sizeBytes, None) in graph
    assert (conversion.agent, None, None) in graph  # the trace's stand-in organization, with its name


def test_the_export_is_the_same_on_a_sparql_server(store: Store) -> None:
    conversion = import_dss(store)
    task = next(t.id for t in conversion.trace.tasks if t.category == "mBgModel")
    graph = provenance_graph(store, conversion.products[task])
    assert len(set(graph.subjects(KS.computes, None))) == len(upstream(conversion, task))


def test_prov_json_reads_back_with_prov(exported: dict, tmp_path: Path) -> None:
    out = tmp_path / "provenance.json"
    result = run_cli(exported, "export", str(exported["product"]), "--format", "prov-json", "-o", str(out))
    assert result.exit_code == 0, result.output
    document = ProvDocument.deserialize(content=out.read_text(), format="json")
    records = document.get_records()
    uri = {r: r.identifier.uri for r in records if r.identifier is not None}
    activities = {uri[r] for r in records if isinstance(r, ProvActivity)}
    entities = {uri[r] for r in records if isinstance(r, ProvEntity)}
    conversion, tasks = exported["conversion"], exported["tasks"]
    assert len(activities) == len(tasks)
    assert {str(conversion.products[t]) for t in tasks} <= entities
    generations = [r for r in records if isinstance(r, ProvGeneration)]
    made = {(str(r.get_attribute("prov:entity").pop().uri)) for r in generations}
    assert str(exported["product"]) in made and len(generations) == len(tasks)
    usages = [r for r in records if isinstance(r, ProvUsage)]
    by_id = {t.id: t for t in conversion.trace.tasks}
    assert len(usages) >= sum(len(by_id[t].parents) for t in tasks)  # parents' products, plus datasets read


def test_ro_crate_reads_back_with_rocrate(exported: dict, tmp_path: Path) -> None:
    out = tmp_path / "crate"
    result = run_cli(exported, "export", str(exported["product"]), "--format", "ro-crate", "-o", str(out))
    assert result.exit_code == 0, result.output
    crate = ROCrate(out)
    conformance = crate.root_dataset["conformsTo"]
    ids = {c if isinstance(c, str) else c.id for c in (conformance if isinstance(conformance, list) else [conformance])}
    assert {PROCESS_RUN_CRATE, WORKFLOW_RUN_CRATE} <= ids
    conversion, tasks = exported["conversion"], exported["tasks"]
    task = next(t for t in conversion.trace.tasks if t.id == exported["task"])
    assert crate.mainEntity.id == str(conversion.workflows[task.category].iri)
    assert "ComputationalWorkflow" in crate.mainEntity.type
    actions = [e for e in crate.get_entities() if e.type == "CreateAction"]
    assert len(actions) == len(tasks)
    main_actions = [a for a in actions if a["instrument"].id == crate.mainEntity.id]
    assert [r.id for r in main_actions[0]["result"]] == [str(exported["product"])]
    for action in actions:  # every reference resolves to an entity of the crate
        assert crate.get(action["instrument"].id) is not None
        for used in action.get("object") or []:
            assert crate.get(used.id) is not None
        assert action["startTime"] <= action["endTime"]
    product = crate.get(str(exported["product"]))
    assert product["sha256"] and int(product["contentSize"]) == conversion.output_bytes[task.id]
    formal = {p["name"] for p in crate.mainEntity["input"]}
    assert "outputs" in formal and any(name.startswith("input_") for name in formal)


def test_ro_crate_as_a_zip(exported: dict, tmp_path: Path) -> None:
    out = tmp_path / "crate.zip"
    assert run_cli(exported, "export", str(exported["product"]), "--format", "ro-crate", "-o", str(out)).exit_code == 0
    assert ROCrate(out).mainEntity is not None


def test_lineage_orders_inputs_first(exported: dict) -> None:
    with EmbeddedStore(exported["store"], read_only=True) as store:
        found = lineage(store, exported["product"])
    seen: set[URIRef] = set()
    for execution in found.executions:
        for used in execution.used:
            maker = found.entities[used].generated_by
            assert maker is None or maker in seen
        seen.add(execution.iri)
    assert found.main_execution is not None and found.main_execution.iri == found.executions[-1].iri


@pytest.mark.parametrize(("args", "message"), [
    (["https://w3id.org/kgsched/id/product/nothing"], "no data product"),
    (["not an iri"], "not an absolute IRI"),
    (["https://w3id.org/kgsched/id/product/nothing", "--format", "ro-crate"], "say where with --output"),
])
def test_an_unknown_product_exits_1_and_writes_nothing(exported: dict, tmp_path: Path, args: list[str],
                                                       message: str) -> None:
    out = tmp_path / "out.json"
    extra = ["-o", str(out)] if "ro-crate" not in args else []
    result = run_cli(exported, "export", *args, *extra)
    assert result.exit_code == 1
    assert message in result.stderr
    assert not out.exists()


def test_turtle_to_stdout_is_the_default(exported: dict) -> None:
    result = run_cli(exported, "export", str(exported["product"]))
    assert result.exit_code == 0
    graph = Graph().parse(data=result.stdout, format="turtle")
    assert (exported["product"], KS.checksum, None) in graph
