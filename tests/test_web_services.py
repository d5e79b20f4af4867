"""Remote services and notebooks as workflows, with real processes.

A real OGC API – Processes server (pygeoapi, with process plugins defined in tests/support) runs for
the whole session on 127.0.0.1. Against it: the client's errors a user meets (service down, no such
process, an input the process does not declare), ``kgsched register-service``; then one federation
(the kgsched service, runner agents, and runner agents in service mode, all processes) in which a
request is planned onto the service, executed, its product reused; a remote job the service answers
as failed is recorded as an unhandled exception and retried on another deployment; and a notebook
workflow runs end to end, including an AnalysisException raised inside the notebook.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from rdflib import URIRef

from conftest import ADMIN, EXAMPLES, ROOT, register_examples
from kgsched.dev.federation import FED, Federation
from kgsched.dev.ogc_server import OgcProcessesServer
from kgsched.dev.oxigraph_server import free_port
from kgsched.dev.parties import party_registrations
from kgsched.dev.services import EXAMPLE_PROCESSES, EXAMPLE_SERVICE_RUNNER, start_service_runner, with_endpoint
from kgsched.graph.store import EmbeddedStore
from kgsched.registry.registration import Registry, load_ontology
from kgsched.runner.executor import NOTEBOOK, WEB_SERVICE, Executor
from kgsched.runner.ogc import OgcProcessesClient, ServiceCall, ServiceCallError
from kgsched.runner.storage import ProductServer, ProductStore

KS = "https://w3id.org/kgsched#"
PROV = "http://www.w3.org/ns/prov#"
ALICE = FED + "person/alice"
FRANK = FED + "person/frank"
ISGRI = FED + "data/isgri-events-rev2670"
SUPPORT = ROOT / "tests" / "support"
TEST_PROCESSES = {"rate-total": "ogc_test_processes.RateTotal",
                  "flaky-rate-total": "ogc_test_processes.FlakyRateTotal", **EXAMPLE_PROCESSES}


@pytest.fixture(scope="session")
def ogc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OgcProcessesServer]:
    """pygeoapi with the test processes and the example's, asynchronous jobs in TinyDB."""
    server = OgcProcessesServer(TEST_PROCESSES, [str(SUPPORT), str(EXAMPLES / "workflows")],
                                directory=tmp_path_factory.mktemp("pygeoapi"))
    with server:
        yield server


def light_curve(emin: float, emax: float) -> dict:
    return {"workflow": FED + "workflow/light-curve",
            "args": {"events": {"dataset": ISGRI}, "energy_min_kev": emin, "energy_max_kev": emax}}


def decisions(plan: dict) -> list[tuple[str, str, str]]:
    return [(s["workflow"].rsplit("/", 1)[-1], s["decision"], (s.get("runner") or "").rsplit("/", 1)[-1])
            for s in plan["steps"]]


# -- the client against the real server ----------------------------------------------------------

def test_a_remote_process_runs_asynchronously_and_its_json_result_is_canonical(ogc_server) -> None:
    call = ServiceCall(OgcProcessesClient(ogc_server.url), "rate-total")
    inputs = call.inputs_for({"light_curve": {"kind": "literal"}, "scale": {"kind": "literal"}},
                             {"light_curve": {"rate_cts_per_s": [1, 2, 3]}, "scale": 2.0},
                             {"light_curve": "lightcurve"})
    assert inputs == {"lightcurve": {"rate_cts_per_s": [1, 2, 3]}, "scale": 2.0}
    assert call.run(inputs) == b'{"bins":3,"kind":"rate total","total":12.0}'
    # it went through an asynchronous job: the server's job list has it, finished
    jobs = json.loads(OgcProcessesClient(ogc_server.url)._request("GET", f"{ogc_server.url}/jobs?f=json")[2])
    assert any(job.get("processID") == "rate-total" and job["status"] == "successful" for job in jobs["jobs"])


def test_errors_a_user_meets_are_clear(ogc_server) -> None:
    client = OgcProcessesClient(ogc_server.url)
    with pytest.raises(ServiceCallError, match=r"has no process 'no-such-process' \(it offers: .*rate-total"):
        client.describe("no-such-process")
    call = ServiceCall(client, "rate-total")
    with pytest.raises(ServiceCallError, match=r"does not declare an input 'colour' .*it declares: lightcurve, scale"):
        call.inputs_for({"colour": {"kind": "literal"}}, {"colour": "red"}, {})
    with pytest.raises(ServiceCallError, match=r"requires input\(s\) lightcurve"):
        call.inputs_for({"scale": {"kind": "literal"}}, {"scale": 1}, {})
    down = OgcProcessesClient(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ServiceCallError, match=r"is not reachable .*is it running\?"):
        down.describe("rate-total")
    with pytest.raises(ServiceCallError, match=r"answered that job .* failed: .*disk of the processing node is full"):
        ServiceCall(client, "flaky-rate-total").run({"lightcurve": {"rate_cts_per_s": [7, 7]}})


def test_the_executor_reports_service_errors_as_unhandled(ogc_server, tmp_path: Path) -> None:
    executor = Executor(ProductStore(tmp_path / "p"), EXAMPLES, [])
    job = {"workflow": {"implementation_kind": WEB_SERVICE, "implementation": "rate-total"},
           "arguments": {"scale": {"kind": "literal", "value": 1.0, "lexical": "1.0"}},
           "service": {"endpoint": ogc_server.url, "process": "no-such-process", "inputs": {}}}
    result = executor.execute(job)
    assert result.outcome == "unhandled_exception" and "has no process 'no-such-process'" in result.error
    assert executor.execute({**job, "service": None}).error.startswith("this runner is no service")


def test_service_descriptions_conform_and_mistakes_are_named() -> None:
    from rdflib import Graph

    from kgsched.graph.rdfio import parse_rdf
    from kgsched.namespaces import KS as KSNS
    from kgsched.registry.registration import validate_graph

    data = Graph()
    for path in [*sorted(EXAMPLES.glob("*.ttl")), EXAMPLES / "services" / "variability-service.ttl",
                 ROOT / "tests" / "data" / "service-workflows.ttl"]:
        data += parse_rdf(path.read_bytes(), source=path.name)
    outcome = validate_graph(data)
    assert outcome.conforms, outcome.report_text
    service = URIRef(FED + "runner/test-service")
    data.remove((service, KSNS.endpoint, None))
    data.add((service, KSNS.supports, KSNS.PythonCallable))
    data.add((URIRef(FED + "workflow/rate-total"), KSNS.implementationKind, KSNS.Teleportation))
    messages = {r["message"] for r in validate_graph(data).results}
    assert "A service runner needs exactly one ks:endpoint, the http(s) base URL of its OGC API - Processes " \
           "(before /processes)." in messages
    assert "A service runner supports ks:WebService only (it executes by calling its remote service)." in messages
    assert any("ks:Notebook or ks:WebService" in m for m in messages)


def test_the_planner_treats_a_service_as_a_runner_that_runs_only_what_it_offers_and_trusts(tmp_path: Path) -> None:
    from kgsched.planning.planner import plan_request

    store = EmbeddedStore(tmp_path / "store")
    load_ontology(store)
    registry = Registry(store)
    register_examples(store)
    registry.register([("service.ttl", (EXAMPLES / "services" / "variability-service.ttl").read_bytes())],
                      URIRef(FRANK))
    variability = {"workflow": FED + "workflow/light-curve-variability-service",
                   "args": {"light_curve": light_curve(20, 40)}}
    plan = plan_request(store, variability, URIRef(ALICE))
    service_step = plan.steps[-1]
    assert service_step.decision == "recompute"
    assert service_step.runner == URIRef(EXAMPLE_SERVICE_RUNNER)
    assert service_step.candidates == [URIRef(EXAMPLE_SERVICE_RUNNER)]  # no runner agent offers it
    # the same analysis as a callable never goes to the service (it supports ks:WebService only)
    local = plan_request(store, {"workflow": FED + "workflow/light-curve-variability",
                                 "args": {"light_curve": light_curve(20, 40)}}, URIRef(ALICE))
    assert URIRef(EXAMPLE_SERVICE_RUNNER) not in local.steps[-1].candidates and local.steps[-1].candidates
    # a web-service workflow no service offers: cannot, and the reason says which test failed
    mallory = """@prefix ks: <https://w3id.org/kgsched#> . @prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
        <https://example.org/m/wf> a ks:Workflow ; rdfs:label "m" ; ks:version "1" ; ks:implementationKind ks:WebService ;
            ks:implementation "light-curve-variability" ; ks:author <https://example.org/fed/person/mallory> ;
            ks:parameter [ ks:name "light_curve" ; ks:parameterType ks:DatasetValue ] .
        <https://example.org/fed/person/mallory> a <http://xmlns.com/foaf/0.1/Person> ; <http://xmlns.com/foaf/0.1/name> "M" ."""
    registry.register([("m.ttl", mallory)], URIRef(FED + "person/mallory"))
    registry.register([("v.ttl", """<https://example.org/fed/verification/carol-m> a <https://w3id.org/kgsched#WorkflowVerification> ;
        <https://w3id.org/kgsched#verifiedWorkflow> <https://example.org/m/wf> ; <https://w3id.org/kgsched#verifiedVersion> "1" ;
        <https://w3id.org/kgsched#verifiedImplementationKind> <https://w3id.org/kgsched#WebService> ;
        <https://w3id.org/kgsched#verifiedImplementation> "light-curve-variability" .""")], URIRef(FED + "person/carol"))
    unoffered = plan_request(store, {"workflow": "https://example.org/m/wf",
                                     "args": {"light_curve": light_curve(20, 40)}}, URIRef(ALICE))
    assert unoffered.steps[-1].decision == "cannot"
    assert "0 support its implementation kind" in unoffered.steps[-1].reason
    # only the service's owner says what it offers: Mallory cannot make Frank's service run her workflow
    from kgsched.errors import KgschedError

    before = store.quad_count()
    with pytest.raises(KgschedError, match="only its owner can change it"):
        registry.register([("m2.ttl", f"<{EXAMPLE_SERVICE_RUNNER}> <https://w3id.org/kgsched#offersWorkflow> "
                                      "<https://example.org/m/wf> .")], URIRef(FED + "person/mallory"))
    assert store.quad_count() == before


def test_a_remote_analysis_exception_is_a_cached_no_result(ogc_server, tmp_path: Path) -> None:
    """The example service fails a one-bin light curve with "AnalysisException: …": a no-result, as data sent inline."""
    one_bin = tmp_path / "one-bin.json"
    one_bin.write_text(json.dumps({"time_s": [50], "rate_cts_per_s": [1.0], "rate_error": [0.1]}))
    upstream = ProductStore(tmp_path / "upstream")
    stored = upstream.put(one_bin)
    server = ProductServer(upstream).start()  # products are fetched only from registered sources, over HTTP
    executor = Executor(ProductStore(tmp_path / "p"), EXAMPLES, [])
    job = {"workflow": {"implementation_kind": WEB_SERVICE, "implementation": "light-curve-variability"},
           "arguments": {"light_curve": {"kind": "product", "product": "urn:p",
                                         "location": server.url_for(stored.checksum), "checksum": stored.checksum}},
           "product_sources": [server.base_url],
           "service": {"endpoint": ogc_server.url, "process": "light-curve-variability",
                       "inputs": {"light_curve": "lightcurve"}}}
    try:
        result = executor.execute(job)
    finally:
        server.stop()
    assert result.outcome == "analysis_exception", result.error
    assert "fewer than two bins" in json.loads(result.product.path.read_text())["message"]
    assert result.used == ["urn:p"]


def test_an_executed_notebook_is_checked_and_recorded_only_for_notebooks() -> None:
    import datetime as dt

    from kgsched.errors import InvalidRequest
    from kgsched.namespaces import KS as KSNS
    from kgsched.provenance.recording import ExecutionContext, ResultReport, execution_graph

    checksum = "sha256:" + "a" * 64
    report = {"outcome": "success", "duration_seconds": 1, "location": "x", "size_bytes": 1, "checksum": checksum,
              "executed_notebook": {"location": "http://127.0.0.1:1/products/" + "b" * 64,
                                    "checksum": "sha256:" + "b" * 64, "size_bytes": 10}}
    for bad, fragment in [({"location": "x"}, "exactly location, checksum and size_bytes"),
                          ({"location": "x", "checksum": "md5:1", "size_bytes": 1}, "executed_notebook.checksum"),
                          ({"location": "x", "checksum": checksum, "size_bytes": -1}, "executed_notebook.size_bytes")]:
        with pytest.raises(InvalidRequest, match=fragment):
            ResultReport.from_json({**report, "executed_notebook": bad})
    context = ExecutionContext(
        job=URIRef("https://w3id.org/kgsched/id/job/j"), claim=URIRef("https://w3id.org/kgsched/id/job/j/claim/c"),
        expression=URIRef("https://w3id.org/kgsched/id/expression/e"), address="e" * 64,
        workflow=URIRef(FED + "workflow/light-curve-plot"), runner=URIRef(FED + "runner/paris-cluster"),
        claimed_at=dt.datetime(2030, 1, 1, tzinfo=dt.UTC), implementation_kind=KSNS.PythonCallable,
        runner_storage=(URIRef(FED + "storage/paris-disk"),))
    with pytest.raises(InvalidRequest, match="only for a ks:Notebook workflow"):
        execution_graph(context, ResultReport.from_json(report))
    notebook_context = ExecutionContext(**{**context.__dict__, "implementation_kind": KSNS.Notebook})
    graph, execution, _ = execution_graph(notebook_context, ResultReport.from_json(report))
    [notebook] = list(graph.objects(execution, KSNS.executedNotebook))
    assert (notebook, KSNS.checksum, None) in graph and (notebook, URIRef(PROV + "wasGeneratedBy"), execution) in graph
    # a failed notebook run keeps its executed notebook too (to see where it failed)
    failed = {"outcome": "unhandled_exception", "duration_seconds": 1, "executed_notebook": report["executed_notebook"]}
    graph, execution, product = execution_graph(notebook_context, ResultReport.from_json(failed))
    assert product is None and list(graph.objects(execution, KSNS.executedNotebook))


def test_register_service_drafts_turtle_that_registers(ogc_server, cli, tmp_path: Path) -> None:
    out = tmp_path / "service.ttl"
    result = cli("register-service", ogc_server.url, "--process", "rate-total", "--process", "light-curve-variability",
                 "--service", FED + "runner/drafted", "--owner", FRANK, "--site", FED + "site/garching",
                 "--workflow-base", FED + "workflow/drafted-", "--verified-by", FED + "person/carol",
                 "--storage", FED + "storage/garching-archive", "-o", str(out))
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert 'ks:implementation "rate-total"' in text and 'ks:name "lightcurve" ; ks:parameterType ks:DatasetValue' in text
    assert 'ks:name "scale" ; ks:parameterType xsd:decimal' in text
    store = EmbeddedStore(tmp_path / "store")
    load_ontology(store)
    registry = Registry(store)
    register_examples(store)
    registry.register([("service.ttl", text)], URIRef(FRANK))
    assert store.select("SELECT ?r WHERE { ?r a <https://w3id.org/kgsched#ServiceRunner> }")[0]["r"] == URIRef(FED + "runner/drafted")
    # a process that does not exist, and a service that is down, are refused in words
    missing = cli("register-service", ogc_server.url, "--process", "nope", "--service", "urn:s", "--owner", "urn:o",
                  "--site", "urn:x", "--workflow-base", "urn:w:")
    assert missing.exit_code == 1 and "has no process 'nope'" in missing.stderr
    down = cli("register-service", f"http://127.0.0.1:{free_port()}", "--service", "urn:s", "--owner", "urn:o",
               "--site", "urn:x", "--workflow-base", "urn:w:")
    assert down.exit_code == 1 and "is not reachable" in down.stderr


# -- notebooks, without a federation ------------------------------------------------------------

def write_notebook(path: Path, cells: list[tuple[str, list[str]]]) -> None:
    path.write_text(json.dumps({
        "cells": [{"cell_type": "code", "execution_count": None, "metadata": {"tags": tags}, "outputs": [],
                   "source": source} for source, tags in cells],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4, "nbformat_minor": 5}))


def test_notebook_errors_are_clear(tmp_path: Path) -> None:
    write_notebook(tmp_path / "untagged.ipynb", [("x = 1\noutput = 'o'", []), ("open(output, 'w').write('x')", [])])
    write_notebook(tmp_path / "tagged.ipynb", [("x = 1\noutput = 'o'", ["parameters"]),
                                               ("open(output, 'w').write(str(x))", [])])
    write_notebook(tmp_path / "lookalike.ipynb", [
        ("output = 'o'", ["parameters"]),
        ("class AnalysisException(Exception):\n    pass\nraise AnalysisException('not the real one')", [])])
    executor = Executor(ProductStore(tmp_path / "p"), tmp_path, [str(tmp_path)], timeout_seconds=120)

    def run(notebook: str, **arguments) -> object:
        return executor.execute({"workflow": {"implementation_kind": NOTEBOOK, "implementation": notebook},
                                 "arguments": {k: {"kind": "literal", "value": v, "lexical": str(v)}
                                               for k, v in arguments.items()}})

    untagged = run("untagged.ipynb", x=2)
    assert untagged.outcome == "unhandled_exception" and "has no cell tagged 'parameters'" in untagged.error
    undeclared = run("tagged.ipynb", x=2, colour="red")
    assert undeclared.outcome == "unhandled_exception" and "does not declare 'colour'" in undeclared.error
    assert run("elsewhere.ipynb").error.startswith("StagingError: notebook 'elsewhere.ipynb' not found")
    assert "without '..'" in run("../tagged.ipynb").error
    fine = run("tagged.ipynb", x=41)
    assert fine.outcome == "success" and fine.product.path.read_text() == "41"
    executed = json.loads(fine.notebook.path.read_text())
    assert [c["metadata"].get("tags") for c in executed["cells"]] == [["parameters"], ["injected-parameters"], []]
    # an exception merely named AnalysisException is no analysis exception
    lookalike = run("lookalike.ipynb")
    assert lookalike.outcome == "unhandled_exception" and "not the real one" in lookalike.error


def test_a_service_runner_starts_only_in_service_mode_and_only_when_its_service_answers(tmp_path: Path) -> None:
    config = with_endpoint(ROOT / "tests" / "data" / "service-workflows.ttl", f"http://127.0.0.1:{free_port()}",
                           tmp_path / "service.ttl")

    def runner(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "kgsched", "runner", "--server", "http://127.0.0.1:1",
                               "--token", "t", "--config", str(config), "--runner", FED + "runner/test-service",
                               *extra], capture_output=True, text=True, timeout=120)

    down = runner("--service")
    assert down.returncode == 1 and "is not reachable" in down.stderr and "is it running?" in down.stderr
    plain = runner()
    assert plain.returncode == 1 and "start it with 'kgsched runner --service'" in plain.stderr


def test_the_runner_agent_stays_light() -> None:
    """Importing the agent, including its notebook and service code, loads no heavy library."""
    code = ("import sys, kgsched.runner.agent, kgsched.runner.executor, kgsched.runner.ogc, kgsched.runner.notebook, "
            "kgsched.runner.call, kgsched.runner.service_mode\n"
            "print(','.join(m for m in ('numpy', 'networkx', 'pyshacl', 'pyoxigraph', 'flask', 'papermill', "
            "'nbclient', 'jupyter_client') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""


# -- one federation: service runners, a notebook runner -------------------------------------------

@pytest.fixture(scope="module")
def federation(ogc_server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    workdir = tmp_path_factory.mktemp("federation")
    with Federation(workdir) as running:
        running.start_service()
        running.register_base()
        config = with_endpoint(ROOT / "tests" / "data" / "service-workflows.ttl", ogc_server.url,
                               workdir / "service-workflows.ttl")
        for party, turtle in party_registrations([(config.name, config.read_bytes())]):
            # frank registers his service runners and workflows; carol her verifications of them
            running.admin.register(turtle, as_registrant=str(FRANK if party == ADMIN else party))
        running.start_runner("geneva-batch")
        running.start_runner("paris-cluster")
        start_service_runner(running, "test-service", config)
        start_service_runner(running, "test-service-mirror", config)
        running.alice = running.token_for(ALICE)
        yield running


def executions(federation: Federation, expression: str) -> list[dict[str, str]]:
    return federation.select(
        f"PREFIX ks: <{KS}> PREFIX prov: <{PROV}>\n"
        "SELECT ?execution ?runner ?owner ?outcome ?error ?notebook WHERE {\n# @values\n"
        "?execution ks:computes ?expression ; prov:wasAssociatedWith ?runner ; ks:outcome ?outcome .\n"
        "?runner ks:ownedBy ?owner .\n"
        "OPTIONAL { ?execution ks:errorMessage ?error } OPTIONAL { ?execution ks:executedNotebook ?notebook } }",
        {"expression": [URIRef(expression)]})


def run(federation: Federation, request: dict) -> tuple[dict, list[dict]]:
    answer = federation.submit(federation.alice, request)
    states = federation.wait_for_jobs([j["job"] for j in answer["jobs"]], timeout=180)
    return answer, states


def test_a_request_is_planned_onto_the_service_executed_and_reused(federation: Federation) -> None:
    request = {"workflow": FED + "workflow/rate-total", "args": {"light_curve": light_curve(20, 40), "scale": 2}}
    answer, states = run(federation, request)
    assert decisions(answer["plan"])[-1] == ("rate-total", "recompute", "test-service")
    assert [s["state"] for s in states] == ["done", "done"]
    root = answer["plan"]["root"]
    product = federation.product_of(root)
    data = federation.fetch(product["location"])
    assert "sha256:" + hashlib.sha256(data).hexdigest() == product["checksum"] and len(data) == int(product["sizeBytes"])
    upstream = federation.fetch(federation.product_of(answer["plan"]["steps"][0]["expression"])["location"])
    expected = round(sum(json.loads(upstream)["rate_cts_per_s"]) * 2, 9)
    assert json.loads(data) == {"bins": len(json.loads(upstream)["rate_cts_per_s"]), "kind": "rate total",
                                "total": expected}
    # PROV: the remote service is the associated agent, acting for its owner, who earns the credit
    [execution] = executions(federation, root)
    assert execution["runner"] == FED + "runner/test-service" and execution["owner"] == FRANK
    assert execution["outcome"] == KS + "Success"
    credits = {a["agent"]: a for a in federation.credits()["agents"]}
    assert credits[FRANK]["by_reason"]["compute contribution"] > 0
    acknowledgement = federation.acknowledgements(product["product"])
    assert "computed by web services of Frank Weber" in acknowledgement["sentence"]
    # the same request again: everything is reused, the service is not called
    again = federation.submit(federation.alice, request)
    assert again["jobs"] == [] and again["plan"]["summary"]["recompute"] == 0


def test_a_failed_remote_job_is_recorded_unhandled_and_retried(federation: Federation) -> None:
    request = {"workflow": FED + "workflow/flaky-rate-total", "args": {"light_curve": light_curve(40, 100), "scale": 3}}
    answer, states = run(federation, request)
    assert [s["state"] for s in states] == ["done", "done"]
    runs = executions(federation, answer["plan"]["root"])
    outcomes = sorted((r["outcome"].rsplit("#", 1)[-1], r["runner"].rsplit("/", 1)[-1]) for r in runs)
    assert [o for o, _ in outcomes] == ["Success", "UnhandledException"]
    assert {r for _, r in outcomes} == {"test-service", "test-service-mirror"}  # retried on the other deployment
    failed = next(r for r in runs if r["outcome"].endswith("UnhandledException"))
    assert "failed" in failed["error"] and "disk of the processing node is full" in failed["error"]


def test_a_notebook_workflow_runs_end_to_end(federation: Federation) -> None:
    curve = light_curve(20, 100)
    request = {"workflow": FED + "workflow/light-curve-plot",
               "args": {"light_curve": curve,
                        "variability": {"workflow": FED + "workflow/light-curve-variability",
                                        "args": {"light_curve": curve}}}}
    answer, states = run(federation, request)
    assert decisions(answer["plan"])[-1] == ("light-curve-plot", "recompute", "paris-cluster")
    assert all(s["state"] == "done" for s in states)
    product = federation.product_of(answer["plan"]["root"])
    assert product["outcome"] == KS + "Success"
    assert federation.fetch(product["location"]).startswith(b"\x89PNG")
    [execution] = executions(federation, answer["plan"]["root"])
    notebook = federation.select(
        f"PREFIX ks: <{KS}> PREFIX prov: <{PROV}> SELECT ?location ?checksum ?generator WHERE {{\n# @values\n"
        "?n a ks:ExecutedNotebook ; ks:location ?location ; ks:checksum ?checksum ; prov:wasGeneratedBy ?generator }",
        {"n": [URIRef(execution["notebook"])]})[0]
    assert notebook["generator"] == execution["execution"]
    stored = federation.fetch(notebook["location"])
    assert "sha256:" + hashlib.sha256(stored).hexdigest() == notebook["checksum"]
    cells = json.loads(stored)["cells"]
    assert any("injected-parameters" in c["metadata"].get("tags", []) for c in cells)
    assert any("image/png" in o.get("data", {}) for c in cells for o in c.get("outputs", []))


def test_an_analysis_exception_inside_a_notebook_is_a_cached_result(federation: Federation) -> None:
    empty = light_curve(5000, 6000)  # no photons there: the light curve itself is an analysis exception
    request = {"workflow": FED + "workflow/light-curve-plot",
               "args": {"light_curve": empty,
                        "variability": {"workflow": FED + "workflow/light-curve-variability",
                                        "args": {"light_curve": light_curve(20, 100)}}}}
    answer, states = run(federation, request)
    assert all(s["state"] == "done" for s in states)
    product = federation.product_of(answer["plan"]["root"])
    assert product["outcome"] == KS + "AnalysisException"
    assert b"no light curve to plot" in federation.fetch(product["location"])
    [execution] = executions(federation, answer["plan"]["root"])
    assert execution["outcome"] == KS + "AnalysisException" and execution["notebook"]
    again = federation.submit(federation.alice, request)
    assert again["jobs"] == [] and decisions(again["plan"])[-1][:2] == ("light-curve-plot", "reuse")
