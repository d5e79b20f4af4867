"""Calling a remote OGC API – Processes service: describe, execute asynchronously, poll, fetch results.

This is how a runner agent in service mode (``kgsched runner --service``) carries out a
``ks:WebService`` job (stdlib HTTP only, like the rest of the runner). The steps are the standard's
(OGC 18-062r2):

* ``GET {endpoint}/processes/{id}`` — the process description: the arguments are checked against
  the inputs it declares before anything is sent;
* ``POST {endpoint}/processes/{id}/execution`` with ``Prefer: respond-async`` — 201 and a
  ``Location`` of the job (a service that only executes synchronously answers 200 with the result,
  which is taken as it is);
* ``GET {endpoint}/jobs/{jobId}`` until ``status`` is ``successful``, ``failed`` or ``dismissed``;
* ``GET {endpoint}/jobs/{jobId}/results`` — the bytes that become the product.

Inputs: a literal argument is sent as its JSON value; a data argument (a dataset or an upstream
product, staged and checksum-verified like for any runner) is sent inline — as its parsed JSON
when it is JSON, otherwise as a qualified value ``{"value": <base64>, "encoding": "base64",
"mediaType": "application/octet-stream"}``. A JSON result is stored in canonical form (sorted keys,
no spaces) so the same answer always has the same checksum.

A failed job whose message contains ``AnalysisException: <why>`` is a scientific no-result (the
convention a service follows to have it cached, like ``kgsched.analysis.AnalysisException`` in
Python); any other failure is an unhandled exception, retried on another runner.

Every failure a user can meet is raised as :class:`ServiceCallError` with a sentence that says what
happened (service down, no such process, an input the process does not declare, a failed job).
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FINISHED = {"successful", "failed", "dismissed"}
ANALYSIS_MARK = "AnalysisException:"


class ServiceCallError(Exception):
    """The remote service could not produce the result; the message says why, in words."""


class RemoteAnalysisException(Exception):
    """The remote job failed with a message containing ``AnalysisException:`` — the service's way of
    saying "a scientific no-result" (OGC API – Processes has no word for it): cached like a product."""


@dataclass
class OgcProcessesClient:
    endpoint: str
    timeout: float = 30.0

    @property
    def base(self) -> str:
        return self.endpoint.rstrip("/")

    def _request(self, method: str, url: str, payload: Any = None,
                 headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        data = None if payload is None else json.dumps(payload).encode()
        all_headers = {"Accept": "application/json", **(headers or {})}
        if data is not None:
            all_headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - http(s) only
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers or {}), exc.read()
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ServiceCallError(f"the service at {self.endpoint} is not reachable ({reason}); is it running?") \
                from None

    def process_ids(self) -> list[str]:
        status, _, body = self._request("GET", f"{self.base}/processes?f=json")
        if status != 200:
            raise ServiceCallError(f"the service at {self.endpoint} does not list its processes "
                                   f"(GET /processes answered {status}); is it an OGC API - Processes?")
        return sorted(p.get("id", "?") for p in _json(body, "process list").get("processes", []))

    def describe(self, process: str) -> dict[str, Any]:
        """The process description; a clear error when the service has no such process."""
        quoted = urllib.parse.quote(process, safe="")
        status, _, body = self._request("GET", f"{self.base}/processes/{quoted}?f=json")
        if status == 404:
            try:
                offered = ", ".join(self.process_ids()) or "none"
            except ServiceCallError:
                offered = "unknown"
            raise ServiceCallError(f"the service at {self.endpoint} has no process {process!r} "
                                   f"(it offers: {offered})")
        if status != 200:
            raise ServiceCallError(f"describing process {process!r} at {self.endpoint} failed: HTTP {status}: "
                                   f"{_excerpt(body)}")
        return _json(body, f"description of {process!r}")

    def execute(self, process: str, inputs: dict[str, Any]) -> tuple[str | None, bytes | None]:
        """Start the process; (job URL, None) for an asynchronous job, (None, result) for a synchronous answer."""
        quoted = urllib.parse.quote(process, safe="")
        status, headers, body = self._request(
            "POST", f"{self.base}/processes/{quoted}/execution", {"inputs": inputs, "response": "raw"},
            {"Prefer": "respond-async"})
        if status == 201:
            location = _header(headers, "Location")
            if not location:
                raise ServiceCallError(f"the service at {self.endpoint} accepted the job but gave no Location")
            job_url = urllib.parse.urljoin(self.base + "/", location)
            if urllib.parse.urlsplit(job_url).scheme not in ("http", "https"):
                raise ServiceCallError(f"the service at {self.endpoint} gave a job Location that is no http(s) URL")
            return job_url, None
        if status == 200:
            return None, body
        raise ServiceCallError(f"the service at {self.endpoint} refused to execute {process!r}: HTTP {status}: "
                               f"{_excerpt(body)}")

    def status(self, job_url: str) -> dict[str, Any]:
        status, _, body = self._request("GET", f"{job_url}?f=json")
        if status != 200:
            raise ServiceCallError(f"job {job_url}: status request answered HTTP {status}: {_excerpt(body)}")
        return _json(body, f"status of job {job_url}")

    def results(self, job_url: str) -> bytes:
        status, _, body = self._request("GET", f"{job_url}/results?f=json")
        if status != 200:
            raise ServiceCallError(f"job {job_url}: results request answered HTTP {status}: {_excerpt(body)}")
        return body

    def dismiss(self, job_url: str) -> None:
        with contextlib.suppress(ServiceCallError):
            self._request("DELETE", job_url)


def declared_inputs(description: dict[str, Any]) -> dict[str, dict[str, Any]]:
    inputs = description.get("inputs", {})
    if isinstance(inputs, list):  # OGC API - Processes 1.0 drafts listed them
        return {i.get("id"): i for i in inputs if isinstance(i, dict)}
    return inputs if isinstance(inputs, dict) else {}


def input_value(argument: dict[str, Any], staged: Any) -> Any:
    """A literal as its JSON value; a file inline (parsed JSON, or base64 as a qualified value)."""
    if argument.get("kind") == "literal":
        return staged
    raw = Path(staged).read_bytes()
    try:
        return json.loads(raw)
    except ValueError:
        return {"value": base64.b64encode(raw).decode(), "encoding": "base64",
                "mediaType": "application/octet-stream"}


def canonical(result: bytes) -> bytes:
    """JSON in canonical form (same answer, same checksum); anything else as it came."""
    try:
        return json.dumps(json.loads(result), sort_keys=True, separators=(",", ":"), allow_nan=False).encode()
    except ValueError:
        return result


@dataclass
class ServiceCall:
    """One job on a remote service: check the inputs, execute, poll until finished, fetch the result."""

    client: OgcProcessesClient
    process: str
    cancel: threading.Event = field(default_factory=threading.Event)
    deadline: float | None = None  # time.monotonic() value
    poll_seconds: float = 0.1
    max_poll_seconds: float = 2.0

    def inputs_for(self, arguments: dict[str, dict[str, Any]], values: dict[str, Any],
                   mapping: dict[str, str]) -> dict[str, Any]:
        declared = declared_inputs(self.client.describe(self.process))
        inputs: dict[str, Any] = {}
        for name, argument in sorted(arguments.items()):
            remote = mapping.get(name, name)
            if remote not in declared:
                raise ServiceCallError(
                    f"process {self.process!r} at {self.client.endpoint} does not declare an input {remote!r} "
                    f"(for the workflow's parameter {name!r}); it declares: {', '.join(sorted(declared)) or 'none'}. "
                    "Map the parameter with ks:processInput, or fix the workflow's parameters")
            inputs[remote] = input_value(argument, values[name])
        missing = [i for i, d in sorted(declared.items()) if int(d.get("minOccurs", 1) or 0) > 0 and i not in inputs]
        if missing:
            raise ServiceCallError(f"process {self.process!r} at {self.client.endpoint} requires input(s) "
                                   f"{', '.join(missing)}, which no workflow parameter is mapped to")
        return inputs

    def run(self, inputs: dict[str, Any]) -> bytes:
        job_url, immediate = self.client.execute(self.process, inputs)
        if job_url is None:
            assert immediate is not None
            return canonical(immediate)
        wait = self.poll_seconds
        while True:
            info = self.client.status(job_url)
            state = str(info.get("status", "")).lower()
            if state in FINISHED:
                break
            if self.cancel.is_set() or (self.deadline is not None and time.monotonic() > self.deadline):
                self.client.dismiss(job_url)
                why = "cancelled (the runner is stopping)" if self.cancel.is_set() else "timed out"
                raise ServiceCallError(f"job {job_url} {why}; it was dismissed at the service")
            self.cancel.wait(wait)
            wait = min(self.max_poll_seconds, wait * 1.5)
        if state != "successful":
            message = str(info.get("message") or "no message")
            if state == "failed" and ANALYSIS_MARK in message:
                raise RemoteAnalysisException(message.split(ANALYSIS_MARK, 1)[1].strip())
            raise ServiceCallError(f"the service answered that job {job_url} of process {self.process!r} "
                                   f"{state}: {message}")
        return canonical(self.client.results(job_url))


def _json(body: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:
        raise ServiceCallError(f"the {what} is not JSON: {_excerpt(body)}") from None
    if not isinstance(value, dict):
        raise ServiceCallError(f"the {what} is not a JSON object")
    return value


def _header(headers: dict[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None


def _excerpt(body: bytes, limit: int = 300) -> str:
    text = body.decode(errors="replace").strip()
    try:
        parsed = json.loads(text)
        if isinstance(parsed, dict):
            text = str(parsed.get("description") or parsed.get("detail") or parsed.get("title") or text)
    except ValueError:
        pass
    return text[:limit]
