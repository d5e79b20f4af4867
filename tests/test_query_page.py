"""The query page, the resource pages and /sparql's protocol details, with Flask's test client (the
browser test is tests/test_page_browser.py): the plain HTML page works without JavaScript and escapes
everything; HEAD, CORS, the HTML redirect and base IRIs; the example queries run on every store."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
from flask import Flask
from flask.testing import FlaskClient

from kgsched.graph.store import EmbeddedStore, Store
from kgsched.service import close_app, create_app
from kgsched.service.page import examples
from page_support import History, record_history
from service_support import GENEVA

RUNNERS = "PREFIX ks: <https://w3id.org/kgsched#> SELECT ?runner ?cores WHERE { ?runner ks:cores ?cores } ORDER BY ?runner"


@pytest.fixture(scope="module")
def site() -> Iterator[tuple[Flask, History]]:
    history = record_history(EmbeddedStore(None))
    app = create_app({"STORE_INSTANCE": history.store})
    yield app, history
    close_app(app)
    history.store.close()


@pytest.fixture
def client(site) -> FlaskClient:
    return site[0].test_client()


def linked_iris(text: str) -> list[str]:
    """The IRIs the HTML links to resource pages, in order."""
    return [parse_qs(urlparse(html.unescape(href)).query)["iri"][0]
            for href in re.findall(r'href="(/resource\?iri=[^"]+)"', text)]


def page_query(client: FlaskClient, query: str):
    return client.get("/?" + urlencode({"query": query}))


# -- the page without JavaScript --------------------------------------------------------------------

def test_the_page_has_yasgui_a_get_form_and_example_links(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 200 and response.mimetype == "text/html"
    text = response.get_data(as_text=True)
    assert re.search(r'<form id="plain-form" method="get" action="/">', text)
    assert '<textarea id="query" name="query"' in text
    assert 'src="/static/yasgui/yasgui.min.js"' in text and 'href="/static/yasgui/yasgui.min.css"' in text
    links = re.findall(r'<a class="example" data-example="(\w+)"[^>]* href="([^"]+)"', text)
    assert [key for key, _ in links] == ["runners", "lineage", "credits", "stalled"]
    for _key, href in links:  # each example is a permalink that runs without JavaScript
        query = parse_qs(urlparse(html.unescape(href)).query)["query"][0]
        assert client.get("/?" + urlencode({"query": query})).status_code == 200


def test_a_permalink_renders_the_table_on_the_server(client: FlaskClient) -> None:
    response = page_query(client, RUNNERS)
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "5 rows" in text
    rows = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td></tr>", text)
    assert len(rows) == 5
    assert str(GENEVA) in linked_iris(text)
    assert html.escape(RUNNERS) in text  # the query is in the text area, escaped


def test_everything_the_server_writes_is_escaped(client: FlaskClient) -> None:
    evil = '</textarea><script>alert(1)</script>'
    query = f'SELECT ("{evil}" AS ?x) (<urn:x:"><img src=x onerror=alert(1)>> AS ?y) WHERE {{ }}'
    response = page_query(client, query)
    text = response.get_data(as_text=True)
    assert "<script>alert(1)" not in text and "<img" not in text
    assert html.escape(evil) in text
    config = re.search(r'<script type="application/json" id="kgsched-config">(.*?)</script>', text, re.S).group(1)
    assert "<" not in config and json.loads(config)["endpoint"] == "http://localhost/sparql"


def test_errors_and_updates_are_shown_not_run(site, client: FlaskClient) -> None:
    _app, history = site
    before = history.store.quad_count()
    bad = page_query(client, "SELECT * WHERE { ?s ?p <oops")
    assert bad.status_code == 400 and 'class="error"' in bad.get_data(as_text=True)
    update = page_query(client, "DELETE WHERE { ?s ?p ?o }")
    assert update.status_code == 403 and "read-only" in update.get_data(as_text=True)
    assert history.store.quad_count() == before


def test_the_vendored_yasgui_is_served_with_its_licence(client: FlaskClient) -> None:
    script = client.get("/static/yasgui/yasgui.min.js")
    assert script.status_code == 200 and b"Yasgui" in script.data[:2000]
    script.close()
    with client.get("/static/yasgui/LICENSE") as licence:
        assert licence.status_code == 200 and b"MIT License" in licence.data
    assert client.get("/static/yasgui/../../sparql.py").status_code == 404


# -- resource pages ---------------------------------------------------------------------------------

def test_a_products_page_draws_its_lineage_and_says_whom_to_thank(site, client: FlaskClient) -> None:
    _app, history = site
    response = client.get("/resource", query_string={"iri": str(history.downstream)})
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    svg = re.search(r"<svg .*?</svg>", text, re.S).group(0)
    kinds = re.findall(r'class="node (\w+)"', svg)
    assert kinds.count("execution") == 2 and kinds.count("product") == 2 and kinds.count("dataset") == 1
    assert {str(history.downstream), str(history.upstream)} <= set(linked_iris(svg))
    assert "sha256:" in text and "We thank the contributors" in text
    assert 'id="replicas"' in text and "geneva" in text


def test_a_runners_page_lists_its_jobs_executions_and_credits(site, client: FlaskClient) -> None:
    _app, history = site
    text = client.get("/resource", query_string={"iri": str(GENEVA)}).get_data(as_text=True)
    assert "Runner: " in text
    jobs = re.search(r'<section id="jobs">(.*?)</section>', text, re.S).group(1)
    assert str(history.waiting_job) in linked_iris(jobs)
    executions = re.search(r'<section id="executions">(.*?)</section>', text, re.S).group(1)
    assert str(history.downstream) in linked_iris(executions)
    credits = re.search(r'<section id="credits">(.*?)</section>', text, re.S).group(1)
    assert "ComputeContribution" in credits


def test_any_other_iri_shows_its_triples_and_bad_iris_are_refused(client: FlaskClient) -> None:
    text = client.get("/resource", query_string={"iri": "https://example.org/fed/person/bob"}).get_data(as_text=True)
    assert "Bob Okafor" in text and 'id="outgoing"' in text
    assert client.get("/resource", query_string={"iri": "not an iri"}).status_code == 400
    assert client.get("/resource").status_code == 400


# -- /sparql protocol details -----------------------------------------------------------------------

def test_head_answers_like_get_without_a_body(client: FlaskClient) -> None:
    url = "/sparql?" + urlencode({"query": RUNNERS})
    got, head = client.get(url), client.head(url)
    assert head.status_code == got.status_code == 200
    assert head.mimetype == got.mimetype and head.data == b""
    assert head.headers["Access-Control-Allow-Origin"] == "*"


def test_cors_headers_and_preflight(client: FlaskClient) -> None:
    preflight = client.options("/sparql", headers={"Origin": "https://elsewhere.example",
                                                   "Access-Control-Request-Method": "POST",
                                                   "Access-Control-Request-Headers": "content-type"})
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "content-type" in preflight.headers["Access-Control-Allow-Headers"].lower()
    assert "Access-Control-Allow-Credentials" not in preflight.headers
    refused = client.get("/sparql?query=ASK%20%7B", headers={"Origin": "https://elsewhere.example"})
    assert refused.status_code == 400 and refused.headers["Access-Control-Allow-Origin"] == "*"
    # the write API is not opened to other sites
    assert "Access-Control-Allow-Origin" not in client.get("/health").headers


def test_a_browser_asking_for_html_is_sent_to_the_page(client: FlaskClient) -> None:
    browser = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
    response = client.get("/sparql?" + urlencode({"query": RUNNERS}), headers=browser)
    assert response.status_code == 303
    assert parse_qs(urlparse(response.headers["Location"]).query)["query"] == [RUNNERS]
    assert client.get("/sparql", headers=browser).status_code == 303
    # programs keep getting results
    assert client.get("/sparql?" + urlencode({"query": RUNNERS}), headers={"Accept": "*/*"}).status_code == 200


@pytest.fixture
def store_app(store: Store) -> Iterator[FlaskClient]:
    app = create_app({"STORE_INSTANCE": store})
    yield app.test_client()
    close_app(app)


def test_relative_iris_resolve_against_the_endpoint_on_every_store(store_app: FlaskClient) -> None:
    query = "SELECT ?x WHERE { BIND (<runner/one> AS ?x) }"
    response = store_app.get("/sparql?" + urlencode({"query": query}),
                             headers={"Accept": "application/sparql-results+json"})
    assert response.status_code == 200, response.data
    [row] = json.loads(response.data)["results"]["bindings"]
    assert row["x"]["value"] == "http://localhost/runner/one"


def test_the_example_queries_answer_on_every_store(store: Store) -> None:
    """The page's examples come from queries/ and must run wherever kgsched runs."""
    history = record_history(store)
    app = create_app({"STORE_INSTANCE": store})
    try:
        client = app.test_client()
        counts = {}
        for example in examples():
            response = client.post("/sparql", data={"query": example.text},
                                   headers={"Accept": "application/sparql-results+json"})
            assert response.status_code == 200, (example.key, response.data[:500])
            counts[example.key] = json.loads(response.data)["results"]["bindings"]
        assert len(counts["runners"]) == 5
        assert {r["entity"]["value"] for r in counts["lineage"]} >= {str(history.upstream), str(history.downstream)}
        assert counts["credits"]
        assert [r["job"]["value"] for r in counts["stalled"]] == [str(history.waiting_job)]
        assert counts["stalled"][0]["waiting"]["value"] == "queued"
    finally:
        close_app(app)


def test_resource_pages_on_every_store(store: Store) -> None:
    history = record_history(store)
    app = create_app({"STORE_INSTANCE": store})
    try:
        client = app.test_client()
        product = client.get("/resource", query_string={"iri": str(history.downstream)}).get_data(as_text=True)
        assert re.findall(r'class="node (\w+)"', product).count("execution") == 2
        assert "We thank the contributors" in product and "sha256:" in product
        replicas = re.search(r'<section id="replicas">(.*?)</section>', product, re.S).group(1)
        assert str(history.downstream) in linked_iris(replicas)
        runner = client.get("/resource", query_string={"iri": str(GENEVA)}).get_data(as_text=True)
        credits = re.search(r'<section id="credits">(.*?)</section>', runner, re.S).group(1)
        assert "ComputeContribution" in credits
        assert str(history.waiting_job) in linked_iris(re.search(r'<section id="jobs">(.*?)</section>',
                                                                 runner, re.S).group(1))
    finally:
        close_app(app)
