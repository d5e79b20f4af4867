"""The runner agent's loop: register, then claim → check policy → stage → execute → store → report, with heartbeats.

Joining is one command (``kgsched runner``). Given its owner's token and its own description, the
agent registers (or updates) the description under the owner, issues itself a runner token, and
works with that; given a runner's own token it works directly. While a job runs, a heartbeat thread
extends the lease and reports progress; if the lease is lost (409), the job is abandoned — a result
from an expired lease would be refused anyway. On SIGTERM the agent stops claiming, lets the running
job finish within a grace period, and otherwise kills it and hands the job back (reported as an
unhandled exception, so the service retries it elsewhere at once instead of waiting for the lease).

Each product is also written to the runner's site storages that declare a kind (a shared directory,
an S3-compatible bucket; kgsched.runner.site_storage) and reported as replicas, so it outlives the
runner; replicas of inputs that could not be read are reported before the result.

Right after a claim, before anything is staged, the job is checked against the owner's local policy
(kgsched.runner.policy: trusted verifiers, allowed Python modules and executables); a job the policy
does not allow is handed back with the reason (``POST /jobs/<id>/refuse``) and never touched.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from kgsched.runner.executor import ExecutionResult, Executor
from kgsched.runner.policy import PolicyRefusal, RunnerPolicy
from kgsched.runner.storage import ProductServer

log = logging.getLogger("kgsched.runner")


class ServiceError(Exception):
    def __init__(self, status: int, payload: Any) -> None:
        detail = payload.get("detail") if isinstance(payload, dict) else payload
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.payload = payload


@dataclass
class ServiceClient:
    """The service's REST API, as a runner uses it (stdlib HTTP: nothing to install on a runner)."""

    base_url: str
    token: str
    timeout: float = 30.0

    def call(self, method: str, path: str, payload: Any = None, *, body: bytes | None = None,
             content_type: str = "application/json", query: dict[str, str] | None = None) -> tuple[int, Any]:
        url = self.base_url.rstrip("/") + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        data = body if body is not None else (None if payload is None else json.dumps(payload).encode())
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = raw.decode(errors="replace")
            raise ServiceError(exc.code, parsed) from None

    def whoami(self) -> dict[str, Any]:
        return self.call("GET", "/whoami")[1]

    def register(self, turtle: bytes, as_registrant: str | None = None) -> dict[str, Any]:
        query = {"as": as_registrant} if as_registrant else None
        return self.call("POST", "/registrations", body=turtle, content_type="text/turtle", query=query)[1]

    def issue_token(self, agent: str, label: str) -> str:
        return self.call("POST", "/tokens", {"agent": agent, "label": label})[1]["token"]

    def claim(self) -> dict[str, Any] | None:
        status, body = self.call("POST", "/jobs/claim", {})
        return body if status == 200 else None

    def heartbeat(self, job: str, claim_token: str, progress: float | None) -> None:
        payload: dict[str, Any] = {"claim_token": claim_token}
        if progress is not None:
            payload["progress"] = progress
        self.call("POST", f"/jobs/{job}/heartbeat", payload)

    def report(self, job: str, report: dict[str, Any]) -> dict[str, Any]:
        return self.call("POST", f"/jobs/{job}/result", report)[1]

    def replica_failures(self, job: str, claim_token: str, failures: list[dict[str, str]]) -> dict[str, Any]:
        return self.call("POST", f"/jobs/{job}/replica-failures",
                         {"claim_token": claim_token, "failures": failures})[1]

    def refuse(self, job: str, claim_token: str, reason: str) -> dict[str, Any]:
        return self.call("POST", f"/jobs/{job}/refuse", {"claim_token": claim_token, "reason": reason})[1]


@dataclass
class RunnerAgent:
    client: ServiceClient
    executor: Executor
    server: ProductServer
    once: bool = False
    poll_seconds: float = 1.0
    heartbeat_seconds: float | None = None  # default: a third of the lease
    grace_seconds: float = 30.0
    max_idle_seconds: float | None = None  # with --once: give up after waiting this long for a job
    policy: RunnerPolicy = field(default_factory=RunnerPolicy)  # the default allows nothing
    stopping: threading.Event = field(default_factory=threading.Event)
    jobs_done: int = 0

    def stop(self) -> None:
        """Stop claiming; the job in hand gets ``grace_seconds`` to finish, then is killed and handed back."""
        if not self.stopping.is_set():
            self.stopping.set()
            # a daemon timer: an idle runner exits at once instead of waiting out the grace period
            deadline = threading.Timer(self.grace_seconds, self.executor.cancel.set)
            deadline.daemon = True
            deadline.start()

    def run(self) -> int:
        idle_since = time.monotonic()
        while not self.stopping.is_set():
            try:
                job = self.client.claim()
            except ServiceError as exc:
                if exc.status == 503:  # every bid collided: back off and try again
                    time.sleep(self.poll_seconds / 4)
                    continue
                raise
            except OSError as exc:
                log.warning("service unreachable (%s); retrying", exc)
                self.stopping.wait(self.poll_seconds)
                continue
            if job is None:
                if self.once and self.max_idle_seconds is not None and \
                        time.monotonic() - idle_since > self.max_idle_seconds:
                    log.info("no job within %.0f s; leaving", self.max_idle_seconds)
                    return 0
                self.stopping.wait(self.poll_seconds)
                continue
            self.process(job)
            self.jobs_done += 1
            idle_since = time.monotonic()
            if self.once:
                break
        return 0

    def process(self, job: dict[str, Any]) -> None:
        name = job["workflow"].get("iri", "?").rsplit("/", 1)[-1]
        log.info("claimed job %s (%s, expression %s)", job["job"], name, job.get("address", "")[:12])
        if not self.allowed(job):
            return
        started = dt.datetime.now(dt.UTC)
        lost_lease = threading.Event()
        beating = threading.Event()
        beat = threading.Thread(target=self._heartbeats, args=(job, beating, lost_lease), daemon=True)
        beat.start()
        try:
            result = self.executor.execute(job)
            replicas = self.store_replicas(job, result)  # an upload may take long: the heartbeat keeps the lease
        finally:
            beating.set()
            beat.join()
        if lost_lease.is_set():
            log.warning("job %s: lease lost while running; the result is dropped", job["job"])
            return
        self.report_replica_failures(job, result)
        report = self.report_for(job, result, started, replicas)
        try:
            receipt = self.client.report(job["job"], report)
            log.info("job %s: %s (%s)", job["job"], result.outcome, receipt.get("detail", ""))
        except ServiceError as exc:
            log.warning("job %s: result refused: %s", job["job"], exc)

    def allowed(self, job: dict[str, Any]) -> bool:
        """The owner's policy check, before anything is staged; a refused job is handed back with the reason."""
        try:
            self.policy.check(job)
            return True
        except PolicyRefusal as exc:
            reason = f"refused by the runner's policy: {exc.reason}"
        log.warning("job %s: %s", job["job"], reason)
        try:
            answer = self.client.refuse(job["job"], job["claim_token"], reason)
            log.info("job %s handed back: %s", job["job"], answer.get("detail", ""))
        except ServiceError as exc:  # e.g. the lease ran out meanwhile: the job goes back to the queue anyway
            log.warning("job %s: the refusal was not recorded: %s", job["job"], exc)
        return False

    def report_replica_failures(self, job: dict[str, Any], result: ExecutionResult) -> None:
        """Tell the service which replicas of the inputs could not be read, so it stops offering them
        (only while the claim is held, before the result: kgsched.jobs.replica_failures)."""
        if not result.replica_failures:
            return
        try:
            answer = self.client.replica_failures(job["job"], job["claim_token"], result.replica_failures[:64])
            log.info("job %s: replicas marked %s", job["job"], answer.get("marked"))
        except (ServiceError, OSError) as exc:
            log.warning("job %s: the replica failures were not recorded: %s", job["job"], exc)

    def store_replicas(self, job: dict[str, Any], result: ExecutionResult) -> list[dict[str, str]]:
        """Copy the product into the runner's site storages (a shared directory, an S3 bucket), so it
        outlives this runner; the replicas written, for the report."""
        if result.product is None:
            return []
        return self.executor.storage_access.write(result.product.path, result.product.checksum,
                                                  job.get("storages") or [])

    def report_for(self, job: dict[str, Any], result: ExecutionResult, started: dt.datetime,
                   replicas: list[dict[str, str]] | None = None) -> dict[str, Any]:
        report: dict[str, Any] = {
            "claim_token": job["claim_token"], "outcome": result.outcome,
            "duration_seconds": round(result.duration_seconds, 6),
            "started_at": started.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
        if result.error:
            report["error_message"] = result.error
        if result.product is not None:
            report.update(location=self.server.url_for(result.product.checksum), size_bytes=result.product.size_bytes,
                          checksum=result.product.checksum)
            if job.get("storage"):
                report["storage"] = job["storage"][0]
            if replicas:  # the copies in site storage (store_replicas), which outlive this runner
                report["replicas"] = replicas
        if result.notebook is not None:  # the executed notebook, whatever the outcome
            report["executed_notebook"] = {"location": self.server.url_for(result.notebook.checksum),
                                           "checksum": result.notebook.checksum,
                                           "size_bytes": result.notebook.size_bytes}
        return report

    def _heartbeats(self, job: dict[str, Any], done: threading.Event, lost: threading.Event) -> None:
        interval = self.heartbeat_seconds or max(0.2, float(job.get("lease_seconds", 30)) / 3)
        started = time.monotonic()
        while not done.wait(interval):
            try:
                elapsed = time.monotonic() - started
                self.client.heartbeat(job["job"], job["claim_token"], None)
                log.debug("job %s: heartbeat after %.1f s", job["job"], elapsed)
            except ServiceError as exc:
                if exc.status in (403, 409):
                    lost.set()
                    self.executor.cancel.set()
                    return
                log.warning("heartbeat failed: %s", exc)
            except OSError as exc:
                log.warning("heartbeat failed: %s", exc)
