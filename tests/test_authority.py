"""Who may say what, tried as an attacker would: an ordinary registrant (bob, holding only his own
token) against a real ``kgsched serve`` process on the example federation. Each attack is refused or
has no effect, leaves the store's quad count unchanged, and its legitimate counterpart works
(docs/authority.md)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from conftest import ADMIN
from service_support import (
    ADMIN_HEADERS,
    ALICE,
    ALICE_LAPTOP,
    BOB,
    CAROL,
    FED,
    GENEVA,
    UNIGE,
    ServeProcess,
    bearer,
    http,
    register_examples_over_http,
)

ROOT = Path(__file__).resolve().parent.parent
LIGHT_CURVE = FED + "workflow/light-curve"
EVENTS = FED + "data/isgri-events-rev2670"
KS = "https://w3id.org/kgsched#"
PREFIXES = """@prefix ks: <https://w3id.org/kgsched#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix prov: <http://www.w3.org/ns/prov#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix dct: <http://purl.org/dc/terms/> .
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    with ServeProcess("--store", str(tmp_path_factory.mktemp("authority") / "store")) as served:
        register_examples_over_http(served.url)
        yield served


@pytest.fixture(scope="module")
def tokens(server: ServeProcess) -> dict[str, str]:
    """Agent tokens the administrator hands to bob, alice, carol and unige."""
    issued = {}
    for name, agent in (("bob", BOB), ("alice", ALICE), ("carol", CAROL), ("unige", UNIGE)):
        status, body = http("POST", server.url + "/tokens", body={"agent": str(agent)}, headers=ADMIN_HEADERS)
        assert status == 201, body
        issued[name] = body["token"]
    return issued


def register(server: ServeProcess, token: str, turtle: str) -> tuple[int, dict]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(server.url + "/registrations", data=(PREFIXES + turtle).encode(), method="POST",
                                     headers={**bearer(token), "Content-Type": "text/turtle"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def quads(server: ServeProcess) -> int:
    status, body = http("GET", server.url + "/sparql?query=" + _quote("SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } }"),
                        headers={"Accept": "application/sparql-results+json"})
    assert status == 200, body
    return int(body["results"]["bindings"][0]["n"]["value"])


def _quote(text: str) -> str:
    import urllib.parse

    return urllib.parse.quote(text)


def refused(server: ServeProcess, token: str, turtle: str, fragment: str) -> dict:
    """Register, expect a 403 whose message names ``fragment``, and the store unchanged."""
    before = quads(server)
    status, body = register(server, token, turtle)
    assert status == 403, body
    assert fragment in body["detail"], body["detail"]
    assert quads(server) == before
    return body


def plan(server: ServeProcess, token: str, request: dict, **options: object) -> dict:
    status, body = http("POST", server.url + "/plans", body={"request": request, "options": options},
                        headers=bearer(token))
    assert status == 201, body
    return body


def light_curve(lo: float, hi: float) -> dict:
    return {"workflow": LIGHT_CURVE, "args": {"events": {"dataset": EVENTS}, "energy_min_kev": lo,
                                               "energy_max_kev": hi}}


def root_step(body: dict) -> dict:
    return body["plan"]["steps"][-1]


# -- taking over a registrant ------------------------------------------------------------------------

@pytest.mark.parametrize("victim", [str(ADMIN), "urn:kgsched:agent:local-admin", str(ALICE)])
def test_a_registrant_cannot_register_another_registrants_iri_as_its_runner(server, tokens, victim) -> None:
    refused(server, tokens["bob"], f"""
<{victim}> a ks:JobRunner ; rdfs:label "mine now" ; ks:ownedBy <{BOB}> ;
    ks:atSite <{FED}site/geneva> ; ks:cores 1 ; ks:memoryBytes 1 ; ks:supports ks:PythonCallable ;
    ks:serves ks:Anyone .""", "identity of another agent")
    status, body = http("POST", server.url + "/tokens", body={"agent": victim}, headers=bearer(tokens["bob"]))
    assert status == 403, body


def test_an_owner_registers_its_runner_and_its_runner_token_acts_only_as_the_runner(server, tokens) -> None:
    runner = FED + "runner/bob-box"
    status, body = register(server, tokens["bob"], f"""
<{runner}> a ks:UserRunner ; rdfs:label "Bob's box" ; ks:ownedBy <{BOB}> ;
    ks:atSite <{FED}site/geneva> ; ks:cores 2 ; ks:memoryBytes 2000000000 ; ks:supports ks:PythonCallable ;
    ks:canRead <{EVENTS}> ; ks:usesStorage <{FED}storage/geneva-disk> ; ks:trusts <{CAROL}> ; ks:serves <{BOB}> .""")
    assert status == 201, body
    status, issued = http("POST", server.url + "/tokens", body={"agent": runner}, headers=bearer(tokens["bob"]))
    assert status == 201, issued
    runner_token = issued["token"]
    status, me = http("GET", server.url + "/whoami", headers=bearer(runner_token))
    assert status == 200 and me["agent"] == runner and me["runner_token"] is True
    # the runner token registers nothing and issues nothing: it is not bob
    assert register(server, runner_token, f'<{runner}> rdfs:comment "x" .')[0] == 403
    assert http("POST", server.url + "/tokens", body={}, headers=bearer(runner_token))[0] == 403
    # someone else's runner: no token for bob
    assert http("POST", server.url + "/tokens", body={"agent": str(GENEVA)}, headers=bearer(tokens["bob"]))[0] == 403


def test_a_runner_claimed_for_an_owner_who_did_not_register_it_is_refused(server, tokens) -> None:
    refused(server, tokens["bob"], f"""
<{FED}runner/fake-unige> a ks:JobRunner ; rdfs:label "claims to be unige's" ; ks:ownedBy <{UNIGE}> ;
    ks:atSite <{FED}site/geneva> ; ks:cores 1 ; ks:memoryBytes 1 ; ks:supports ks:PythonCallable ;
    ks:serves ks:Anyone .""", "ks:ownedBy")


def test_an_owner_may_authorise_another_registrant_for_its_runners(server, tokens) -> None:
    status, body = register(server, tokens["unige"], f"""@prefix org: <http://www.w3.org/ns/org#> .
@prefix foaf: <http://xmlns.com/foaf/0.1/> .
<{UNIGE}> a org:Organization ; foaf:name "University of Geneva" ; ks:authorizes <{BOB}> .""")
    assert status == 201, body
    runner = FED + "runner/unige-by-bob"
    status, body = register(server, tokens["bob"], f"""
<{runner}> a ks:JobRunner ; rdfs:label "run by bob for unige" ; ks:ownedBy <{UNIGE}> ;
    ks:atSite <{FED}site/geneva> ; ks:cores 1 ; ks:memoryBytes 1 ; ks:supports ks:PythonCallable ;
    ks:serves ks:Anyone .""")
    assert status == 201, body
    # its tokens are the owner's to issue, not the registrant's
    assert http("POST", server.url + "/tokens", body={"agent": runner}, headers=bearer(tokens["bob"]))[0] == 403
    assert http("POST", server.url + "/tokens", body={"agent": runner}, headers=bearer(tokens["unige"]))[0] == 201


# -- running code of one's choice on volunteers' runners ----------------------------------------------

EVIL = f"""
<{FED}workflow/evil> a ks:Workflow ; rdfs:label "evil" ; ks:version "1" ;
    ks:implementationKind ks:PythonCallable ; ks:implementation "os:system" ; ks:author <{BOB}> ;
    ks:parameter [ ks:name "command" ; ks:parameterType xsd:string ] .
"""


def test_a_workflow_registrant_cannot_state_who_verified_it(server, tokens) -> None:
    refused(server, tokens["bob"], EVIL.replace(f"ks:author <{BOB}> ;", f"ks:author <{BOB}> ; ks:verifiedBy <{CAROL}> ;"),
            "ks:verifiedBy")
    refused(server, tokens["bob"], EVIL + f"""
<{FED}verification/forged> a ks:WorkflowVerification ; dct:creator <{CAROL}> ;
    ks:verifiedWorkflow <{FED}workflow/evil> ; ks:verifiedVersion "1" ;
    ks:verifiedImplementationKind ks:PythonCallable ; ks:verifiedImplementation "os:system" .""", "verifier")


def test_only_the_verifiers_own_statement_makes_a_workflow_runnable_and_a_change_voids_it(server, tokens) -> None:
    request = {"workflow": FED + "workflow/evil", "args": {"command": "touch /tmp/owned"}}
    status, body = register(server, tokens["bob"], EVIL + f"""
<{FED}verification/bob-says> a ks:WorkflowVerification ;
    ks:verifiedWorkflow <{FED}workflow/evil> ; ks:verifiedVersion "1" ;
    ks:verifiedImplementationKind ks:PythonCallable ; ks:verifiedImplementation "os:system" .""")
    assert status == 201, body  # bob may verify in his own graph: only runners trusting bob count it
    step = root_step(plan(server, tokens["alice"], request))
    assert step["decision"] == "cannot", step
    # carol's own verification, in her graph, makes it plannable on runners that trust her
    verification = f"""
<{FED}verification/carol-evil> a ks:WorkflowVerification ; dct:creator <{CAROL}> ;
    ks:verifiedWorkflow <{FED}workflow/evil> ; ks:verifiedVersion "1" ;
    ks:verifiedImplementationKind ks:PythonCallable ; ks:verifiedImplementation "os:system" ."""
    status, body = register(server, tokens["carol"], verification)
    assert status == 201, body
    step = root_step(plan(server, tokens["alice"], request))
    assert step["decision"] == "recompute", step
    # bob changes the implementation: carol's verification no longer counts
    status, body = register(server, tokens["bob"], EVIL.replace('"os:system"', '"subprocess:getoutput"'))
    assert status == 201, body
    step = root_step(plan(server, tokens["alice"], {**request, "args": {"command": "id"}}))
    assert step["decision"] == "cannot", step


# -- poisoning the cache and steering plans ----------------------------------------------------------

@pytest.mark.parametrize("turtle, fragment", [
    ("""<https://w3id.org/kgsched/id/product/forged> a ks:DataProduct ; ks:valueOf <https://w3id.org/kgsched/id/expr/x> .""",
     "reserves"),
    (f"""<{FED}bob/product> a ks:DataProduct ; ks:valueOf <https://w3id.org/kgsched/id/expr/x> ;
        ks:outcome ks:Success ; ks:sizeBytes 1 ; ks:storedAt <{FED}storage/geneva-disk> ;
        prov:wasGeneratedBy <{FED}bob/execution> .""", "ks:DataProduct"),
    (f"""<{FED}bob/execution> a ks:Execution ; prov:wasAssociatedWith <{GENEVA}> .""", "ks:Execution"),
    (f"""<{FED}bob/thing> rdfs:label "x" ; prov:wasAssociatedWith <{GENEVA}> .""", "prov:wasAssociatedWith"),
    (f"""<{FED}bob/stats> a ks:ExecutionStatistics ; ks:runner <{GENEVA}> ; ks:workflow <{LIGHT_CURVE}> ;
        ks:runs 1000 ; ks:meanDurationSeconds 0.001 .""", "ks:ExecutionStatistics"),
    (f"""<{FED}bob/credit> a ks:CreditEntry ; ks:creditedTo <{BOB}> ; ks:amount 100000000 .""", "ks:CreditEntry"),
    (f"""<{FED}bob/token> a ks:AccessToken ; ks:tokenHash "00" ; ks:tokenFor <{ADMIN}> .""", "ks:AccessToken"),
    (f"""<{FED}bob/Sneaky> rdfs:subClassOf ks:Runner .""", "rdfs:subClassOf"),
])
def test_system_facts_cannot_be_registered(server, tokens, turtle, fragment) -> None:
    refused(server, tokens["bob"], turtle, fragment)


def run_job(server: ServeProcess, runner_token: str, job: str, name: str, duration: float) -> dict:
    """Claim jobs as a runner (over HTTP) until ``job`` comes, reporting a success for each."""
    for attempt in range(10):
        status, grant = http("POST", server.url + "/jobs/claim", body={}, headers=bearer(runner_token))
        assert status == 200, grant
        digest = __import__("hashlib").sha256(f"{name}-{attempt}".encode()).hexdigest()
        report = {"claim_token": grant["claim_token"], "outcome": "success", "duration_seconds": duration,
                  "location": f"products/{digest[:16]}", "size_bytes": 10, "checksum": f"sha256:{digest}"}
        status, receipt = http("POST", server.url + f"/jobs/{grant['job']}/result", body=report,
                               headers=bearer(runner_token))
        assert status == 200, receipt
        if grant["job"] == job:
            return receipt
    raise AssertionError(f"job {job} never came")


def credit_of(server: ServeProcess, agent: str) -> Decimal:
    status, body = http("GET", server.url + "/credits?agent=" + _quote(agent), headers=ADMIN_HEADERS)
    assert status == 200, body
    return sum((Decimal(str(entry["by_reason"].get("compute contribution", 0))) for entry in body["agents"]), Decimal(0))


def test_a_reported_duration_is_bounded_by_what_the_service_observed(server, tokens) -> None:
    """Bob's own runner claims a job legitimately and reports 3e9 seconds: the credit and the statistics
    use at most the time between the claim and the report; alice's own product is then reused."""
    runner = FED + "runner/bob-box"  # registered above, trusting carol, serving bob
    status, issued = http("POST", server.url + "/tokens", body={"agent": runner}, headers=bearer(tokens["bob"]))
    assert status == 201, issued
    body = plan(server, tokens["bob"], light_curve(21, 22), preferred_runner=runner)
    [job] = body["jobs"]
    started = time.monotonic()
    receipt = run_job(server, issued["token"], job["job"], "bob-1", 3e9)
    observed = time.monotonic() - started
    assert receipt["state"] == "done"
    credit = credit_of(server, str(BOB))
    assert Decimal(0) < credit < Decimal(str(observed / 60 + 1)), credit
    status, rows = http("GET", server.url + "/sparql?query=" + _quote(
        f"SELECT ?d WHERE {{ ?s a <{KS}ExecutionStatistics> ; <{KS}runner> <{runner}> ; "
        f"<{KS}meanDurationSeconds> ?d }}"), headers={"Accept": "application/sparql-results+json"})
    [row] = rows["results"]["bindings"]
    assert float(row["d"]["value"]) <= observed + 1


def test_the_requesters_own_products_are_reused_and_only_trusted_owners_count(server, tokens) -> None:
    status, issued = http("POST", server.url + "/tokens", body={"agent": str(ALICE_LAPTOP)},
                          headers=bearer(tokens["alice"]))
    assert status == 201, issued
    request = light_curve(23, 24)
    first = plan(server, tokens["alice"], request, preferred_runner=str(ALICE_LAPTOP))
    [job] = first["jobs"]
    run_job(server, issued["token"], job["job"], "alice-1", 1.0)
    again = root_step(plan(server, tokens["alice"], request, trusted_owners=[str(ALICE)]))
    assert again["decision"] == "reuse", again
    # the same product is not trusted by a requester who trusts only unige
    narrowed = root_step(plan(server, tokens["alice"], request, trusted_owners=[str(UNIGE)]))
    assert narrowed["decision"] == "recompute", narrowed


# -- memberships and compute-to-data access ----------------------------------------------------------

def test_a_group_member_counts_only_when_the_member_confirms(server, tokens) -> None:
    group, runner = FED + "group/bobs-friends", FED + "runner/bob-group-box"
    status, body = register(server, tokens["bob"], f"""@prefix foaf: <http://xmlns.com/foaf/0.1/> .
<{group}> a foaf:Group ; foaf:name "Bob's friends" ; foaf:member <{ALICE}> .
<{runner}> a ks:GroupRunner ; rdfs:label "for bob's friends" ; ks:ownedBy <{BOB}> ;
    ks:atSite <{FED}site/geneva> ; ks:cores 4 ; ks:memoryBytes 4000000000 ; ks:supports ks:PythonCallable ;
    ks:canRead <{EVENTS}> ; ks:usesStorage <{FED}storage/geneva-disk> ; ks:trusts <{CAROL}> ; ks:serves <{group}> .""")
    assert status == 201, body
    step = root_step(plan(server, tokens["alice"], light_curve(25, 26)))
    assert runner not in step["candidates"], step
    status, body = register(server, tokens["alice"], f"""@prefix foaf: <http://xmlns.com/foaf/0.1/> .
@prefix org: <http://www.w3.org/ns/org#> .
<{ALICE}> a foaf:Person ; foaf:name "Alice Laurent" ; org:memberOf <{FED}group/integral-team>, <{group}> .""")
    assert status == 201, body
    step = root_step(plan(server, tokens["alice"], light_curve(27, 28)))
    assert runner in step["candidates"], step


def test_a_runner_cannot_grant_itself_compute_to_data_access(server, tokens) -> None:
    runner = FED + "runner/bob-paris"
    spi = json.loads((ROOT / "examples" / "requests" / "spi-acs-light-curve.json").read_text())
    status, body = register(server, tokens["bob"], f"""
<{runner}> a ks:JobRunner ; rdfs:label "bob at paris" ; ks:ownedBy <{BOB}> ;
    ks:atSite <{FED}site/paris> ; ks:cores 64 ; ks:memoryBytes 256000000000 ; ks:supports ks:PythonCallable ;
    ks:holds <{FED}data/spi-acs-rates-2023> ; ks:usesStorage <{FED}storage/paris-disk> ;
    ks:trusts <{CAROL}> ; ks:serves ks:Anyone .""")
    assert status == 201, body
    step = root_step(plan(server, tokens["alice"], spi))
    assert runner not in step["candidates"], step
    assert FED + "runner/paris-cluster" in step["candidates"], step


# -- stale tokens ------------------------------------------------------------------------------------

def test_removing_a_runner_revokes_its_tokens_and_a_reused_iri_inherits_none(server, tokens) -> None:
    runner = FED + "runner/fleeting"
    description = f"""
<{runner}> a ks:UserRunner ; rdfs:label "fleeting" ; ks:ownedBy <%s> ;
    ks:atSite <{FED}site/geneva> ; ks:cores 1 ; ks:memoryBytes 1 ; ks:supports ks:PythonCallable ;
    ks:serves ks:Anyone ."""
    assert register(server, tokens["bob"], description % BOB)[0] == 201
    status, issued = http("POST", server.url + "/tokens", body={"agent": runner}, headers=bearer(tokens["bob"]))
    assert status == 201
    old = issued["token"]
    assert http("POST", server.url + "/jobs/claim", body={}, headers=bearer(old))[0] in (200, 204)
    # bob re-registers it as no runner at all: its token stops at once (no cache window)
    assert register(server, tokens["bob"], f'<{runner}> rdfs:label "gone" .')[0] == 201
    assert http("POST", server.url + "/jobs/claim", body={}, headers=bearer(old))[0] == 401
    # back as a runner: the old token was deleted with the removal and does not come back
    assert register(server, tokens["bob"], description % BOB)[0] == 201
    assert http("GET", server.url + "/whoami", headers=bearer(old))[0] == 401
    status, body = http("DELETE", server.url + "/registrations", headers=bearer(tokens["bob"]))
    assert status == 200, body
    assert http("GET", server.url + "/whoami", headers=bearer(old))[0] == 401
    # alice registers the same IRI: bob's old token is still nobody's
    assert register(server, tokens["alice"], description % ALICE)[0] == 201
    assert http("GET", server.url + "/whoami", headers=bearer(old))[0] == 401
    status, issued = http("POST", server.url + "/tokens", body={"agent": runner}, headers=bearer(tokens["alice"]))
    assert status == 201
    assert http("GET", server.url + "/whoami", headers=bearer(issued["token"]))[1]["agent"] == runner
