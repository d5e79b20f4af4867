"""Importing WfCommons traces: checked reading, conforming RDF, the same content addresses as
requests get, facts that match the trace, planning on what was imported, refusals that change nothing."""

from __future__ import annotations

import copy
import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from rdflib import Graph, Literal, URIRef

from conftest import ROOT, quads
from kgsched.errors import InvalidRequest, OwnershipConflict
from kgsched.graph import queries
from kgsched.graph.store import EmbeddedStore, Store
from kgsched.namespaces import KS, PROV
from kgsched.planning.expressions import build_dag
from kgsched.planning.planner import plan_request
from kgsched.registry.registration import load_ontology, validate_graph
from kgsched.wfcommons.convert import Conversion, ImportOptions, _sources, convert, final_tasks, write
from kgsched.wfcommons.wfformat import parse_trace, read_trace

TRACES = ROOT / "examples" / "wfcommons"
HELLO = TRACES / "helloworld-chain-5-chameleon.json"
DSS = TRACES / "montage-chameleon-dss-05d-001.json.gz"
SAREK = TRACES / "sarek-dirt02-001.json.gz"
SEISMOLOGY = TRACES / "seismology-chameleon-100p-001.json.gz"
ADMIN = URIRef("https://example.org/fed/admin")
OTHER = URIRef("https://example.org/fed/person/mallory")
REQUESTER = URIRef("https://example.org/fed/person/alice")


def document(path: Path) -> dict[str, Any]:
    raw = path.read_bytes()
    return json.loads(gzip.decompress(raw) if path.suffix == ".gz" else raw)


def request_for(conversion: Conversion, task_id: str, memo: dict[str, dict] | None = None) -> dict[str, Any]:
    """The nested JSON request a person would write for a task of an imported trace."""
    memo = {} if memo is None else memo
    if task_id not in memo:
        trace = conversion.trace
        task = next(t for t in trace.tasks if t.id == task_id)
        workflow = conversion.workflows[task.category]
        names = sorted(n for n, p in workflow.parameters.items() if p.takes_data)
        args: dict[str, Any] = {}
        for (kind, key), name in zip(_sources(task, trace.producer), names, strict=False):
            args[name] = {"dataset": str(conversion.datasets[key])} if kind == "dataset" else request_for(
                conversion, key, memo)
        if task.arguments:
            args["arguments"] = json.dumps(list(task.arguments))
        args["outputs"] = json.dumps(list(task.outputs))
        memo[task_id] = {"workflow": str(workflow.iri), "args": args}
    return memo[task_id]


def imported(store: Store, path: Path, **options: Any) -> Conversion:
    load_ontology(store)
    conversion = convert(read_trace(path), ImportOptions(**options))
    write(store, conversion, ADMIN)
    return conversion


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------

def test_reading_a_trace() -> None:
    trace = read_trace(HELLO)
    assert trace.name == "helloworld-chain-5-chameleon"
    assert [t.category for t in trace.tasks] == ["cpuhog"] * 5
    assert [t.parents for t in trace.tasks][1:] == [(t.id,) for t in trace.tasks[:-1]]
    assert trace.external_inputs == ["chain_00000001_input.txt"]
    assert trace.machines[0].cores == 64 and trace.tasks[0].machine == "ubuntu"
    assert trace.runtime_system == "Pegasus 5.0"
    sarek = read_trace(SAREK)  # Nextflow: whole scripts as programs, no machines on the tasks
    assert len({t.category for t in sarek.tasks}) == 26
    assert all(t.machine == "dirt02" for t in sarek.tasks)


def _mutate(change) -> dict[str, Any]:
    data = copy.deepcopy(document(HELLO))
    change(data)
    return data


def _spec(data: dict) -> dict:
    return data["workflow"]["specification"]


def _run(data: dict) -> dict:
    return data["workflow"]["execution"]


BROKEN = {
    "older layout": (lambda d: d.update(workflow={"tasks": []}), "older WfFormat layout"),
    "no specification": (lambda d: d["workflow"].pop("specification"), "workflow.specification is missing"),
    "file without size": (lambda d: _spec(d)["files"][0].pop("sizeInBytes"), "sizeInBytes is missing"),
    "negative size": (lambda d: _spec(d)["files"][0].update(sizeInBytes=-1), "whole number ≥ 0"),
    "unknown file": (lambda d: _spec(d)["tasks"][0]["inputFiles"].append("nowhere.txt"),
                     "'nowhere.txt' is not in workflow.specification.files"),
    "unknown parent": (lambda d: _spec(d)["tasks"][0]["parents"].append("ghost"), "names parent 'ghost'"),
    "cycle": (lambda d: _spec(d)["tasks"][0]["parents"].append(_spec(d)["tasks"][4]["id"]), "form a cycle"),
    "reads a non-parent's file": (lambda d: _spec(d)["tasks"][4]["inputFiles"].append(
        _spec(d)["tasks"][0]["outputFiles"][0]), "which is not among its parents"),
    "duplicate task": (lambda d: _spec(d)["tasks"].append(_spec(d)["tasks"][0]), "appears twice"),
    "no execution record": (lambda d: _run(d)["tasks"].pop(), "has no record in workflow.execution.tasks"),
    "negative runtime": (lambda d: _run(d)["tasks"][0].update(runtimeInSeconds=-3), "runtimeInSeconds"),
    "runtime as text": (lambda d: _run(d)["tasks"][0].update(runtimeInSeconds="10"), "must be a number"),
    "unknown machine": (lambda d: _run(d)["tasks"][0].update(machines=["elsewhere"]), "names 'elsewhere'"),
    "tasks not a list": (lambda d: _spec(d).update(tasks={}), "must be a list"),
    "no tasks": (lambda d: _spec(d).update(tasks=[]), "nothing to import"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_traces_are_refused_with_the_place_named(case: str) -> None:
    change, message = BROKEN[case]
    with pytest.raises(InvalidRequest) as refused:
        parse_trace(_mutate(change), "broken")
    assert message in refused.value.detail


# --------------------------------------------------------------------------------------------------
# Converting
# --------------------------------------------------------------------------------------------------

def _graph(conversion: Conversion) -> Graph:
    graph = Graph()
    for triple in conversion.all_triples():
        graph.add(triple)
    return graph


@pytest.mark.parametrize("path", [HELLO, SAREK, DSS, SEISMOLOGY], ids=lambda p: p.name.split("-")[0])
def test_converted_traces_conform_to_the_shapes(path: Path) -> None:
    conversion = convert(read_trace(path), ImportOptions(sites=3))
    outcome = validate_graph(_graph(conversion))
    assert outcome.conforms, outcome.results[:5]


def test_the_shapes_would_catch_a_broken_conversion() -> None:
    conversion = convert(read_trace(HELLO))
    graph = _graph(conversion)
    product = next(iter(conversion.products.values()))
    graph.remove((product, KS.checksum, None))
    graph.add((product, KS.checksum, Literal("sha256:not-hex")))
    outcome = validate_graph(graph)
    assert not outcome.conforms
    assert any(r["focusNode"] == str(product) and "checksum" in r["message"] for r in outcome.results)


def test_the_mapping_follows_the_trace() -> None:
    trace = read_trace(DSS)
    conversion = convert(trace, ImportOptions(sites=1))
    data = document(DSS)
    sizes = {f["id"]: f["sizeInBytes"] for f in data["workflow"]["specification"]["files"]}
    assert set(conversion.workflows) == {"mProject", "mDiffFit", "mConcatFit", "mBgModel", "mBackground",
                                         "mImgtbl", "mAdd", "mViewer"}
    for task in data["workflow"]["specification"]["tasks"]:
        assert conversion.output_bytes[task["id"]] == sum(sizes[f] for f in task["outputFiles"])
    assert len(conversion.datasets) == 26 and len(set(e.address for e in conversion.expressions.values())) == 58
    # each task's expression takes its parents' expressions and its input files as datasets
    for task in trace.tasks:
        expression = conversion.expressions[task.id]
        assert set(expression.inputs) == {conversion.expressions[p].address for p in task.parents}
        external = {f for f in task.inputs if f in conversion.datasets}
        assert set(expression.datasets) == {conversion.datasets[f] for f in external}
    # products carry the synthetic checksum of their files' ids and sizes
    graph = _graph(conversion)
    first = trace.tasks[0]
    checksum = str(graph.value(conversion.products[first.id], KS.checksum))
    from kgsched.wfcommons.convert import synthetic_checksum

    assert checksum == synthetic_checksum((f, sizes[f]) for f in first.outputs)


def test_addresses_are_those_a_request_gets(embedded_store: EmbeddedStore) -> None:
    conversion = imported(embedded_store, DSS, provenance=False)
    memo: dict[str, dict] = {}
    addresses = {e.address for e in conversion.expressions.values()}
    for task_id in final_tasks(conversion.trace):
        dag = build_dag(embedded_store, request_for(conversion, task_id, memo))
        assert dag.root.address == conversion.expressions[task_id].address
        assert {e.address for e in dag.expressions()} <= addresses


# --------------------------------------------------------------------------------------------------
# Writing and planning
# --------------------------------------------------------------------------------------------------

def test_import_records_what_the_trace_says(store: Store) -> None:
    conversion = imported(store, DSS)
    data = document(DSS)
    runtimes = {t["id"]: t["runtimeInSeconds"] for t in data["workflow"]["execution"]["tasks"]}
    rows = store.select("SELECT ?e ?d ?r WHERE { ?e a ?c ; ?dur ?d ; ?assoc ?r }",
                        [{"c": KS.Execution, "dur": KS.durationSeconds, "assoc": PROV.wasAssociatedWith}])
    assert len(rows) == 58
    assert sum(float(r["d"]) for r in rows) == pytest.approx(sum(runtimes.values()), abs=1e-3)
    assert {r["r"] for r in rows} == set(conversion.runners.values())
    sizes = store.select("SELECT (SUM(?s) AS ?total) WHERE {\n# @values\n?p a ?c ; ?size ?s }",
                         [{"c": KS.DataProduct, "size": KS.sizeBytes}])
    assert int(sizes[0]["total"]) == sum(conversion.output_bytes.values())
    cores = store.select("SELECT ?n WHERE { ?r ?p ?n }", [{"r": conversion.runners["pegasus-5"], "p": KS.cores}])
    assert [int(r["n"]) for r in cores] == [48]
    # the running statistics were rebuilt: one row per workflow on the one runner, runs = its tasks
    stats = queries.select(store, "execution-statistics", {"workflow": [w.iri for w in conversion.workflows.values()]})
    runs = {str(r["workflow"]).rsplit("/", 1)[1]: int(r["runs"]) for r in stats}
    assert runs == {"mProject": 12, "mDiffFit": 18, "mConcatFit": 3, "mBgModel": 3, "mBackground": 12,
                    "mImgtbl": 3, "mAdd": 3, "mViewer": 4}
    before = store.quad_count()
    write(store, conversion, ADMIN)  # a second import of the same trace changes nothing
    assert store.quad_count() == before


def test_plan_reuses_an_imported_trace_and_recomputes_a_federation_only_import(embedded_store: EmbeddedStore,
                                                                                tmp_path: Path) -> None:
    conversion = imported(embedded_store, DSS)
    final = final_tasks(conversion.trace)[0]
    plan = plan_request(embedded_store, request_for(conversion, final), REQUESTER)
    assert plan.steps[-1].decision == "reuse"
    assert plan.steps[-1].product == conversion.products[final]

    with EmbeddedStore(tmp_path / "fresh") as fresh:
        federation = imported(fresh, SEISMOLOGY, provenance=False, sites=3)
        final = final_tasks(federation.trace)[0]
        plan = plan_request(fresh, request_for(federation, final), REQUESTER)
        assert plan.summary() == {"reuse": 0, "recompute": 101, "cannot": 0}
        assert {s.runner for s in plan.steps} <= set(federation.runners.values())


def test_a_registrant_cannot_import_over_anothers_trace(embedded_store: EmbeddedStore) -> None:
    imported(embedded_store, HELLO)
    before = embedded_store.quad_count()
    with pytest.raises(OwnershipConflict):
        write(embedded_store, convert(read_trace(HELLO)), OTHER)
    assert embedded_store.quad_count() == before


# --------------------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------------------

def test_the_command_imports_with_a_progress_bar(cli) -> None:
    result = cli("import-wfcommons", str(DSS), "--sites", "2")
    assert result.exit_code == 0, result.output
    assert "converting 58 tasks" in result.stderr
    assert ("imported montage-chameleon-dss-05d-001: 8 workflows, 58 expressions, 58 executions and products "
            "(2.7 GB); 1 runners at 1 site(s), 26 datasets") in result.stdout
    counted = cli("query", "SELECT (COUNT(*) AS ?n) WHERE { ?e a ks:Execution }", "--format", "json")
    assert json.loads(counted.stdout) == [{"n": "58"}]
    bare = cli("import-wfcommons", str(HELLO), "--no-provenance", "--validate", "--name", "hello")
    assert bare.exit_code == 0, bare.output
    assert "no executions (--no-provenance)" in bare.stdout and "wfcommons/hello/" in bare.stdout


def _write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize("case", ["malformed JSON", "truncated gzip", "cycle", "missing file", "not an object",
                                  "another registrant"])
def test_a_refused_import_exits_1_and_changes_nothing(cli, tmp_path: Path, case: str) -> None:
    assert cli("import-wfcommons", str(HELLO)).exit_code == 0
    before = quads(cli.store)
    args: list[str] = []
    if case == "malformed JSON":
        trace, expected = _write(tmp_path, "bad.json", b'{"workflow": {"specification": '), "invalid JSON at line 1"
    elif case == "truncated gzip":
        trace, expected = _write(tmp_path, "bad.json.gz", DSS.read_bytes()[:500]), "not a readable gzip file"
    elif case == "cycle":
        data = _mutate(BROKEN["cycle"][0])
        trace, expected = _write(tmp_path, "cycle.json", json.dumps(data).encode()), "cycle.json: the tasks' parents"
    elif case == "missing file":
        trace, expected = str(tmp_path / "absent.json"), "cannot read"
    elif case == "not an object":
        trace, expected = _write(tmp_path, "list.json", b"[1, 2]"), "the trace must be a JSON object"
    else:
        trace, expected = str(HELLO), "only its owner can change it"
        args = ["--as", str(OTHER)]
    result = cli("import-wfcommons", trace, *args)
    assert result.exit_code == 1
    assert "rejected:" in result.stderr and expected in result.stderr, result.stderr
    assert quads(cli.store) == before


def test_a_second_import_replaces_the_first(embedded_store: EmbeddedStore, tmp_path: Path) -> None:
    imported(embedded_store, SEISMOLOGY, sites=1)
    conversion = imported(embedded_store, SEISMOLOGY, sites=3)
    sites = embedded_store.select("SELECT ?r ?site WHERE {\n# @values\n?r ?at ?site }",
                                  [{"r": r, "at": KS.atSite} for r in conversion.runners.values()])
    assert sorted(str(row["site"])[-1] for row in sites) == ["0", "1", "2"]
    with EmbeddedStore(tmp_path / "fresh") as fresh:
        imported(fresh, SEISMOLOGY, sites=3)
        assert fresh.quad_count() == embedded_store.quad_count()
