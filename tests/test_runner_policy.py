"""Defence in depth on the runner: the owner's policy (checked before staging), staging only from
inside --data-dir with checksums, products only from registered sources, no argument as an option;
and the service's side: the claim lists verifiers and product sources, a refused job is handed back
without spending an attempt, a reported product location must be under the runner's own sources."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from rdflib import URIRef

from conftest import EXAMPLES
from kgsched.dev.workloads import queue_light_curves
from kgsched.graph.store import EmbeddedStore
from kgsched.jobs.queue import JobQueue, QueueSettings
from kgsched.jobs.states import LeaseLost, NotYourJob
from kgsched.namespaces import JOBS_GRAPH, KS
from kgsched.product_urls import is_under, refusal
from kgsched.runner.executor import COMMAND_LINE, PYTHON_CALLABLE, Executor, TemplateError, command_argv
from kgsched.runner.policy import PolicyFileError, PolicyRefusal, RunnerPolicy
from kgsched.runner.storage import ProductServer, ProductStore, sha256_file
from service_support import (
    ADMIN_HEADERS,
    ALICE_LAPTOP,
    CAROL,
    GENEVA,
    PARIS,
    bearer,
    federation_app,
    load_federation,
    result_for,
    utc,
)

FED = "https://example.org/fed/"
EVENTS_CHECKSUM = "sha256:ede1c0449b1ffeebb541e24b0fd4307850f53b5f802df572150f66dedc4f35f5"
POLICY = RunnerPolicy(frozenset({str(CAROL)}), ("kgsched_examples",), ("python",))


def claim(implementation: str, kind: str = PYTHON_CALLABLE, verifiers: tuple[str, ...] = (str(CAROL),),
          arguments: dict | None = None, sources: tuple[str, ...] = ()) -> dict:
    return {"job": "0" * 32, "workflow": {"iri": FED + "workflow/w", "implementation_kind": kind,
                                          "implementation": implementation, "verifiers": list(verifiers)},
            "arguments": arguments or {}, "product_sources": list(sources)}


# -- the policy ----------------------------------------------------------------------------------

@pytest.mark.parametrize("implementation", [
    "kgsched_examples.astro:light_curve", "kgsched_examples:f", "kgsched_examples.a.b.c:_private"])
def test_callables_under_an_allowed_module_prefix_pass(implementation: str) -> None:
    POLICY.check(claim(implementation))


@pytest.mark.parametrize("implementation, why", [
    ("os:system", "module 'os'"),
    ("subprocess:getoutput", "module 'subprocess'"),
    ("kgsched_examplesevil:x", "module 'kgsched_examplesevil'"),  # a prefix matches whole components
    ("kgsched_examples_evil.astro:x", "not under an allowed"),
    ("kgsched_examples.astro", "module:function"),
    ("kgsched_examples.astro:light_curve.__globals__", "module:function"),
    ("kgsched_examples..astro:f", "module:function"),
    (" kgsched_examples.astro:f", "module:function"),
    ("", "no implementation"),
])
def test_callables_outside_the_allowlist_are_refused(implementation: str, why: str) -> None:
    with pytest.raises(PolicyRefusal, match=why):
        POLICY.check(claim(implementation))


@pytest.mark.parametrize("template", [
    "python -m kgsched_examples.periodogram --input {light_curve} --min-period {min_period_s}",
    "python -m kgsched_examples --help",
])
def test_python_runs_only_allowed_modules_with_dash_m(template: str) -> None:
    POLICY.check(claim(template, COMMAND_LINE))


@pytest.mark.parametrize("template, why", [
    ("python -c {code}", "python -m <module>"),
    ("python -c 'import os; os.system(\"id\")'", "python -m <module>"),
    ("python script.py", "python -m <module>"),
    ("python -I -m kgsched_examples.periodogram", "python -m <module>"),
    ("python -mkgsched_examples.periodogram", "python -m <module>"),
    ("python -m", "python -m <module>"),
    ("python -m os", "module 'os'"),
    ("python -m {module} x", "may not be a placeholder"),
    ("python -m kgsched_examplesevil.x", "not under an allowed"),
    ("/tmp/evil/python -m kgsched_examples.periodogram", "not allowed"),  # "python" names only python
    ("python3 -m kgsched_examples.periodogram", "not allowed"),
    ("sh -c {cmd}", "executable 'sh' is not allowed"),
    ("{tool} --input x", "may not be a placeholder"),
    ("   ", "empty"),
    ("python -m 'kgsched_examples", "cannot be split"),
])
def test_command_lines_outside_the_allowlist_are_refused(template: str, why: str) -> None:
    with pytest.raises(PolicyRefusal, match=why):
        POLICY.check(claim(template, COMMAND_LINE))


def test_executables_by_absolute_path_and_interpreters_under_other_names(tmp_path: Path) -> None:
    policy = RunnerPolicy(frozenset({str(CAROL)}), ("kgsched_examples",), ("/usr/bin/tool", "/usr/bin/python3"))
    policy.check(claim("/usr/bin/tool --x {a}", COMMAND_LINE))
    policy.check(claim("/usr/bin/../bin/tool", COMMAND_LINE))
    with pytest.raises(PolicyRefusal):
        policy.check(claim("tool --x", COMMAND_LINE))  # an absolute path allows that path only
    policy.check(claim("/usr/bin/python3 -m kgsched_examples.periodogram", COMMAND_LINE))
    with pytest.raises(PolicyRefusal, match="python -m"):  # any interpreter by any path: only -m
        policy.check(claim("/usr/bin/python3 -c pass", COMMAND_LINE))
    with pytest.raises(ValueError, match="bare name or an absolute path"):
        RunnerPolicy(allowed_executables=("bin/tool",))
    with pytest.raises(ValueError, match="dotted Python module"):
        RunnerPolicy(allowed_modules=("kgsched examples",))


@pytest.mark.parametrize("verifiers", [(), (FED + "person/bob",), ("not a list",)])
def test_a_workflow_no_trusted_verifier_verified_is_refused(verifiers: tuple[str, ...]) -> None:
    job = claim("kgsched_examples.astro:light_curve", verifiers=verifiers)
    if verifiers == ("not a list",):
        job["workflow"]["verifiers"] = "https://example.org/fed/person/carol"  # not a list: no verifier
    with pytest.raises(PolicyRefusal, match="no verifier this runner's owner trusts"):
        POLICY.check(job)
    job = claim("kgsched_examples.astro:light_curve", verifiers=(FED + "person/bob", str(CAROL)))
    POLICY.check(job)


def test_other_kinds_and_the_empty_default_allow_nothing() -> None:
    with pytest.raises(PolicyRefusal, match="not under a directory"):
        POLICY.check(claim("notebook.ipynb", "https://w3id.org/kgsched#Notebook"))
    with pytest.raises(PolicyRefusal, match="service"):
        POLICY.check(claim("some-process", "https://w3id.org/kgsched#WebService"))
    with pytest.raises(PolicyRefusal, match="kind"):
        POLICY.check(claim("x", "https://w3id.org/kgsched#SomethingElse"))
    with pytest.raises(PolicyRefusal, match="no workflow"):
        POLICY.check({"job": "x"})
    nothing = RunnerPolicy()
    for job in (claim("kgsched_examples.astro:light_curve"), claim("python -m kgsched_examples.x", COMMAND_LINE)):
        with pytest.raises(PolicyRefusal):
            nothing.check(job)
    trusting = RunnerPolicy(frozenset({str(CAROL)}))  # trusts carol, allows no implementation
    with pytest.raises(PolicyRefusal, match="allowed: none"):
        trusting.check(claim("kgsched_examples.astro:light_curve"))


def test_policy_file_options_and_the_default_trusted_verifiers(tmp_path: Path) -> None:
    file = tmp_path / "policy.toml"
    file.write_text('trust_verifiers = ["https://example.org/fed/person/dave"]\nallow_modules = ["a.b"]\n'
                    'allow_executables = ["tool"]\n')
    built = RunnerPolicy.build(modules=["c"], executables=["python"], policy_file=file, default_trusted=[str(CAROL)])
    assert built.trusted_verifiers == {FED + "person/dave"}  # configured: the description's default is replaced
    assert built.allowed_modules == ("a.b", "c") and built.allowed_executables == ("tool", "python")
    default = RunnerPolicy.build(default_trusted=[str(CAROL)])
    assert default.trusted_verifiers == {str(CAROL)} and default.allowed_modules == ()
    assert RunnerPolicy.build(trusted=["x:y"], default_trusted=[str(CAROL)]).trusted_verifiers == {"x:y"}
    for text, why in [('allow_module = ["a"]', "unknown key"), ("allow_modules = 'a'", "list of non-empty"),
                      ("allow_modules = [", "cannot read")]:
        file.write_text(text)
        with pytest.raises(PolicyFileError, match=why):
            RunnerPolicy.build(policy_file=file)


def test_the_policy_module_imports_nothing_heavy() -> None:
    code = ("import sys, kgsched.runner.policy, kgsched.runner.agent, kgsched.runner.executor, "
            "kgsched.product_urls\n"
            "heavy = {'numpy', 'networkx', 'pyshacl', 'pyoxigraph', 'flask', 'rdflib'} & set(sys.modules)\n"
            "print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# -- product sources -------------------------------------------------------------------------------

@pytest.mark.parametrize("location, base, under", [
    ("http://h:8/products/ab", "http://h:8/products/", True),
    ("http://H:8/products/ab", "http://h:8/products", True),
    ("https://h/p/x", "https://h:443/p/", True),
    ("http://h:8/productsX/ab", "http://h:8/products", False),
    ("http://h:8/products/", "http://h:8/products/", False),
    ("http://h:9/products/ab", "http://h:8/products/", False),
    ("https://h:8/products/ab", "http://h:8/products/", False),
    ("http://h:8/products/../etc/passwd", "http://h:8/products/", False),
    ("http://h:8/products/%2e%2e/x", "http://h:8/products/", False),
    ("http://h:8/products/a%2Fb", "http://h:8/products/", False),
    ("http://user@h:8/products/ab", "http://h:8/products/", False),
    ("http://h:8@evil/products/ab", "http://h:8/products/", False),
    ("file:///products/ab", "file:///products/", False),
    ("http://h:8/products/ab#x", "http://h:8/products/", False),
    ("http://h:8/products/a b", "http://h:8/products/", False),
])
def test_under_a_base_is_decided_on_parsed_urls(location: str, base: str, under: bool) -> None:
    assert is_under(location, base) is under


def test_refusal_says_why() -> None:
    assert refusal("http://h/p/x", ["http://h/p/"]) is None
    assert "not an http:// or https:// URL" in refusal("file:///etc/passwd", ["http://h/p/"])
    assert "not under any registered product source (allowed: none)" in refusal("http://h/p/x", [])


# -- staging ---------------------------------------------------------------------------------------

@pytest.fixture
def executor(tmp_path: Path) -> Executor:
    return Executor(ProductStore(tmp_path / "products"), EXAMPLES, [str(EXAMPLES / "workflows")], timeout_seconds=60)


def events(location: str = "data/isgri-events-rev2670.csv", checksum: str | None = EVENTS_CHECKSUM) -> dict:
    return {"kind": "dataset", "dataset": FED + "data/isgri-events-rev2670", "location": location,
            "checksum": checksum}


def light_curve_job(events_argument: dict, sources: tuple[str, ...] = ()) -> dict:
    return claim("kgsched_examples.astro:light_curve", arguments={
        "events": events_argument, "energy_min_kev": {"kind": "literal", "value": 20.0, "lexical": "20.0"},
        "energy_max_kev": {"kind": "literal", "value": 40.0, "lexical": "40.0"}}, sources=sources)


def test_datasets_are_staged_only_from_inside_the_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data-dir"
    (data / "data").mkdir(parents=True)
    inside = data / "data" / "events.csv"
    inside.write_bytes((EXAMPLES / "data" / "isgri-events-rev2670.csv").read_bytes())
    secret = tmp_path / "secret.csv"
    secret.write_text("time_s,energy_kev\n1,30\n")
    (data / "data" / "link.csv").symlink_to(secret)
    (data / "data" / "loop").symlink_to(data / "data" / "loop")
    executor = Executor(ProductStore(tmp_path / "products"), data, [str(EXAMPLES / "workflows")], timeout_seconds=60)
    assert executor.execute(light_curve_job(events("data/events.csv"))).outcome == "success"
    assert executor.execute(light_curve_job(events(str(inside)))).outcome == "success"  # absolute, but inside
    for location in ("../secret.csv", "data/../../secret.csv", str(secret), "file://" + str(secret),
                     "data/link.csv", "/etc/passwd"):
        result = executor.execute(light_curve_job(events(location, None)))
        assert result.outcome == "unhandled_exception", location
        assert "StagingError" in result.error and "outside the data directory" in result.error, result.error
    looped = executor.execute(light_curve_job(events("data/loop", None)))
    assert looped.outcome == "unhandled_exception" and "StagingError" in looped.error


def test_a_dataset_checksum_is_checked_where_the_claim_gives_one(executor: Executor) -> None:
    assert executor.execute(light_curve_job(events())).outcome == "success"
    wrong = executor.execute(light_curve_job(events(checksum="sha256:" + "0" * 64)))
    assert wrong.outcome == "unhandled_exception" and "does not match checksum" in wrong.error
    assert executor.execute(light_curve_job(events(checksum=None))).outcome == "success"  # none in the graph


def test_products_come_only_from_listed_sources_over_http(executor: Executor, tmp_path: Path) -> None:
    made = executor.execute(light_curve_job(events()))
    server = ProductServer(executor.store).start()
    try:
        elsewhere = Executor(ProductStore(tmp_path / "elsewhere"), EXAMPLES, [str(EXAMPLES / "workflows")])

        def combine(location: str, sources: tuple[str, ...]) -> dict:
            product = {"kind": "product", "product": "urn:p", "location": location,
                       "checksum": made.product.checksum}
            return claim("kgsched_examples.astro:combine_light_curves",
                         arguments={"soft": product, "hard": product}, sources=sources)

        url = server.url_for(made.product.checksum)
        for location, sources, why in [
            (url, (), "not under any registered product source"),
            (url, ("http://127.0.0.1:1/products/",), "not under any registered product source"),
            (str(made.product.path), (server.base_url,), "not an http:// or https:// URL"),
            ("file://" + str(made.product.path), (server.base_url,), "not an http:// or https:// URL"),
            (server.base_url + "../" + made.product.checksum[7:], (server.base_url,), "'..'"),
        ]:
            result = elsewhere.execute(combine(location, sources))
            assert result.outcome == "unhandled_exception" and why in result.error, (location, result.error)
            assert not list((tmp_path / "elsewhere").rglob(made.product.checksum[7:]))  # nothing fetched
        assert elsewhere.execute(combine(url, (server.base_url,))).outcome == "success"
    finally:
        server.stop()


@pytest.mark.parametrize("template, value, argv", [
    ("tool --x {v}", "-rf", None),
    ("tool {v}", "--output=/etc/passwd", None),
    ("tool -- {v}", "-rf", ["tool", "--", "-rf"]),
    ("tool --x={v}", "-5", ["tool", "--x=-5"]),
    ("tool --x {v}", "5", ["tool", "--x", "5"]),
    ("tool {v.__class__}", "5", None),
    ("tool {v!r}", "5", None),
    ("tool {v:>9}", "5", None),
    ("tool {missing}", "5", None),
    ("tool {{literal}} {v}", "5", ["tool", "{literal}", "5"]),
])
def test_an_argument_never_becomes_an_option(template: str, value: str, argv: list[str] | None) -> None:
    if argv is None:
        with pytest.raises(TemplateError):
            command_argv(template, {"v": value})
    else:
        assert command_argv(template, {"v": value}) == argv


def test_a_dash_value_in_a_standalone_placeholder_fails_the_job_before_running(executor: Executor,
                                                                                  tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    template = "python -m kgsched_examples.periodogram --input {light_curve} --min-period {min_period_s}"
    job = claim(template, COMMAND_LINE, arguments={
        "light_curve": events(), "min_period_s": {"kind": "literal", "value": f"--output={marker}",
                                                  "lexical": f"--output={marker}"}})
    result = executor.execute(job)
    assert result.outcome == "unhandled_exception" and "starts with '-'" in result.error
    assert not marker.exists()


# -- the service: claim fields, refusal, reported locations ------------------------------------------

@pytest.fixture
def app(embedded_store: EmbeddedStore) -> Iterator[Flask]:
    with federation_app(embedded_store) as app:
        yield app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def runner_headers(client: FlaskClient, runner: URIRef) -> dict[str, str]:
    response = client.post("/tokens", json={"agent": str(runner)}, headers=ADMIN_HEADERS)
    assert response.status_code == 201, response.json
    return bearer(response.json["token"])


def test_the_claim_lists_the_verifiers_and_the_product_sources(client: FlaskClient, app: Flask,
                                                               embedded_store: EmbeddedStore) -> None:
    queue_light_curves(embedded_store, app.extensions["kgsched"].queue, 1)
    grant = client.post("/jobs/claim", headers=runner_headers(client, GENEVA)).json
    assert grant["workflow"]["verifiers"] == [str(CAROL)]
    assert grant["product_sources"] == ["http://garching.example.org/archive/", "http://geneva.example.org/products/",
                                        "http://paris.example.org/products/"]
    assert grant["refuse_url"].endswith(f"/jobs/{grant['job']}/refuse")
    POLICY.check(grant)  # the demo policy allows the example light curve


def test_a_refused_job_is_handed_back_without_spending_an_attempt(client: FlaskClient, app: Flask,
                                                                  embedded_store: EmbeddedStore) -> None:
    queue = app.extensions["kgsched"].queue
    [job] = queue_light_curves(embedded_store, queue, 1, eligible=(GENEVA, PARIS))
    geneva, paris = runner_headers(client, GENEVA), runner_headers(client, PARIS)
    grant = client.post("/jobs/claim", headers=geneva).json
    url = grant["refuse_url"]
    before = embedded_store.quad_count()
    for body, headers, status in [({"claim_token": grant["claim_token"]}, geneva, 400),
                                  ({"claim_token": grant["claim_token"], "reason": " "}, geneva, 400),
                                  ({"claim_token": grant["claim_token"], "reason": "x", "more": 1}, geneva, 400),
                                  ({"claim_token": grant["claim_token"], "reason": "x"}, paris, 403),
                                  ({"claim_token": "wrong", "reason": "x"}, geneva, 409),
                                  ({"claim_token": grant["claim_token"], "reason": "x"}, {}, 401)]:
        response = client.post(url, json=body, headers=headers)
        assert response.status_code == status, (body, response.json)
        assert embedded_store.quad_count() == before
    refused = client.post(url, json={"claim_token": grant["claim_token"], "reason": "os is not allowed"},
                          headers=geneva)
    assert refused.status_code == 200 and refused.json["state"] == "queued", refused.json
    described = client.get(grant["url"]).json
    assert described["state"] == "queued" and described["spent_attempts"] == 0
    [entry] = described["claims"]
    assert entry["released"] and entry["refusal_reason"] == "os is not allowed" and not entry["live"]
    assert embedded_store.ask("ASK { GRAPH ?g { ?job <https://w3id.org/kgsched#excludedRunner> ?runner } }",
                              [{"g": JOBS_GRAPH, "job": URIRef(grant["job_iri"]), "runner": GENEVA}])
    again = client.post(url, json={"claim_token": grant["claim_token"], "reason": "again"}, headers=geneva)
    assert again.status_code == 409
    assert client.post("/jobs/claim", headers=geneva).status_code == 204  # excluded for this job
    second = client.post("/jobs/claim", headers=paris).json
    assert second["job"] == grant["job"]
    last = client.post(second["refuse_url"], json={"claim_token": second["claim_token"], "reason": "no"},
                       headers=paris)
    assert last.json["state"] == "failed" and "no other eligible runner" in last.json["detail"]
    assert queue.record(job).stored_state == "failed"


def test_a_refusal_after_the_lease_or_a_report_is_refused(embedded_store: EmbeddedStore) -> None:
    load_federation(embedded_store)
    now = [utc(0)]
    queue = JobQueue(embedded_store, QueueSettings(lease_seconds=10, backoff_seconds=0), clock=lambda: now[0],
                     sleep=lambda _s: None)
    [job] = queue_light_curves(embedded_store, queue, 1)
    grant = queue.claim(GENEVA)
    with pytest.raises(NotYourJob):
        queue.refuse(job, PARIS, grant.claim.secret, "not mine")
    now[0] = utc(20)
    with pytest.raises(LeaseLost, match="lease ran out"):
        queue.refuse(job, GENEVA, grant.claim.secret, "too late")
    other = queue.claim(ALICE_LAPTOP)
    from kgsched.provenance.recording import ResultReport

    report = ResultReport.from_json({k: v for k, v in result_for("t").items() if k != "claim_token"})
    queue.report(job, ALICE_LAPTOP, other.claim.secret, report)
    with pytest.raises(LeaseLost, match="done"):
        queue.refuse(job, ALICE_LAPTOP, other.claim.secret, "after the fact")
    assert queue.record(job).stored_state == "done"


@pytest.mark.parametrize("location", [
    "http://attacker.example/products/abc",
    "http://paris.example.org/products/abc",  # a storage geneva does not use
    "http://geneva.example.org/productsX/abc",
    "http://geneva.example.org/products/../abc",
    "file:///etc/passwd",
    "/etc/passwd",
    "../products/abc",
    "products/../../abc",
    "https://geneva.example.org/products/abc",
])
def test_the_service_refuses_a_location_outside_the_runners_sources(client: FlaskClient, app: Flask,
                                                                     embedded_store: EmbeddedStore,
                                                                     location: str) -> None:
    queue_light_curves(embedded_store, app.extensions["kgsched"].queue, 1)
    geneva = runner_headers(client, GENEVA)
    grant = client.post("/jobs/claim", headers=geneva).json
    before = embedded_store.quad_count()
    response = client.post(grant["result_url"], json=result_for(grant["claim_token"], location=location),
                           headers=geneva)
    assert response.status_code == 400 and response.is_json, response.json
    assert "location" in response.json["detail"]
    assert embedded_store.quad_count() == before


def test_the_service_accepts_locations_under_the_runners_own_sources(client: FlaskClient, app: Flask,
                                                                     embedded_store: EmbeddedStore) -> None:
    queue_light_curves(embedded_store, app.extensions["kgsched"].queue, 3)
    geneva = runner_headers(client, GENEVA)
    endpoint = "http://127.0.0.1:8765/products/"
    embedded_store.update("PREFIX ks: <https://w3id.org/kgsched#> INSERT DATA { GRAPH <urn:g:test> { "
                          f"<{GENEVA}> ks:productEndpoint \"{endpoint}\" }} }}")
    expected = {"products/rel.json": "http://geneva.example.org/products/products/rel.json",
                endpoint + "abc": endpoint + "abc",
                "http://geneva.example.org/products/abc": "http://geneva.example.org/products/abc"}
    for location, recorded in expected.items():
        grant = client.post("/jobs/claim", headers=geneva).json
        assert endpoint in grant["product_sources"]
        done = client.post(grant["result_url"], json=result_for(grant["claim_token"], location, location=location),
                           headers=geneva)
        assert done.status_code == 200, done.json
        [row] = embedded_store.select("PREFIX ks: <https://w3id.org/kgsched#> SELECT ?l WHERE { GRAPH ?g { "
                                      "?p ks:location ?l } }\n# @values", [{"p": URIRef(done.json["product"])}])
        assert str(row["l"]) == recorded
    grant = client.post("/jobs/claim", headers=geneva)
    assert grant.status_code == 204
    paris_storage = {"storage": FED + "storage/paris-disk"}
    queue_light_curves(embedded_store, app.extensions["kgsched"].queue, 1, start=10)
    grant = client.post("/jobs/claim", headers=geneva).json
    refused = client.post(grant["result_url"], json=result_for(grant["claim_token"], **paris_storage), headers=geneva)
    assert refused.status_code == 400 and "usesStorage" in refused.json["detail"]


def test_the_runner_description_may_carry_a_product_endpoint(client: FlaskClient) -> None:
    """Dave (its owner and registrant) adds an endpoint to the Paris cluster's description."""
    from rdflib import Graph, Literal
    from rdflib.namespace import XSD

    from kgsched.dev.parties import party_registrations

    parts = dict(party_registrations([("runners.ttl", (EXAMPLES / "runners.ttl").read_bytes())]))
    paris = Graph().parse(data=parts[URIRef(FED + "person/dave")], format="turtle")
    paris.add((URIRef(FED + "runner/paris-cluster"), URIRef("https://w3id.org/kgsched#productEndpoint"),
               Literal("http://paris.example.org:8080/p/", datatype=XSD.anyURI)))
    turtle = paris.serialize(format="nt")
    ok = client.post("/registrations", data=turtle, content_type="application/n-triples", headers=ADMIN_HEADERS,
                     query_string={"as": FED + "person/dave"})
    assert ok.status_code in (200, 201), ok.json
    bad = turtle.replace("http://paris.example.org:8080/p/", "file:///etc/")
    refused = client.post("/registrations", data=bad, content_type="application/n-triples", headers=ADMIN_HEADERS,
                          query_string={"as": FED + "person/dave"})
    assert refused.status_code == 422 or refused.status_code == 400, refused.json
    assert "productEndpoint" in json.dumps(refused.json)


def test_ontology_declares_the_new_terms() -> None:
    from kgsched import resources

    graph = resources.ontology_graph()
    for term in (KS.productEndpoint, KS.refusalReason):
        assert graph.value(term, URIRef("http://www.w3.org/2000/01/rdf-schema#label")) is not None
        assert graph.value(term, URIRef("http://www.w3.org/2000/01/rdf-schema#comment")) is not None


def test_sha256_helper_matches_the_example_dataset_checksum() -> None:
    assert sha256_file(EXAMPLES / "data" / "isgri-events-rev2670.csv") == EVENTS_CHECKSUM
    assert os.path.exists(EXAMPLES / "data" / "isgri-events-rev2670.csv")


def test_a_name_an_allowed_module_only_imported_is_refused_in_the_child(tmp_path: Path) -> None:
    guarded = Executor(ProductStore(tmp_path / "products"), EXAMPLES, [str(EXAMPLES / "workflows")],
                       timeout_seconds=60, allowed_modules=("kgsched_examples",))
    # kgsched_examples.astro does "from pathlib import Path": the name passes the prefix check on the
    # implementation string, but the function is pathlib's
    imported = guarded.execute(claim("kgsched_examples.astro:Path"))
    assert imported.outcome == "unhandled_exception" and "defined in module 'pathlib'" in imported.error
    assert guarded.execute(light_curve_job(events())).outcome == "success"


def test_kgsched_runner_builds_its_policy_from_its_description_and_options(tmp_path: Path) -> None:
    import click

    from kgsched.cli.runner import runner_policy

    policy = runner_policy(EXAMPLES / "runners.ttl", FED + "runner/alice-laptop", (), ("kgsched_examples",),
                           ("python",), None)
    assert policy.trusted_verifiers == {str(CAROL), FED + "person/alice"}  # alice-laptop's ks:trusts
    assert policy.allowed_modules == ("kgsched_examples",) and policy.allowed_executables == ("python",)
    assert runner_policy(None, None, (), (), (), None) == RunnerPolicy()  # no description: nothing trusted
    with pytest.raises(click.UsageError, match="dotted Python module"):
        runner_policy(None, None, (), ("not a module",), (), None)
    file = tmp_path / "policy.toml"
    file.write_text("allow_everything = true\n")
    with pytest.raises(click.UsageError, match="unknown key"):
        runner_policy(None, None, (), (), (), file)


def test_a_product_server_behind_a_public_url_reports_locations_under_it(tmp_path: Path) -> None:
    server = ProductServer(ProductStore(tmp_path / "p"), public_url="http://runner.example.org:8700/")
    try:
        assert server.base_url == "http://runner.example.org:8700/products/"
        location = server.url_for("sha256:" + "a" * 64)
        assert is_under(location, server.base_url) and location.endswith("/products/" + "a" * 64)
    finally:
        server.httpd.server_close()
