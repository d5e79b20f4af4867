"""User queries evaluated in worker processes, so a crash or a runaway kills only its evaluation.

pyoxigraph 0.5.13 segfaults on some deep or long queries and cannot cancel a query that computes
everything before its first result (``COUNT(*)`` over a cartesian product). A thread cannot be
stopped and a segfault takes the whole process, so over an on-disk embedded store ``/sparql`` queries
run in a small pool of processes (``python -m kgsched.service.query_workers``, started as fresh
interpreters: the service is threaded, so no fork), each holding the store open with
``Store.read_only`` and talking over a socket pair:

* a task is sent to an idle worker; at the deadline (QUERY_TIMEOUT_SECONDS) the worker is killed,
  its slot is freed at once, and the caller gets 503; a fresh worker is started in the background;
* a worker that dies (SIGSEGV) is replaced the same way and the caller gets 400 with a message;
* results are serialised in the worker and cut at MAX_RESULT_BYTES (400);
* a read-only handle sees the store as it was when opened, so before each query the worker compares
  the store directory's signature (the names, sizes and mtimes of its files — every write appends to
  the write-ahead log) with the one it opened, and reopens when it changed (measured: 25–65 ms per
  reopen; a query on an unchanged store reuses the handle);
* at most QUERY_WORKERS queries run at once; past that, 503 "busy".

An in-memory store (``EmbeddedStore(None)``, tests only) cannot be opened by another process, so its
queries run in a thread of the service (kgsched.service.sparql.run_limited) with only the pre-check
(kgsched.graph.guard) standing between them and a crash. Over a remote store the remote server is the
evaluator (its own process): the request is answered at the deadline and its thread, whose socket
times out after QUERY_TIMEOUT_SECONDS of silence, frees its slot soon after. ``QUERY_ISOLATION`` = "thread"
forces the in-thread path, "process" requires workers (an error on a store that cannot have them).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from flask import Flask

from kgsched.errors import KgschedError, StoreError, SyntaxProblem
from kgsched.graph.guard import Limits
from kgsched.graph.store import EmbeddedStore, RemoteStore, Store
from kgsched.service.errors import Busy, QueryTimeout, ResultTooLarge

log = logging.getLogger("kgsched.service.query_workers")

EXTENSION = "kgsched.query_workers"
REMOTE_SLOTS = "kgsched.remote_query_slots"
_START_TIMEOUT = 60.0


class QueryCrashed(KgschedError):
    """The worker evaluating the query died (pyoxigraph crashed on it); the service is unaffected."""

    status_code = 400
    error = "query failed"


# --------------------------------------------------------------------------------------------------
# The worker process
# --------------------------------------------------------------------------------------------------

def store_signature(path: str) -> tuple[tuple[str, int, int], ...]:
    """Names, sizes and mtimes of the store directory's files: changes with every write."""
    entries = []
    with os.scandir(path) as listing:
        for entry in listing:
            try:
                info = entry.stat()
            except FileNotFoundError:  # compaction removed it meanwhile
                continue
            entries.append((entry.name, info.st_size, info.st_mtime_ns))
    return tuple(sorted(entries))


class _LimitedOutput:
    """Collects the serialised result and stops the serialisation past ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes, self.size, self.parts, self.too_large = max_bytes, 0, [], False

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self.size > self.max_bytes:
            self.too_large = True
            raise OSError("result size limit")
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass


def _open_read_only(store_path: str, attempts: int = 3) -> EmbeddedStore:
    """Open the store read-only; a compaction removing a file during the open is retried."""
    for attempt in range(attempts):
        try:
            return EmbeddedStore(store_path, read_only=True)
        except StoreError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.05)
    raise AssertionError("unreachable")


def worker_main(connection: Connection, store_path: str) -> None:
    """Answer tasks from the service until the pipe closes: (query, media type, graphs, max bytes)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the service stops its workers itself
    store: EmbeddedStore | None = None
    opened: tuple[tuple[str, int, int], ...] | None = None
    connection.send(("ready", os.getpid()))
    while True:
        try:
            task = connection.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        query, media_type, default_graphs, named_graphs, max_bytes, base_iri = task
        try:
            signature = store_signature(store_path)
            if store is None or signature != opened:
                if store is not None:
                    store.close()
                    store = None
                store = _open_read_only(store_path)
                opened = signature
            output = _LimitedOutput(max_bytes)
            try:
                _, served = store.query_serialized(query, media_type, default_graphs, named_graphs, output=output,
                                                   base_iri=base_iri)
            except (StoreError, OSError):
                if output.too_large:
                    connection.send(("too large", max_bytes))
                    continue
                raise
            connection.send(("ok", b"".join(output.parts), served))
        except SyntaxProblem as exc:
            connection.send(("syntax", exc.detail))
        except KgschedError as exc:
            connection.send(("store", exc.detail))
        except Exception as exc:  # reported to the caller; the worker stays usable
            connection.send(("store", f"{type(exc).__name__}: {exc}"))


# --------------------------------------------------------------------------------------------------
# The pool, in the service
# --------------------------------------------------------------------------------------------------

class _Worker:
    """One worker: ``python -m kgsched.service.query_workers STORE FD``, talking over a socket pair.

    A plain subprocess rather than a multiprocessing Process: 'spawn' would re-import the parent's main
    script in the child (breaking any embedding script without a ``__main__`` guard), and fork is unsafe
    in the threaded service."""

    def __init__(self, store_path: str) -> None:
        parent, child = socket.socketpair()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "kgsched.service.query_workers", store_path, str(child.fileno())],
                pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL, close_fds=True)
        finally:
            child.close()
        self.connection = Connection(parent.detach())
        if not self.connection.poll(_START_TIMEOUT):
            self.kill()
            raise StoreError("a query worker did not start")
        try:
            self.connection.recv()
        except (EOFError, OSError) as exc:
            self.kill()
            raise StoreError(f"a query worker could not start: {exc}") from exc

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    @property
    def exitcode(self) -> int | None:
        return self.process.poll()

    def kill(self) -> None:
        if self.alive():
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        self.connection.close()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.connection.send(None)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=2)
        self.kill()


def _stop_workers(workers: set[_Worker]) -> None:
    for worker in list(workers):
        worker.stop()
    workers.clear()


class WorkerPool:
    """At most ``size`` evaluations at once, each in a worker process that is killed at its deadline."""

    def __init__(self, store_path: str | os.PathLike[str], size: int) -> None:
        self.store_path = str(Path(store_path))
        self.size = max(1, int(size))
        self._slots = threading.BoundedSemaphore(self.size)
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        self.replaced = 0  # workers killed at a deadline or found dead (for tests and logs)
        # an app dropped without close_app (or the interpreter exiting) still stops its workers
        weakref.finalize(self, _stop_workers, self._all)

    # -- workers -----------------------------------------------------------------------------------
    def _start(self) -> _Worker:
        worker = _Worker(self.store_path)
        with self._lock:
            if self._closed:
                worker.stop()
                raise StoreError("the service is stopping")
            self._all.add(worker)
        return worker

    def _take(self) -> _Worker:
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.alive():
                    return worker
                self._discard_locked(worker)
        return self._start()

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            if self._closed or len(self._idle) >= self.size:
                self._all.discard(worker)
                stop = True
            else:
                self._idle.append(worker)
                stop = False
        if stop:
            worker.stop()

    def _discard_locked(self, worker: _Worker) -> None:
        self._all.discard(worker)
        self.replaced += 1

    def _replace(self, worker: _Worker) -> None:
        """Kill ``worker`` and start its successor in the background, so the next query finds one ready."""
        worker.kill()
        with self._lock:
            self._discard_locked(worker)

        def prewarm() -> None:
            try:
                fresh = self._start()
            except KgschedError:
                return
            self._give_back(fresh)

        threading.Thread(target=prewarm, name="kgsched-query-worker-start", daemon=True).start()

    def pids(self) -> list[int]:
        with self._lock:
            return [w.pid for w in self._all]

    # -- evaluation --------------------------------------------------------------------------------
    def evaluate(self, query: str, media_type: str, default_graphs: Sequence[str], named_graphs: Sequence[str],
                 timeout: float, max_bytes: int, base_iri: str | None = None) -> tuple[bytes, str]:
        if not self._slots.acquire(timeout=0.1):
            raise Busy("too many queries are running; retry in a moment")
        try:
            worker = self._take()
            try:
                worker.connection.send((query, media_type, list(default_graphs), list(named_graphs), max_bytes,
                                        base_iri))
                ready = worker.connection.poll(timeout)
            except OSError:
                ready, reply = True, None
            if not ready:
                log.warning("query stopped at its %g s deadline (worker %s killed)", timeout, worker.pid)
                self._replace(worker)
                raise QueryTimeout(f"the query ran longer than {timeout:g} s and was stopped; narrow it "
                                   "(LIMIT, more specific patterns)")
            try:
                reply = worker.connection.recv()
            except (EOFError, OSError):
                reply = None
            if reply is None:
                code = worker.exitcode
                log.warning("a query worker died (exit code %s); replaced", code)
                self._replace(worker)
                raise QueryCrashed("the store crashed evaluating this query (its worker process died and was "
                                   "replaced; the service is unaffected); simplify the query")
            self._give_back(worker)
        finally:
            self._slots.release()
        kind = reply[0]
        if kind == "ok":
            return reply[1], reply[2]
        if kind == "too large":
            raise ResultTooLarge(f"the result passed {max_bytes:,} bytes; add a LIMIT or narrow the query")
        if kind == "syntax":
            raise SyntaxProblem(reply[1])
        raise StoreError(reply[1])

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers = list(self._all)
            self._all.clear()
            self._idle.clear()
        for worker in workers:
            worker.stop()


# --------------------------------------------------------------------------------------------------
# Choosing the evaluator for an app
# --------------------------------------------------------------------------------------------------

def uses_workers(store: Store, isolation: str) -> bool:
    """Whether this store's user queries run in worker processes (see the module docstring)."""
    on_disk = isinstance(store, EmbeddedStore) and store.path is not None
    if isolation == "thread" or isinstance(store, RemoteStore):
        return False
    if isolation == "process" and not on_disk:
        raise StoreError("QUERY_ISOLATION = 'process' needs an on-disk embedded store")
    return on_disk


def worker_pool(app: Flask, store: Store) -> WorkerPool | None:
    """The app's pool, started on first use; None when queries are evaluated in the service."""
    if not uses_workers(store, str(app.config.get("QUERY_ISOLATION", "auto"))):
        return None
    pool = app.extensions.get(EXTENSION)
    if pool is None:
        with _POOL_LOCK:
            pool = app.extensions.get(EXTENSION)
            if pool is None:
                assert isinstance(store, EmbeddedStore) and store.path is not None
                pool = app.extensions[EXTENSION] = WorkerPool(store.path, int(app.config["QUERY_WORKERS"]))
    return pool


class _DeadlineOutput(_LimitedOutput):
    """A result buffer that also stops the transfer once the deadline has passed."""

    def __init__(self, max_bytes: int, deadline: float) -> None:
        super().__init__(max_bytes)
        self.deadline = deadline
        self.late = False

    def write(self, data: bytes) -> int:
        if time.monotonic() > self.deadline:
            self.late = True
            raise OSError("query stopped: time limit")
        return super().write(data)


def evaluate_remote(app: Flask, store: RemoteStore, query: str, media_type: str, default_graphs: Sequence[str],
                    named_graphs: Sequence[str], base_iri: str | None = None) -> tuple[bytes, str]:
    """The remote server evaluates (its own process). The request runs in a thread whose socket times out
    after QUERY_TIMEOUT_SECONDS + 1 s of silence and whose buffer refuses bytes past the deadline, so its
    slot is free about one timeout after the deadline (the client's 60 s default otherwise)."""
    timeout, max_bytes = float(app.config["QUERY_TIMEOUT_SECONDS"]), int(app.config["MAX_RESULT_BYTES"])
    with _POOL_LOCK:
        slots = app.extensions.setdefault(REMOTE_SLOTS, threading.BoundedSemaphore(int(app.config["QUERY_WORKERS"])))
    if not slots.acquire(timeout=0.1):
        raise Busy("too many queries are running; retry in a moment")
    # the socket gives up one second after the deadline, so the deadline is always seen first
    clone = store.with_timeout(timeout + 1)
    deadline = time.monotonic() + timeout
    output = _DeadlineOutput(max_bytes, deadline)
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            outcome["served"] = clone.query_serialized(query, media_type, default_graphs, named_graphs,
                                                       output=output, base_iri=base_iri)[1]
        except BaseException as exc:  # reported to the request thread
            outcome["error"] = exc.with_traceback(None)
        finally:
            slots.release()
            done.set()

    threading.Thread(target=run, name="kgsched-remote-query", daemon=True).start()
    if not done.wait(timeout) or output.late or ("error" in outcome and time.monotonic() >= deadline):
        raise QueryTimeout(f"the query ran longer than {timeout:g} s; narrow it (LIMIT, more specific patterns)")
    if output.too_large:
        raise ResultTooLarge(f"the result passed {max_bytes:,} bytes; add a LIMIT or narrow the query")
    if "error" in outcome:
        raise outcome["error"]
    return b"".join(output.parts), outcome["served"]


def evaluate_isolated(app: Flask, store: Store, query: str, media_type: str, default_graphs: Sequence[str],
                      named_graphs: Sequence[str], base_iri: str | None = None) -> tuple[bytes, str] | None:
    """Evaluate away from the service — in a worker, or on the remote server — and return (body, media
    type); None when the caller evaluates in its own thread (an in-memory store, QUERY_ISOLATION=thread)."""
    if isinstance(store, RemoteStore) and str(app.config.get("QUERY_ISOLATION", "auto")) != "thread":
        return evaluate_remote(app, store, query, media_type, default_graphs, named_graphs, base_iri)
    pool = worker_pool(app, store)
    if pool is None:
        return None
    return pool.evaluate(query, media_type, default_graphs, named_graphs,
                         float(app.config["QUERY_TIMEOUT_SECONDS"]), int(app.config["MAX_RESULT_BYTES"]), base_iri)


def query_limits(config: Any) -> Limits:
    """The pre-check's limits from the configuration (QUERY_MAX_*, SERVICE_ALLOWLIST)."""
    allowlist = config.get("SERVICE_ALLOWLIST") or ()
    if isinstance(allowlist, str):
        allowlist = [item for item in allowlist.replace(",", " ").split() if item]
    return Limits(
        max_chars=int(config["QUERY_MAX_CHARS"]),
        max_tokens=int(config["QUERY_MAX_TOKENS"]),
        max_nesting=int(config["QUERY_MAX_NESTING"]),
        max_chain=int(config["QUERY_MAX_CHAIN"]),
        max_path_steps=int(config["QUERY_MAX_PATH_STEPS"]),
        max_expression_operators=int(config["QUERY_MAX_EXPRESSION_OPERATORS"]),
        service_allowlist=tuple(str(item) for item in allowlist),
    )


def close_workers(app: Flask) -> None:
    pool = app.extensions.pop(EXTENSION, None)
    if pool is not None:
        pool.close()


_POOL_LOCK = threading.Lock()


if __name__ == "__main__":  # a worker: python -m kgsched.service.query_workers STORE_DIR SOCKET_FD
    worker_main(Connection(int(sys.argv[2])), sys.argv[1])
