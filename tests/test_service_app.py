"""The application factory, configuration, JSON errors everywhere, the OpenAPI document, the page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from kgsched.graph.store import EmbeddedStore, Store
from kgsched.service import close_app, create_app
from service_support import ADMIN_HEADERS, ADMIN_TOKEN, load_federation


@pytest.fixture
def app(embedded_store: Store) -> Iterator[Flask]:
    load_federation(embedded_store)
    app = create_app({"STORE_INSTANCE": embedded_store, "ADMIN_TOKEN": ADMIN_TOKEN, "MAX_CONTENT_LENGTH": 1000})
    yield app
    close_app(app)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def test_factory_opens_its_own_store_and_loads_the_ontology(tmp_path: Path) -> None:
    app = create_app({"STORE": str(tmp_path / "kg")})
    state = app.extensions["kgsched"]
    assert state.store_kind == "embedded" and state.owns_store
    assert state.store.quad_count() > 500  # the ontology
    assert app.test_client().get("/health").json["store"] == "embedded"
    close_app(app)
    reopened = EmbeddedStore(tmp_path / "kg")  # closed: another opener succeeds
    reopened.close()


def test_configuration_order_defaults_file_environment_test_config(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "kgsched.toml"
    config.write_text("LEASE_SECONDS = 11\nMAX_ATTEMPTS = 7\nQUERY_WORKERS = 2\n")
    monkeypatch.setenv("KGSCHED_CONFIG", str(config))
    monkeypatch.setenv("KGSCHED_MAX_ATTEMPTS", "5")
    monkeypatch.setenv("KGSCHED_ADMIN_TOKEN", "from-env")
    app = create_app({"STORE_INSTANCE": EmbeddedStore(None), "QUERY_WORKERS": 3})
    assert app.config["LEASE_SECONDS"] == 11  # file
    assert app.config["MAX_ATTEMPTS"] == 5  # environment over file
    assert app.config["QUERY_WORKERS"] == 3  # test config over all
    assert app.config["CLOCK_SKEW_SECONDS"] == 2  # default
    assert app.config["ADMIN_TOKEN"] is None  # only its hash is kept
    queue = app.extensions["kgsched"].queue
    assert (queue.settings.lease_seconds, queue.settings.max_attempts) == (11, 5)
    assert app.test_client().get("/whoami", headers={"Authorization": "Bearer from-env"}).json["admin"]


def test_bad_configuration_is_refused(tmp_path: Path) -> None:
    from kgsched.errors import InvalidRequest

    with pytest.raises(InvalidRequest, match="LEASE_SECONDS"):
        create_app({"STORE_INSTANCE": EmbeddedStore(None), "LEASE_SECONDS": -1})
    ini = tmp_path / "x.ini"
    ini.write_text("LEASE_SECONDS = 3\n")
    with pytest.raises(InvalidRequest, match="must be .toml or .json"):
        create_app({"STORE_INSTANCE": EmbeddedStore(None), "CONFIG_FILE": str(ini)})
    with pytest.raises(InvalidRequest, match="does not exist"):
        create_app({"STORE_INSTANCE": EmbeddedStore(None), "CONFIG_FILE": str(tmp_path / "missing.toml")})


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/no/such/route", 404), ("PUT", "/health", 405), ("DELETE", "/sparql", 405),
    ("GET", "/jobs/not-a-job-id", 404), ("GET", "/plans/zzz", 404), ("GET", "/whoami", 401),
    ("POST", "/tokens", 401), ("GET", "/products/no%20such/provenance", 404), ("GET", "/acknowledgements", 400),
    ("GET", "/plans/" + "0" * 32, 404), ("GET", "/acknowledgements?product=not%20an%20iri", 400),
    ("GET", "/acknowledgements?product=https://w3id.org/kgsched/id/product/none", 404),
    ("GET", "/products/" + "0" * 64 + "/provenance", 404), ("DELETE", "/tokens/" + "0" * 32, 401),
    ("GET", "/jobs?runner=not%20an%20iri", 400), ("GET", "/credits?agent=%3Cbad%3E", 400),
])
def test_errors_are_json_with_error_and_detail(client: FlaskClient, method: str, path: str, status: int) -> None:
    response = client.open(path, method=method)
    assert response.status_code == status
    assert response.is_json and set(response.json) >= {"error", "detail"}
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_body_over_the_limit_is_413_json(client: FlaskClient, embedded_store: Store) -> None:
    before = embedded_store.quad_count()
    response = client.post("/registrations", data=b"#" * 5000, headers=ADMIN_HEADERS | {"Content-Type": "text/turtle"})
    assert response.status_code == 413 and response.json["error"] == "request entity too large"
    assert embedded_store.quad_count() == before


def test_unexpected_exceptions_are_500_json(app: Flask) -> None:
    def explode() -> None:
        raise RuntimeError("secret internals")

    app.add_url_rule("/explode", "explode", explode)
    response = app.test_client().get("/explode")
    assert response.status_code == 500 and response.json["error"] == "internal error"
    assert "secret internals" not in response.json["detail"]


def test_openapi_documents_every_route(app: Flask, client: FlaskClient) -> None:
    document = client.get("/openapi.json").json
    assert document["openapi"].startswith("3.")
    documented = {(path, method) for path, ops in document["paths"].items() for method in ops}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "explode":
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method.lower()) in documented, (path, method)


def test_query_page_is_html(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert b"<textarea" in response.data and b"sparql" in response.data
