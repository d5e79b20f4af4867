"""Shared fixtures: real stores of both kinds, and the example federation registered into them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from rdflib import URIRef

from kgsched.cli import main
from kgsched.dev.oxigraph_server import OxigraphServer
from kgsched.dev.parties import party_registrations
from kgsched.dev.redis_server import RedisServer, redis_binary
from kgsched.dev.s3_server import S3Server, weed_binary
from kgsched.dev.virtuoso_server import VirtuosoServer, virtuoso_binary
from kgsched.errors import StoreError
from kgsched.graph.store import EmbeddedStore, RemoteStore, Store
from kgsched.registry.registration import Registry, load_ontology

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
ADMIN = URIRef("https://example.org/fed/admin")
MALLORY = URIRef("https://example.org/fed/person/mallory")


def example_documents() -> list[tuple[str, bytes]]:
    return [(p.name, p.read_bytes()) for p in sorted(EXAMPLES.glob("*.ttl"))]


@pytest.fixture
def cli(tmp_path: Path):
    """Run ``kgsched --store <tmp> ...`` in-process; ``cli.store`` is the store's directory."""
    runner = CliRunner()
    store = str(tmp_path / "store")

    def run(*args: str):
        return runner.invoke(main, ["--store", store, *args], catch_exceptions=False)

    run.store = store  # type: ignore[attr-defined]
    return run


def quads(path: str) -> int:
    """Quads in an on-disk store, opened read-only."""
    with EmbeddedStore(path, read_only=True) as store:
        return store.quad_count()


@pytest.fixture
def embedded_store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    store = EmbeddedStore(tmp_path / "store")
    yield store
    store.close()


@pytest.fixture
def oxigraph_server() -> Iterator[OxigraphServer]:
    with OxigraphServer() as server:
        yield server


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A real S3-compatible object store (SeaweedFS) on 127.0.0.1, one per test session; tests use their
    own buckets."""
    try:
        weed_binary()
    except StoreError as exc:
        pytest.skip(str(exc))
    with S3Server() as server:
        yield server


@pytest.fixture
def remote_store(oxigraph_server: OxigraphServer) -> RemoteStore:
    return RemoteStore.from_url(oxigraph_server.url)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One real Redis on 127.0.0.1 for the test session (installed by ``make test``: redis-server); the
    coordinated replicas' tests use their own key names per job, so they share it."""
    if redis_binary() is None:
        pytest.skip("redis-server is not installed; `make test` installs it (Debian package redis-server)")
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def virtuoso_server() -> Iterator[VirtuosoServer]:
    """One real Virtuoso 7.2 for the test session (installed by ``make test``); ``virtuoso_store``
    empties it after each test."""
    if virtuoso_binary() is None:
        pytest.skip("virtuoso-t is not installed; `make test` installs it (virtuoso-opensource)")
    with VirtuosoServer() as server:
        yield server


@pytest.fixture
def virtuoso_store(virtuoso_server: VirtuosoServer) -> Iterator[RemoteStore]:
    if not virtuoso_server.responsive():
        virtuoso_server.restart()  # one wedged server must not fail every later Virtuoso test
    virtuoso_server.clear()
    yield virtuoso_server.store()
    virtuoso_server.clear()


@pytest.fixture(params=["embedded", "remote", "virtuoso"])
def store(request: pytest.FixtureRequest) -> Store:
    """Each test using this runs on the embedded store, on a real Oxigraph server and on a real
    Virtuoso 7.2 server (the store matrix)."""
    return request.getfixturevalue(f"{request.param}_store")


def register_examples(store: Store) -> None:
    """The example federation, each part registered by the party entitled to state it."""
    registry = Registry(store)
    for party, turtle in party_registrations(example_documents(), ADMIN):
        registry.register([(str(party), turtle)], party)


@pytest.fixture
def federation(store: Store) -> Store:
    """A store with the ontology and the example federation registered (each part by its party)."""
    load_ontology(store)
    register_examples(store)
    return store
