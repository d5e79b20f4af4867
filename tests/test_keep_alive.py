"""Kept-alive connections to the SPARQL server (kgsched.graph.keep_alive): reused across requests and
threads of a real Oxigraph server, not reused once the server closed them, and a request whose answer
was lost is sent again only when that cannot apply it twice."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
from rdflib import Literal, URIRef

from kgsched.dev.oxigraph_server import OxigraphServer
from kgsched.errors import StoreError, SyntaxProblem
from kgsched.graph.store import RemoteStore

GRAPH = URIRef("urn:test:keep-alive")
COUNT = "SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } }"


def test_threads_share_a_few_kept_connections_to_a_real_oxigraph_server() -> None:
    with OxigraphServer() as server:
        store = RemoteStore.from_url(server.url)

        def work(worker: int) -> int:
            for i in range(25):
                store.add_to_graph(GRAPH, [(URIRef(f"urn:x:{worker}:{i}"), URIRef("urn:p"), Literal(i))])
                store.select(COUNT)
            return worker

        with ThreadPoolExecutor(4) as pool:
            assert sorted(pool.map(work, range(4))) == [0, 1, 2, 3]
        assert int(store.select(COUNT)[0]["n"]) == 100
        assert store._pool is not None and 1 <= store._pool.opened <= 4  # 201 requests, at most one per thread
        with pytest.raises(SyntaxProblem, match="SPARQL syntax error"):
            store.select("SELECT nonsense")
        assert int(store.select(COUNT)[0]["n"]) == 100  # an error answer leaves the pool usable
        store.close()
        assert all(not idle for idle in store._pool._idle.values())


def test_a_connection_the_server_closed_while_idle_is_not_reused() -> None:
    with OxigraphServer(timeout_s=1) as server:  # the server drops a connection idle for 1 s
        store = RemoteStore.from_url(server.url)
        assert int(store.select(COUNT)[0]["n"]) == 0
        time.sleep(1.6)
        store.update("INSERT DATA { GRAPH <urn:g> { <urn:a> <urn:b> <urn:c> } }")  # not replayable: must not fail
        assert int(store.select(COUNT)[0]["n"]) == 1
        assert store._pool is not None and (store._pool.opened, store._pool.discarded) == (2, 1)
        store.close()


@dataclass
class LosingServer:
    """An HTTP/1.1 server that keeps connections alive, answers the first request on each and reads the
    second, then closes without answering it: a response lost after the server had the whole request."""

    port: int = 0
    bodies: list[bytes] = field(default_factory=list)
    _socket: socket.socket | None = None

    def __enter__(self) -> LosingServer:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._socket is not None
        self._socket.close()

    def _accept(self) -> None:
        assert self._socket is not None
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with connection, connection.makefile("rb") as incoming:
            for answered in (True, False):
                length = 0
                while (line := incoming.readline()) not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                if not line:
                    return
                self.bodies.append(incoming.read(length))
                if not answered:
                    return  # the request arrived whole; its answer never leaves
                payload = b'{"head": {"vars": []}, "results": {"bindings": [{}]}}'
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/sparql-results+json\r\n"
                                   b"Content-Length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload)


@pytest.fixture
def losing_server() -> Iterator[LosingServer]:
    with LosingServer() as server:
        yield server


def test_a_lost_query_answer_is_asked_again_on_a_new_connection(losing_server: LosingServer) -> None:
    store = RemoteStore.from_url(f"http://127.0.0.1:{losing_server.port}")
    assert store.select("SELECT * WHERE {}") == [{}]
    assert store.select("SELECT * WHERE {}") == [{}]  # lost on the kept connection, answered on a new one
    assert len(losing_server.bodies) == 3
    assert store._pool is not None and store._pool.opened == 2
    store.close()


def test_a_lost_update_answer_is_an_error_and_is_not_sent_twice(losing_server: LosingServer) -> None:
    store = RemoteStore.from_url(f"http://127.0.0.1:{losing_server.port}")
    store.update("INSERT DATA { <urn:a> <urn:b> <urn:c> }")
    with pytest.raises(StoreError, match="remote store failed"):
        store.update("INSERT DATA { <urn:a> <urn:b> <urn:d> }")  # the server may have applied it: not again
    assert [body.startswith(b"update=") for body in losing_server.bodies] == [True, True]
    store.close()
