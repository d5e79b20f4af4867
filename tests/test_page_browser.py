"""The query page in a real browser: headless Chromium (Debian ``chromium`` + ``chromium-driver``,
installed by ``make test``) driven by Selenium opens the page, runs example queries, sees the table,
follows an IRI to a product's page and sees its lineage picture. One browser and one served app for
the whole module; screenshots are kept under ``test-artifacts/browser/`` (printed, git-ignored)."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from conftest import ROOT
from kgsched.dev.oxigraph_server import free_port
from kgsched.graph.store import EmbeddedStore
from kgsched.service import close_app, create_app
from page_support import History, record_history

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
ARTIFACTS = ROOT / "test-artifacts" / "browser"
WAIT = 30

pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="chromium and chromedriver are not installed; `make test` installs them")


@pytest.fixture(scope="module")
def site() -> Iterator[tuple[str, History]]:
    """The service on 127.0.0.1 (a real HTTP server in a thread) over a store with a recorded history."""
    from werkzeug.serving import make_server

    history = record_history(EmbeddedStore(None))
    app = create_app({"STORE_INSTANCE": history.store})
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="page-browser-test", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", history
    server.shutdown()
    thread.join(10)
    close_app(app)
    history.store.close()


@pytest.fixture(scope="module")
def browser() -> Iterator:
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not look for drivers online
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="kgsched-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    print(f"\nbrowser screenshots: {ARTIFACTS}")
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def shot(driver, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def wait_for(driver, css: str, count: int = 1):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, WAIT).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, css)) >= count)
    return driver.find_elements(By.CSS_SELECTOR, css)


def test_example_query_shows_a_table_and_an_iri_opens_the_products_lineage(browser, site) -> None:
    from selenium.webdriver.common.by import By

    url, history = site
    browser.get(url + "/")
    wait_for(browser, ".yasqe .CodeMirror")
    assert "js" in browser.find_element(By.TAG_NAME, "body").get_attribute("class")
    assert not browser.find_element(By.ID, "plain-form").is_displayed()  # YASGUI took over
    browser.find_element(By.CSS_SELECTOR, 'a.example[data-example="runners"]').click()
    rows = wait_for(browser, ".yasr table tbody tr", 5)
    text = " ".join(row.text for row in rows)
    assert "geneva-batch" in text and "paris-cluster" in text
    assert "query" in parse_qs(urlparse(browser.current_url).query)  # the address bar is a permalink
    shot(browser, "01-runners")

    browser.find_element(By.CSS_SELECTOR, 'a.example[data-example="lineage"]').click()
    wait_for(browser, ".yasr table tbody a.iri")
    links = [a for a in browser.find_elements(By.CSS_SELECTOR, ".yasr table tbody a.iri")
             if a.get_attribute("href") == str(history.downstream)
             or str(history.downstream).endswith(a.text.split(":", 1)[-1])]
    shot(browser, "02-lineage-results")
    assert links, "the downstream product is in the lineage results"
    from selenium.webdriver.common.action_chains import ActionChains

    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", links[0])
    # a real mouse click on the link's first characters (a long IRI is cut with an ellipsis on screen)
    width = links[0].size["width"]
    ActionChains(browser).move_to_element_with_offset(links[0], -width // 2 + 12, 0).click().perform()
    nodes = wait_for(browser, "svg.lineage a.node", 5)
    assert urlparse(browser.current_url).path == "/resource"
    assert parse_qs(urlparse(browser.current_url).query)["iri"] == [str(history.downstream)]
    kinds = {node.get_attribute("class").split()[-1] for node in nodes}
    assert kinds == {"product", "execution", "dataset"}
    page = browser.find_element(By.TAG_NAME, "body").text
    assert "sha256:" in page and "We thank the contributors" in page
    shot(browser, "03-product-page")


def test_a_permalink_opens_with_its_query_and_runs_it(browser, site) -> None:
    from urllib.parse import urlencode

    url, _history = site
    query = "PREFIX ks: <https://w3id.org/kgsched#> SELECT ?runner ?cores WHERE { ?runner ks:cores ?cores } ORDER BY DESC(?cores)"
    browser.get(url + "/?" + urlencode({"query": query}))
    rows = wait_for(browser, ".yasr table tbody tr", 5)
    assert "paris-cluster" in rows[0].text and "64" in rows[0].text
    editor = browser.execute_script("return document.querySelector('.CodeMirror').CodeMirror.getValue()")
    assert editor == query
    shot(browser, "04-permalink")


def test_a_browser_opening_the_endpoint_is_sent_to_the_page(browser, site) -> None:
    from urllib.parse import quote

    url, _history = site
    browser.get(url + "/sparql?query=" + quote("ASK { ?s ?p ?o }"))
    wait_for(browser, ".yasr")
    assert urlparse(browser.current_url).path == "/"
    assert parse_qs(urlparse(browser.current_url).query)["query"] == ["ASK { ?s ?p ?o }"]
