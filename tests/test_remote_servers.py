"""The portable remote store: configurable URLs, credentials from the configuration, form POSTs,
and the command line against a real Virtuoso 7.2 (the store matrix itself is conftest's ``store``
fixture: every test using it runs on the embedded store, Oxigraph and Virtuoso)."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
from click.testing import CliRunner
from rdflib import BNode, Graph, Literal, URIRef

from conftest import EXAMPLES
from kgsched.cli import main
from kgsched.dev.virtuoso_server import VirtuosoServer
from kgsched.errors import StoreError
from kgsched.graph.store import RemoteStore, open_store

EXAMPLE_FILES = [str(p) for p in sorted(EXAMPLES.glob("*.ttl"))]


def test_one_base_url_gives_the_oxigraph_layout_and_each_url_can_be_set() -> None:
    store = RemoteStore.from_url("http://db:7878/")
    assert (store.query_endpoint, store.update_endpoint, store.store_endpoint) == (
        "http://db:7878/query", "http://db:7878/update", "http://db:7878/store")
    fuseki = RemoteStore.from_settings(None, {"QUERY_ENDPOINT": "http://f:3030/ds/query",
                                              "UPDATE_ENDPOINT": "http://f:3030/ds/update",
                                              "STORE_ENDPOINT": "http://f:3030/ds/data"})
    assert (fuseki.update_endpoint, fuseki.store_endpoint) == ("http://f:3030/ds/update", "http://f:3030/ds/data")
    mixed = RemoteStore.from_settings("http://db:7878", {"UPDATE_ENDPOINT": "http://db:7878/sparql-auth"})
    assert (mixed.query_endpoint, mixed.update_endpoint) == ("http://db:7878/query", "http://db:7878/sparql-auth")
    with pytest.raises(StoreError, match="basic' or 'digest"):
        RemoteStore.from_settings("http://db", {"ENDPOINT_AUTH": "kerberos"})


def test_open_store_reads_the_remote_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KGSCHED_ENDPOINT", raising=False)
    monkeypatch.setenv("KGSCHED_QUERY_ENDPOINT", "http://v:8890/sparql")
    monkeypatch.setenv("KGSCHED_UPDATE_ENDPOINT", "http://v:8890/sparql-auth")
    monkeypatch.setenv("KGSCHED_ENDPOINT_USER", "dba")
    store = open_store("/nonexistent-store-dir")
    assert isinstance(store, RemoteStore)
    assert (store.query_endpoint, store.update_endpoint, store.user) == (
        "http://v:8890/sparql", "http://v:8890/sparql-auth", "dba")


class _Recorder(BaseHTTPRequestHandler):
    """A SPARQL server stand-in that records each request and wants basic credentials."""

    seen: list[dict[str, str]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        self.seen.append({"path": self.path, "type": self.headers.get("Content-Type", ""),
                          "auth": self.headers.get("Authorization", ""), "body": body})
        if self.headers.get("Authorization") != "Basic " + base64.b64encode(b"kg:s3cret").decode():
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="sparql"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        payload = json.dumps({"head": {}, "boolean": True}).encode() if self.path == "/query" else b""
        self.send_response(200)
        self.send_header("Content-Type", "application/sparql-results+json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[str]:
    _Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_queries_and_updates_are_form_posts_with_basic_credentials_sent_up_front(recorder: str) -> None:
    store = RemoteStore.from_settings(recorder, {"ENDPOINT_USER": "kg", "ENDPOINT_PASSWORD": "s3cret"})
    assert store.ask("ASK { ?s ?p ?o }", [{"s": URIRef("urn:x:1")}]) is True
    store.add_to_graph(URIRef("urn:g"), [(URIRef("urn:x:1"), URIRef("urn:p"), Literal("v"))])
    assert [(r["path"], r["type"].split(";")[0]) for r in _Recorder.seen] == [
        ("/query", "application/x-www-form-urlencoded"), ("/update", "application/x-www-form-urlencoded")]
    assert all(r["auth"].startswith("Basic ") for r in _Recorder.seen)  # no 401 round trip first
    query = parse_qs(_Recorder.seen[0]["body"])["query"][0]
    assert query.startswith("ASK {\nVALUES") and query.rstrip().endswith("?s ?p ?o }")  # bound inside the group
    update = parse_qs(_Recorder.seen[1]["body"])["update"][0]
    assert update.startswith("INSERT DATA")


def test_wrong_credentials_are_a_clear_error(recorder: str) -> None:
    store = RemoteStore.from_settings(recorder, {"ENDPOINT_USER": "kg", "ENDPOINT_PASSWORD": "wrong"})
    with pytest.raises(StoreError, match="401"):
        store.update("INSERT DATA { <urn:a> <urn:b> <urn:c> }")


def test_blank_nodes_reach_virtuoso_and_digest_credentials_are_checked(virtuoso_server: VirtuosoServer,
                                                                        virtuoso_store: RemoteStore) -> None:
    node = BNode()
    data = Graph()
    data.add((URIRef("urn:x:s"), URIRef("urn:x:p"), node))
    data.add((node, URIRef("urn:x:q"), Literal("inside")))
    virtuoso_store.replace_graph(URIRef("urn:x:g"), data)  # INSERT DATA with a blank node: Virtuoso's SP031
    [row] = virtuoso_store.select("SELECT ?v WHERE { GRAPH <urn:x:g> { <urn:x:s> <urn:x:p> ?b . ?b <urn:x:q> ?v } }")
    assert row["v"] == Literal("inside")
    wrong = RemoteStore.from_settings(None, {**virtuoso_server.settings(), "ENDPOINT_PASSWORD": "wrong"})
    before = virtuoso_store.quad_count()
    with pytest.raises(StoreError, match="401"):
        wrong.update("DROP SILENT GRAPH <urn:x:g>")
    assert virtuoso_store.quad_count() == before


def test_the_command_line_on_virtuoso(virtuoso_server: VirtuosoServer, virtuoso_store: RemoteStore,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """What the issue saw fail: init (404 on /update), register, query and plan (hung on direct POSTs)."""
    monkeypatch.delenv("KGSCHED_ENDPOINT", raising=False)
    for key, value in virtuoso_server.settings().items():
        monkeypatch.setenv(f"KGSCHED_{key}", value)
    runner = CliRunner()
    for args in (["init"], ["register", "--by-party", *EXAMPLE_FILES]):
        result = runner.invoke(main, args)
        assert result.exit_code == 0, result.output
    counted = runner.invoke(main, ["query", "SELECT (COUNT(*) AS ?n) WHERE { ?r a/rdfs:subClassOf ks:Runner }",
                                   "--format", "csv"])
    assert counted.output.split() == ["n", "5"]
    planned = runner.invoke(main, ["plan", str(EXAMPLES / "requests" / "combined-light-curve.json"),
                                   "--as", "https://example.org/fed/person/alice"])
    assert planned.exit_code == 0, planned.output
    assert "3 step(s) — 0 reuse, 3 recompute, 0 cannot" in planned.output


def test_kgsched_serve_over_virtuoso(virtuoso_server: VirtuosoServer, virtuoso_store: RemoteStore) -> None:
    """``kgsched serve`` as a process, pointed at Virtuoso by its settings alone (environment)."""
    from conftest import register_examples
    from kgsched.registry.registration import load_ontology
    from service_support import ADMIN_HEADERS, ServeProcess, http

    load_ontology(virtuoso_store)
    register_examples(virtuoso_store)
    env = {f"KGSCHED_{key}": value for key, value in virtuoso_server.settings().items()}
    env["KGSCHED_ENDPOINT"] = ""
    with ServeProcess(env=env) as server:
        status, health = http("GET", f"{server.url}/health")
        assert status == 200 and health["store"] == "remote", server.output()[-2000:]
        request = json.loads((EXAMPLES / "requests" / "combined-light-curve.json").read_text())
        status, planned = http("POST", f"{server.url}/plans", body=request, headers=ADMIN_HEADERS)
        assert status == 201, planned
        assert planned["plan"]["summary"] == {"reuse": 0, "recompute": 3, "cannot": 0}
        assert len(planned["jobs"]) == 3


@pytest.mark.parametrize("query, expected", [
    ("ASK { ?s ?p ?o }", "ASK {\nVALUES"),
    ("SELECT ?s WHERE { GRAPH ?g { ?s ?p ?o } }", "SELECT ?s WHERE {\nVALUES"),
    ("CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }", "CONSTRUCT { ?s ?p ?o } WHERE {\nVALUES"),
    ("CONSTRUCT { ?s ?p ?o } { ?s ?p ?o }", "CONSTRUCT { ?s ?p ?o } {\nVALUES"),
    ('PREFIX x: <http://x/> # a { in a comment\nSELECT * { ?s x:where "{" }', 'PREFIX x: <http://x/> # a { in a comment\nSELECT * {\nVALUES'),
])
def test_values_without_a_marker_open_the_where_group(query: str, expected: str) -> None:
    from kgsched.graph.binding import bind

    bound = bind(query, [{"s": URIRef("urn:x:1")}])
    assert bound.startswith(expected), bound
    assert bound.rstrip().endswith("}") and "VALUES ?s" not in bound.rsplit("}", 2)[-1]


def test_one_block_per_variable_only_where_the_query_asks() -> None:
    from kgsched.graph.binding import bind

    row = [{"job": URIRef("urn:x:job"), "jobs": URIRef("urn:x:g")}]
    plain = bind("SELECT * WHERE {\n# @values\nGRAPH ?jobs { ?job ?p ?o } }", row)
    assert "VALUES (?job ?jobs)" in plain
    split = bind("#+ values: one block per variable\nSELECT * WHERE {\n# @values\nGRAPH ?jobs { ?job ?p ?o } }", row)
    assert "VALUES ?job { <urn:x:job> }\nVALUES ?jobs { <urn:x:g> }" in split


def test_blank_nodes_are_inserted_through_a_template() -> None:
    from kgsched.graph.updates import data_update

    graph = URIRef("urn:x:g")
    plain = data_update(insert={graph: [(URIRef("urn:x:s"), URIRef("urn:x:p"), Literal(1))]})
    assert plain.startswith("INSERT DATA {")
    blank = data_update(insert={graph: [(URIRef("urn:x:s"), URIRef("urn:x:p"), BNode("b1"))]},
                        delete={graph: [(URIRef("urn:x:s"), URIRef("urn:x:p"), Literal(1))]})
    assert blank.startswith("DELETE DATA {") and blank.endswith("} WHERE { }") and "INSERT {" in blank
