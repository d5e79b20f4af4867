"""Carries out one job on this machine: stage inputs, run the implementation, store the product.

Implementations
  * ``ks:PythonCallable`` — ``module:function`` called in a child process (kgsched.runner.call) with
    the arguments as keywords: literals as Python values, data as local file paths. It returns a
    JSON-serialisable value, bytes, or a Path; that becomes the product.
  * ``ks:CommandLine`` — a template such as ``python -m tool --input {events} --out {output}``,
    split like a shell would (shlex) but run without one; each ``{name}`` is replaced by the
    argument (a literal's lexical form or a local path) inside a single argv element, so arguments
    cannot inject commands. ``{output}`` is where the product goes (stdout otherwise). Placeholders
    are plain names (no ``{x.attr}``, ``{x[0]}``, ``{x!r}`` or format specs). An argument can never
    become an option of the tool: a value starting with ``-`` that fills a *standalone* placeholder
    (an argv element that is exactly ``{name}``) is refused — the job ends as an unhandled exception
    saying so — unless the template declares ``--`` (end of options) in an earlier argv element, as
    in ``grep -e {pattern} -- {file}``. A placeholder inside a longer element (``--min={x}``) cannot
    start an option, so its value may start with ``-``.
  * ``ks:Notebook`` — a Jupyter notebook, its path relative to the runner's workflow path, executed
    with papermill in a child process (kgsched.runner.notebook): the arguments are injected after
    its ``parameters`` cell, with ``output``, the path where it writes its product. The executed
    notebook is stored too and reported with the result (``ks:executedNotebook``).
  * ``ks:WebService`` — a process of a remote OGC API – Processes service, called by a service
    runner (kgsched.runner.ogc) with the endpoint and input mapping its grant carries; the result
    it fetches is the product.

Staging (before anything runs; a refusal is a ``StagingError``, reported as an unhandled exception)
  * datasets with a local ``ks:location`` are read only from inside ``--data-dir``: the path is
    resolved, so ``..``, absolute paths and symlinks that lead outside it are refused; the dataset's
    ``ks:checksum``, where the graph has one, must match the file;
  * products (and any dataset with an http(s) location) are fetched only from ``http://`` or
    ``https://`` URLs under one of the base URLs the claim lists in ``product_sources`` (the registered
    storages' ``ks:baseUrl`` and runners' ``ks:productEndpoint``; kgsched.product_urls) — never
    ``file://``, a local path or an arbitrary URL — and only with a checksum, verified on arrival;
  * a product whose claim lists ``replicas`` is read from the first that works here, in the claim's
    order (the runner's own site storage first): a shared directory, an S3 bucket
    (kgsched.runner.site_storage) or a product server; each replica that is missing, unreachable or
    corrupt is noted, and the agent reports it so the service marks it (the job fails only when none
    can be read).

Outcome rules (the seeds' ODA convention): exit 0 is a success; a raised ``AnalysisException`` (exit
status 65 for commands) is a scientific no-result — a valid, cacheable product; anything else is an
unhandled exception, reported with its traceback and retried elsewhere by the service.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import string
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kgsched.product_urls import refusal
from kgsched.runner.call import EXIT_ANALYSIS_EXCEPTION
from kgsched.runner.kinds import COMMAND_LINE, NOTEBOOK, PYTHON_CALLABLE, WEB_SERVICE
from kgsched.runner.site_storage import NotFromHere, ReplicaUnreadable, StorageAccess, verify_local
from kgsched.runner.storage import CorruptTransfer, ProductStore, StoredProduct, sha256_file

Outcome = Literal["success", "analysis_exception", "unhandled_exception"]
MAX_ERROR_CHARS = 20_000


@dataclass
class ExecutionResult:
    outcome: Outcome
    duration_seconds: float
    product: StoredProduct | None = None
    error: str | None = None
    used: list[str] = field(default_factory=list)  # IRIs of the datasets and products read
    notebook: StoredProduct | None = None  # a notebook workflow's executed notebook (any outcome)
    #: Replicas of inputs that could not be read ({replica, status, reason}), for the service to mark.
    replica_failures: list[dict[str, str]] = field(default_factory=list)


class StagingError(Exception):
    """An input could not be made available here (missing dataset, corrupted transfer)."""


@dataclass
class Executor:
    store: ProductStore
    data_dir: Path
    python_path: list[str] = field(default_factory=list)
    timeout_seconds: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event)  # set: kill the running child
    #: With a policy: the allowed module prefixes, checked again in the child against the function's
    #: own ``__module__`` (a name an allowed module merely imported, like ``os.system``, is refused).
    allowed_modules: tuple[str, ...] | None = None
    #: This machine's side of the site storages (credentials, mount points): kgsched.runner.site_storage.
    storage_access: StorageAccess = field(default_factory=StorageAccess)
    _checksums: dict[tuple[str, int, int, int], str] = field(default_factory=dict, repr=False)
    _failures: list[dict[str, str]] = field(default_factory=list, repr=False)

    # -- inputs ----------------------------------------------------------------------------------
    def stage(self, arguments: dict[str, Any], product_sources: Sequence[str] = ()) -> tuple[
            dict[str, Any], dict[str, str], list[str]]:
        """Python values and command-line strings for every argument, and the entities used.

        ``product_sources`` are the base URLs the claim lists (kgsched.product_urls): the only places
        a product, or a dataset that is not local, is fetched from."""
        values: dict[str, Any] = {}
        texts: dict[str, str] = {}
        used: list[str] = []
        for name, argument in arguments.items():
            kind = argument.get("kind")
            if kind == "literal":
                values[name] = argument["value"]
                texts[name] = str(argument.get("lexical", argument["value"]))
                continue
            path = self._stage_data(name, argument, product_sources)
            values[name] = texts[name] = str(path)
            used.append(argument.get("dataset") or argument.get("product"))
        return values, texts, [u for u in used if u]

    def _stage_data(self, name: str, argument: dict[str, Any], product_sources: Sequence[str] = ()) -> Path:
        kind = argument.get("kind")
        if kind not in ("dataset", "product"):
            raise StagingError(f"argument {name!r} has an unknown kind {kind!r}")
        location, checksum = argument.get("location"), argument.get("checksum")
        if not location or not isinstance(location, str):
            raise StagingError(f"argument {name!r} has no location to read it from")
        if kind == "product" and isinstance(argument.get("replicas"), list):
            return self._from_replicas(name, argument["replicas"], checksum, product_sources)
        if kind == "product" or location.startswith(("http://", "https://")):
            return self._fetch(name, kind, location, checksum, product_sources)
        path = self._local_dataset(name, location)
        if checksum and self._checksum(path) != checksum:
            raise StagingError(f"argument {name!r}: {path} does not match checksum {checksum}")
        return path

    def _fetch(self, name: str, kind: str, location: str, checksum: str | None,
               product_sources: Sequence[str]) -> Path:
        """A product (always) or a remote dataset: only from under a listed source, checksum verified."""
        why = refusal(location, product_sources)
        if why is not None:
            raise StagingError(f"{kind} {name!r} is not fetched: {why}")
        if not checksum:
            raise StagingError(f"argument {name!r} has no checksum to verify its transfer")
        try:
            return self.store.fetch(location, checksum)
        except ValueError as exc:
            raise StagingError(f"argument {name!r}: {exc}") from exc
        except CorruptTransfer as exc:
            raise StagingError(f"corrupted transfer of {name!r}, not used: {exc}") from exc
        except OSError as exc:
            raise StagingError(f"cannot fetch {name!r} from {location}: {exc}") from exc

    def _from_replicas(self, name: str, replicas: list[Any], checksum: str | None,
                       product_sources: Sequence[str]) -> Path:
        """A product from the first of its replicas that can be read here, in the claim's order (this
        runner's own storages first); every replica that fails is noted for the service."""
        if not checksum:
            raise StagingError(f"argument {name!r} has no checksum to verify its transfer")
        try:
            local = verify_local(self.store, checksum)
        except ValueError as exc:
            raise StagingError(f"argument {name!r}: {exc}") from exc
        if local is not None:
            return local
        tried: list[str] = []
        for replica in replicas:
            if not isinstance(replica, dict):
                continue
            try:
                return self.storage_access.read(replica, checksum, self.store, product_sources)
            except ReplicaUnreadable as exc:
                self._failures.append({"replica": str(replica.get("replica")), "status": exc.status,
                                       "reason": exc.reason[:500]})
                what = "corrupted transfer, not used" if exc.status == "corrupt" else exc.status
                tried.append(f"{replica.get('location')}: {what} ({exc.reason})")
            except NotFromHere as exc:
                tried.append(f"{replica.get('location')}: not readable from here ({exc})")
            except Exception as exc:  # noqa: BLE001 - e.g. boto3 missing on this machine: try the next replica
                tried.append(f"{replica.get('location')}: {type(exc).__name__}: {exc}")
        raise StagingError(f"no replica of {name!r} could be read: " + ("; ".join(tried) or
                                                                        "the graph lists no available replica"))

    def _local_dataset(self, name: str, location: str) -> Path:
        """A dataset's file, only from inside --data-dir: the path is resolved (``..``, absolute paths
        and symlinks included) and refused unless it lands inside the resolved data directory."""
        root = self.data_dir.resolve()
        path = Path(location.removeprefix("file://"))
        try:
            resolved = (path if path.is_absolute() else root / path).resolve()
        except (OSError, RuntimeError) as exc:  # e.g. a symlink loop
            raise StagingError(f"argument {name!r}: cannot resolve {location!r}: {exc}") from exc
        if not resolved.is_relative_to(root):
            raise StagingError(f"argument {name!r}: {location!r} is outside the data directory {root}; "
                               "datasets are staged only from inside --data-dir")
        if not resolved.is_file():
            raise StagingError(f"argument {name!r}: no file at {resolved}")
        return resolved

    def _checksum(self, path: Path) -> str:
        """sha256 of a local dataset, remembered while the file's size, mtime and inode stay the same."""
        info = path.stat()
        key = (str(path), info.st_size, info.st_mtime_ns, info.st_ino)
        known = self._checksums.get(key)
        if known is None:
            known = self._checksums[key] = sha256_file(path)
        return known

    # -- running ---------------------------------------------------------------------------------
    def execute(self, job: dict[str, Any]) -> ExecutionResult:
        started = time.monotonic()
        workflow = job["workflow"]
        self._failures = []
        try:
            values, texts, used = self.stage(job.get("arguments", {}), job.get("product_sources") or ())
        except StagingError as exc:
            return ExecutionResult("unhandled_exception", time.monotonic() - started, error=f"StagingError: {exc}",
                                   replica_failures=self._failures)
        result = self._execute_staged(job, workflow, values, texts, used, started)
        result.replica_failures = self._failures
        return result

    def _execute_staged(self, job: dict[str, Any], workflow: dict[str, Any], values: dict[str, Any],
                        texts: dict[str, str], used: list[str], started: float) -> ExecutionResult:
        with tempfile.TemporaryDirectory(prefix="kgsched-job-") as workdir:
            output = Path(workdir) / "product"
            executed = Path(workdir) / "executed.ipynb"
            kind = workflow.get("implementation_kind")
            if kind == PYTHON_CALLABLE:
                code, stderr = self._run_callable(workflow["implementation"], values, output, workdir)
            elif kind == COMMAND_LINE:
                code, stderr = self._run_command(workflow["implementation"], texts, output, workdir)
            elif kind == NOTEBOOK:
                code, stderr = self._run_notebook(workflow["implementation"], values, output, executed, workdir)
            elif kind == WEB_SERVICE:
                code, stderr = self._call_service(job, values, output, started)
            else:
                return ExecutionResult("unhandled_exception", time.monotonic() - started,
                                       error=f"this runner cannot execute implementation kind {kind}")
            duration = time.monotonic() - started
            notebook = self.store.put(executed) if executed.exists() else None
            if code == 0 and output.exists():
                return ExecutionResult("success", duration, self.store.put(output), used=used, notebook=notebook)
            if code == EXIT_ANALYSIS_EXCEPTION:
                if not output.exists():
                    output.write_text(json.dumps({"kind": "analysis exception", "message": stderr.strip()}))
                return ExecutionResult("analysis_exception", duration, self.store.put(output),
                                       error=stderr.strip()[-MAX_ERROR_CHARS:], used=used, notebook=notebook)
            reason = stderr.strip() or f"exit status {code}"
            if code == 0:
                reason = "the implementation exited 0 but wrote no product"
            return ExecutionResult("unhandled_exception", duration, error=reason[-MAX_ERROR_CHARS:], used=used,
                                   notebook=notebook)

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        paths = [*self.python_path, env.get("PYTHONPATH", "")]
        env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        return env

    def _run_callable(self, implementation: str, values: dict[str, Any], output: Path,
                      workdir: str) -> tuple[int, str]:
        spec = {"callable": implementation, "kwargs": values, "output": str(output),
                "python_path": self.python_path, "allowed_modules": self.allowed_modules}
        return self._run([sys.executable, "-m", "kgsched.runner.call"], workdir, json.dumps(spec))

    def notebook_path(self, implementation: str) -> Path:
        """The notebook named by a workflow: a relative path under one of the workflow path's directories."""
        relative = Path(implementation)
        if relative.is_absolute() or ".." in relative.parts:
            raise StagingError(f"notebook path {implementation!r} must be relative to the runner's workflow path, "
                               "without '..'")
        for directory in self.python_path:
            candidate = Path(directory) / relative
            if candidate.is_file():
                return candidate
        where = ", ".join(self.python_path) or "(no --workflow-path given)"
        raise StagingError(f"notebook {implementation!r} not found under the runner's workflow path: {where}")

    def _run_notebook(self, implementation: str, values: dict[str, Any], output: Path, executed: Path,
                      workdir: str) -> tuple[int, str]:
        try:
            path = self.notebook_path(implementation)
        except StagingError as exc:
            return 70, f"StagingError: {exc}"
        spec = {"notebook": str(path), "parameters": values, "output": str(output), "executed": str(executed)}
        return self._run([sys.executable, "-m", "kgsched.runner.notebook"], workdir, json.dumps(spec))

    def _call_service(self, job: dict[str, Any], values: dict[str, Any], output: Path,
                      started: float) -> tuple[int, str]:
        from kgsched.runner.ogc import OgcProcessesClient, RemoteAnalysisException, ServiceCall, ServiceCallError

        service = job.get("service")
        if not service or not service.get("endpoint") or not service.get("process"):
            return 70, ("this runner is no service offering the workflow (the job names no endpoint and process); "
                        "only a ks:ServiceRunner with ks:offersWorkflow runs ks:WebService workflows")
        deadline = None if self.timeout_seconds is None else started + self.timeout_seconds
        call = ServiceCall(OgcProcessesClient(service["endpoint"]), service["process"], self.cancel, deadline)
        try:
            inputs = call.inputs_for(job.get("arguments", {}), values, service.get("inputs", {}))
            output.write_bytes(call.run(inputs))
        except RemoteAnalysisException as exc:
            output.write_text(json.dumps({"kind": "analysis exception", "message": str(exc)}))
            return EXIT_ANALYSIS_EXCEPTION, str(exc)
        except ServiceCallError as exc:
            return 70, f"ServiceCallError: {exc}"
        return 0, ""

    def _run_command(self, template: str, texts: dict[str, str], output: Path, workdir: str) -> tuple[int, str]:
        try:
            argv = command_argv(template, {**texts, "output": str(output)})
        except TemplateError as exc:
            return 70, f"command template {template!r} cannot be filled: {exc}"
        if argv and argv[0] == "python":
            argv[0] = sys.executable  # the runner's own interpreter, with kgsched importable
        code, stderr = self._run(argv, workdir, None, stdout_to=None if "{output}" in template else output)
        return code, stderr

    def _run(self, argv: list[str], workdir: str, stdin: str | None, stdout_to: Path | None = None) -> tuple[int, str]:
        stdout = open(stdout_to, "wb") if stdout_to is not None else subprocess.DEVNULL  # noqa: SIM115
        try:
            # A session of its own, so that killing it also kills what it started (a notebook's kernel).
            process = subprocess.Popen(argv, cwd=workdir, env=self._environment(), stdin=subprocess.PIPE,
                                       stdout=stdout, stderr=subprocess.PIPE, start_new_session=True)
        except OSError as exc:
            if stdout_to is not None:
                stdout.close()
            return 70, f"cannot start {argv[0]}: {exc}"
        try:
            deadline = None if self.timeout_seconds is None else time.monotonic() + self.timeout_seconds
            if stdin is not None:
                process.stdin.write(stdin.encode())
            process.stdin.close()
            stderr_chunks: list[bytes] = []
            reader = threading.Thread(target=lambda: stderr_chunks.append(process.stderr.read()), daemon=True)
            reader.start()
            while process.poll() is None:
                if self.cancel.is_set() or (deadline is not None and time.monotonic() > deadline):
                    _kill_group(process)
                    process.wait()
                    reader.join(5)
                    why = "cancelled (the runner is stopping)" if self.cancel.is_set() else "timed out"
                    return 70, f"{why}\n" + b"".join(stderr_chunks).decode(errors="replace")
                time.sleep(0.02)
            reader.join(5)
            return process.returncode, b"".join(stderr_chunks).decode(errors="replace")
        finally:
            process.stderr.close()
            if stdout_to is not None:
                stdout.close()


class TemplateError(ValueError):
    """A command-line template that cannot be filled safely with the given arguments."""


_STANDALONE = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)\}$")


def command_argv(template: str, names: dict[str, str]) -> list[str]:
    """The argv of a command-line template with its placeholders filled (see the module docstring).

    Placeholders are plain names (``{events}``): no attribute access, index, conversion or format spec.
    A value starting with ``-`` in a standalone placeholder (an argv element that is exactly ``{name}``)
    would be read as an option of the tool, so it is refused, unless the template has ``--`` (the end of
    options) in an earlier argv element."""
    try:
        tokens = shlex.split(template)
    except ValueError as exc:
        raise TemplateError(str(exc)) from None
    argv: list[str] = []
    for index, token in enumerate(tokens):
        standalone = _STANDALONE.match(token)
        if standalone and names.get(standalone.group(1), "").startswith("-") and "--" not in tokens[:index]:
            raise TemplateError(f"the value of {{{standalone.group(1)}}} starts with '-' and would be read as an "
                                "option; the template must put '--' before that argument to allow it")
        argv.append(_fill(token, names))
    return argv


def _fill(token: str, names: dict[str, str]) -> str:
    parts: list[str] = []
    try:
        parsed = list(string.Formatter().parse(token))
    except ValueError as exc:
        raise TemplateError(f"{token!r}: {exc}") from None
    for literal, field_name, spec, conversion in parsed:
        parts.append(literal)
        if field_name is None:
            continue
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", field_name) or spec or conversion:
            raise TemplateError(f"{token!r}: placeholders are plain names like {{events}}")
        if field_name not in names:
            raise TemplateError(f"no argument named {field_name!r}")
        parts.append(names[field_name])
    return "".join(parts)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """Kill the child and everything in its session (e.g. a notebook kernel papermill started)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()
