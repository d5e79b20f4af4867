"""Persistent HTTP connections to a SPARQL server, reused across requests and threads.

Why: ``urllib`` opens a new TCP connection for every request and asks the server to close it. Against
an Oxigraph server on this machine that made one small query cost six times what it costs on a kept
connection (546 against 3,320 queries/s, one thread). A claim, a report and a registration each make
several round trips, so the remote store's speed was mostly the cost of connecting.

What it keeps safe:

* A connection is handed to one request at a time (taken from the idle list, put back only after its
  response was read to the end and the server did not ask to close it).
* A connection idle longer than :data:`IDLE_SECONDS` — far less than any server's keep-alive timeout
  (Oxigraph's is its ``--timeout-s``, Virtuoso's 10 s) — or one the server has closed (its socket reads
  as ready) is not reused.
* A request that fails on a reused connection is sent again on a new one only when that cannot do it
  twice: if sending failed (the server never had the whole request) or if the request is ``replayable``
  (a query). An update whose response was lost is an error, as it would be on a fresh connection.
* Idle connections are closed when the pool is collected or the process exits, and a child process
  never uses its parent's.
"""

from __future__ import annotations

import http.client
import os
import select
import ssl
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from urllib.parse import urlsplit

#: A connection idle longer than this is closed rather than reused.
IDLE_SECONDS = 2.0
#: Idle connections kept per server (more concurrent requests than this open extra ones, closed after).
MAX_IDLE = 64
#: How much of an error response's body is read into the error.
ERROR_BODY_BYTES = 2000


class HTTPStatusError(Exception):
    """The server answered with a status ≥ 400; ``body`` is the start of its answer."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


_Key = tuple[str, str]  # scheme, host:port
_Idle = list[tuple[http.client.HTTPConnection, float]]


class ConnectionPool:
    """Kept-alive connections per server, shared by the threads of one process."""

    def __init__(self, headers: Mapping[str, str] | None = None) -> None:
        #: Sent with every request (an ``Authorization`` header for HTTP basic credentials).
        self.headers = dict(headers or {})
        self._lock = threading.Lock()
        self._idle: dict[_Key, _Idle] = {}
        self._pid = os.getpid()
        self.opened = 0  # connections made, for tests and benchmarks
        self.discarded = 0  # idle connections found too old or closed by the server
        self._finalizer = weakref.finalize(self, _close_all, self._idle)

    def close(self) -> None:
        """Close every idle connection (a connection in use is closed when its request ends)."""
        with self._lock:
            _close_all(self._idle)

    @contextmanager
    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float, *,
             replayable: bool) -> Iterator[http.client.HTTPResponse]:
        """POST ``body`` to ``url``; yield the response (status < 400) to be read. Raises
        :class:`HTTPStatusError` for a status ≥ 400, ``OSError`` / ``http.client.HTTPException`` when the
        exchange fails."""
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        sent = {**self.headers, **headers}
        connection, reused = self._take(key, timeout)
        try:
            response = self._exchange(connection, target, body, sent)
        except _NotSent as failure:
            connection.close()
            if not reused:
                raise failure.cause from None
            connection, response = self._again(key, timeout, target, body, sent)
        except (OSError, http.client.HTTPException):
            connection.close()
            if not (reused and replayable):
                raise
            connection, response = self._again(key, timeout, target, body, sent)
        try:
            if response.status >= 400:
                raise HTTPStatusError(response.status, response.read(ERROR_BODY_BYTES).decode("utf-8", "replace"))
            yield response
        finally:
            self._give_back(key, connection, response)

    def _again(self, key: _Key, timeout: float, target: str, body: bytes,
               headers: Mapping[str, str]) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """The one retry, on a new connection."""
        connection = self._new(key, timeout)
        try:
            return connection, self._exchange(connection, target, body, headers)
        except _NotSent as failure:
            connection.close()
            raise failure.cause from None

    def _exchange(self, connection: http.client.HTTPConnection, target: str, body: bytes,
                  headers: Mapping[str, str]) -> http.client.HTTPResponse:
        try:
            connection.request("POST", target, body=body, headers=dict(headers))
        except (OSError, http.client.HTTPException) as exc:
            raise _NotSent(exc) from exc
        except BaseException:
            connection.close()
            raise
        try:
            return connection.getresponse()
        except BaseException:
            connection.close()
            raise

    def _take(self, key: _Key, timeout: float) -> tuple[http.client.HTTPConnection, bool]:
        """An idle connection to the server (fresh and still open) with its timeout set, or a new one."""
        stale: list[http.client.HTTPConnection] = []
        found = None
        with self._lock:
            if self._pid != os.getpid():  # a forked child: its parent's connections are not its own
                self._idle.clear()
                self._pid = os.getpid()
            idle = self._idle.get(key, [])
            now = time.monotonic()
            while idle:
                connection, since = idle.pop()
                if now - since <= IDLE_SECONDS and not _closed_by_server(connection):
                    found = connection
                    break
                stale.append(connection)
        for connection in stale:
            self.discarded += 1
            connection.close()
        if found is None:
            return self._new(key, timeout), False
        found.timeout = timeout
        if found.sock is not None:
            found.sock.settimeout(timeout)
        return found, True

    def _new(self, key: _Key, timeout: float) -> http.client.HTTPConnection:
        scheme, netloc = key
        self.opened += 1
        if scheme == "https":
            return http.client.HTTPSConnection(netloc, timeout=timeout, context=ssl.create_default_context())
        if scheme != "http":
            raise OSError(f"unsupported URL scheme {scheme!r}")
        return http.client.HTTPConnection(netloc, timeout=timeout)

    def _give_back(self, key: _Key, connection: http.client.HTTPConnection,
                   response: http.client.HTTPResponse) -> None:
        """Keep the connection if its response was read to the end and the server keeps it open."""
        if not response.isclosed() or response.will_close or connection.sock is None:
            response.close()
            connection.close()
            return
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < MAX_IDLE and self._pid == os.getpid():
                idle.append((connection, time.monotonic()))
                return
        connection.close()


class _NotSent(Exception):
    """Sending the request failed: the server cannot have acted on it."""

    def __init__(self, cause: OSError | http.client.HTTPException) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _closed_by_server(connection: http.client.HTTPConnection) -> bool:
    """An idle kept connection's socket is readable only if the server closed it (or sent garbage)."""
    sock = connection.sock
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _close_all(idle: dict[_Key, _Idle]) -> None:
    for connections in idle.values():
        for connection, _ in connections:
            connection.close()
    idle.clear()
