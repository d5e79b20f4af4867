"""A living federation, with real processes: runners that join after the plan take its jobs (late binding).

The service runs with a one-second head start for the plan's runners (``PREFERENCE_SECONDS``), so the
tests need not wait the default half minute; what they assert is who ran the job, never how fast.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rdflib import URIRef
from test_end_to_end import decisions, executions_of, light_curve, register_only, start_with_faults, wait_for

from kgsched.dev.federation import FED, Federation
from kgsched.dev.oxigraph_server import free_port
from kgsched.runner.agent import ServiceClient, ServiceError
from kgsched.runner.storage import ProductServer, ProductStore

HEAD_START = "1"
JOBS = "https://w3id.org/kgsched/graph/jobs"


@pytest.fixture
def federation(tmp_path: Path):
    with Federation(tmp_path, service_env={"KGSCHED_PREFERENCE_SECONDS": HEAD_START}) as running:
        yield running


def test_a_runner_registered_after_the_plan_runs_its_jobs(federation: Federation) -> None:
    """(a) The plan names Paris, the only runner known then; Paris never starts. Geneva joins after the
    plan and, once Paris's head start is over, runs the job."""
    alice = start_with_faults(federation)
    register_only(federation, "paris-cluster")
    answer = federation.submit(alice, light_curve(20, 40))
    [step] = answer["plan"]["steps"]
    assert step["decision"] == "recompute" and step["runner"] == FED + "runner/paris-cluster"
    [job] = [j["job"] for j in answer["jobs"]]
    assert federation.jobs([job])[0]["eligible_runners"] == [FED + "runner/paris-cluster"]

    federation.start_runner("geneva-batch")  # registers now: unknown when the plan was made
    [state] = federation.wait_for_jobs([job], timeout=90)
    assert state["state"] == "done"
    assert state["eligible_runners"] == [FED + "runner/paris-cluster"]  # the plan is not rewritten
    [run] = executions_of(federation, answer["plan"]["root"])
    assert run["runner"] == FED + "runner/geneva-batch" and run["outcome"].endswith("#Success")


def test_an_anonymous_job_token_runner_started_after_the_plan_takes_its_job(federation: Federation) -> None:
    """(e) The demo's volunteer at Garching (an anonymous job-token runner, one job per token) is started
    *for* a job that was planned before it existed, takes it with its one-job token, and leaves."""
    alice = start_with_faults(federation)
    port = free_port()
    federation.start_runner("geneva-batch", listen=f"127.0.0.1:{port}")
    soft, hard = light_curve(20, 40), light_curve(40, 100)
    for request in (soft, hard):
        federation.wait_for_jobs([j["job"] for j in federation.submit(alice, request)["jobs"]])
    federation.stop_runner("geneva-batch")  # still registered: the planner still counts on it
    server = ProductServer(ProductStore(federation.workdir / "products-geneva-batch"), "127.0.0.1", port).start()
    try:
        answer = federation.submit(alice, {"workflow": FED + "workflow/combine-light-curves",
                                           "args": {"soft": soft, "hard": hard}})
        assert sorted(decisions(answer["plan"])) == [("combine-light-curves", "recompute"),
                                                     ("light-curve", "reuse"), ("light-curve", "reuse")]
        [combine] = [s for s in answer["plan"]["steps"] if s["decision"] == "recompute"]
        assert combine["runner"] == FED + "runner/geneva-batch"
        [job] = [j["job"] for j in answer["jobs"]]
        assert FED + "runner/garching-volunteer" not in federation.jobs([job])[0]["eligible_runners"]

        volunteer = federation.start_runner("garching-volunteer", once=True)  # after the plan
        [state] = federation.wait_for_jobs([job], timeout=90)
        assert state["state"] == "done"
        assert volunteer.wait(timeout=30) == 0  # --once: one job, then it leaves by itself
        [run] = executions_of(federation, answer["plan"]["root"])
        assert run["runner"] == FED + "runner/garching-volunteer" and run["outcome"].endswith("#Success")
    finally:
        server.stop()


def in_touch(federation: Federation, runner: str) -> bool:
    return bool(federation.named("runner-contacts", [{"runner": URIRef(runner), "jobs": URIRef(JOBS)}]))


@pytest.fixture
def patient_federation(tmp_path: Path):
    """A federation whose plan runners keep a long head start: only a re-plan gives the job to a newcomer."""
    with Federation(tmp_path, service_env={"KGSCHED_PREFERENCE_SECONDS": "600"}) as running:
        yield running


def test_a_job_whose_only_able_runner_left_is_stalled_and_runs_after_replanning(
        patient_federation: Federation) -> None:
    """(b) Paris, the only able runner, deregisters: the job is reported stalled with the reason. Bob may
    not re-plan Alice's plan; Alice does once Geneva has joined, and Geneva runs the job."""
    federation = patient_federation
    alice = start_with_faults(federation)
    federation.start_runner("paris-cluster")
    wait_for(lambda: in_touch(federation, FED + "runner/paris-cluster"), "Paris to poll the service")
    federation.stop_runner("paris-cluster")  # registered, recently in touch, not running
    answer = federation.submit(alice, light_curve(20, 40))
    plan_id = answer["plan"]["plan"].rsplit("/", 1)[-1]
    [job] = [j["job"] for j in answer["jobs"]]
    as_alice = ServiceClient(federation.url, alice)
    before = as_alice.call("GET", f"/plans/{plan_id}/jobs")[1]
    assert before["stalled"] is False and before["jobs"][0]["stalled"] is None

    federation.admin.call("DELETE", "/registrations", query={"as": FED + "person/dave"})  # Paris leaves
    after = as_alice.call("GET", f"/plans/{plan_id}/jobs")[1]
    assert after["stalled"] is True and after["replan_url"].endswith(f"/plans/{plan_id}/replan")
    [stalled] = after["jobs"]
    assert stalled["state"] == "queued", stalled
    assert stalled["stalled"].startswith("waiting for a runner able to run light-curve for alice: ")
    listed = {j["job"]: j for j in as_alice.call("GET", "/jobs")[1]["jobs"]}
    assert listed[job]["stalled"] == stalled["stalled"]

    bob = ServiceClient(federation.url, federation.token_for(FED + "person/bob"))
    with pytest.raises(ServiceError) as refused:
        bob.call("POST", f"/plans/{plan_id}/replan", {})
    assert refused.value.status == 403

    federation.start_runner("geneva-batch")  # joins later; the head start (600 s) keeps it off the old job
    status, replanned = as_alice.call("POST", f"/plans/{plan_id}/replan", {})
    assert status == 201 and replanned["revision_of"] == answer["plan"]["plan"]
    [step] = replanned["plan"]["steps"]
    assert step["decision"] == "recompute" and step["runner"] == FED + "runner/geneva-batch"
    assert [(j["job"], j["new"], j["refreshed"]) for j in replanned["jobs"]] == [(job, False, True)]
    [state] = federation.wait_for_jobs([job], timeout=90)
    assert state["state"] == "done"
    [run] = executions_of(federation, answer["plan"]["root"])
    assert run["runner"] == FED + "runner/geneva-batch"
    # what is done stays done: re-planning again reuses the product and queues nothing
    status, again = as_alice.call("POST", f"/plans/{plan_id}/replan", {})
    assert again["plan"]["summary"] == {"reuse": 1, "recompute": 0, "cannot": 0} and again["jobs"] == []
