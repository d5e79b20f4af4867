"""The query page at ``/``: the YASGUI editor and result views wired to ``/sparql``, and a plain HTML
page under it that works without JavaScript.

* YASGUI (npm ``@zazuko/yasgui`` 4.6.2, MIT) is vendored as its two built files under
  ``static/yasgui/`` with its licence, and served from here: the page needs no internet access.
* ``/?query=…`` is a permalink: the server runs the query and renders the table into the HTML (so
  it works with JavaScript off, for curl, and for screen readers); with JavaScript, YASGUI opens
  with that query and runs it, and the address bar follows each query run.
* Example queries come from ``queries/`` (runners, lineage, credits, stalled jobs); the editor
  knows the project's prefixes; every IRI in a result opens its resource page (``/resource``).
* Everything the server writes into the page is escaped (html.escape; JSON for the script with
  ``<``, ``>`` and ``&`` as \\u escapes), so no query or result can inject markup.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, request, send_from_directory, url_for
from rdflib import BNode, Graph, Literal, URIRef

from kgsched.errors import KgschedError
from kgsched.graph import queries
from kgsched.graph.guard import check_query
from kgsched.namespaces import PREFIXES
from kgsched.service.errors import Forbidden
from kgsched.service.sparql import UPDATE_FORMS, query_form, run_limited
from kgsched.service.state import current

bp = Blueprint("page", __name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
JSON_RESULTS = "application/sparql-results+json"
#: Rows the plain page renders; YASGUI pages through everything the endpoint returns.
MAX_PLAIN_ROWS = 2000

def default_query() -> str:
    """What the page shows before anyone typed a query (queries/page-default.rq, without its header)."""
    text = queries.get("page-default").text
    return "\n".join(line for line in text.splitlines() if not line.startswith("#+"))


@dataclass(frozen=True)
class Example:
    key: str
    title: str
    source: str
    text: str


#: (key, title, file in queries/, what replaces its ``# @values`` line so the example runs unbound)
_EXAMPLES = (
    ("runners", "Runners and where they run", "runners", None),
    ("lineage", "Lineage of every data product", "product-lineage",
     "  ?product a ks:DataProduct .  # bind one: VALUES ?product { <…> }"),
    ("credits", "Credits per agent and reason", "credit-totals", None),
    ("stalled", "Queued and stalled jobs", "stalled-jobs", None),
)


@cache
def examples() -> tuple[Example, ...]:
    """The example queries, from the project's own ``queries/*.rq`` files."""
    found = []
    for key, title, name, binding in _EXAMPLES:
        text = queries.get(name).text
        lines = [line for line in text.splitlines() if not line.startswith("#+")]
        if binding is not None:
            lines = [binding if line.strip() == "# @values" else line for line in lines]
        found.append(Example(key, title, f"queries/{name}.rq", "\n".join(lines).strip() + "\n"))
    return tuple(found)


def prefixes() -> dict[str, str]:
    return {prefix: str(namespace) for prefix, namespace in PREFIXES.items()}


# ---------------------------------------------------------------------------------------------------
# Terms as HTML
# ---------------------------------------------------------------------------------------------------

def short_iri(iri: str) -> str:
    """``ks:Runner`` for an IRI under a known namespace, else the IRI."""
    best = ""
    for prefix, namespace in prefixes().items():
        if iri.startswith(namespace) and len(namespace) > len(best):
            best, chosen = namespace, prefix
    if best:
        local = iri[len(best):]
        if local and all(c.isalnum() or c in "_-." for c in local):
            return f"{chosen}:{local}"
    return iri


def resource_url(iri: str) -> str:
    return url_for("resources.resource", iri=iri)


def iri_html(iri: str) -> str:
    return (f'<a class="iri" href="{html.escape(resource_url(iri))}" title="{html.escape(iri)}">'
            f"{html.escape(short_iri(iri))}</a>")


def term_html(term: dict[str, str] | None) -> str:
    """A SPARQL JSON term as escaped HTML: IRIs link to their resource page."""
    if term is None:
        return ""
    kind, value = term.get("type"), term.get("value", "")
    if kind == "uri":
        return iri_html(value)
    if kind == "bnode":
        return f'<span class="bnode">_:{html.escape(value)}</span>'
    text = f'<span class="literal">{html.escape(value)}</span>'
    if term.get("xml:lang"):
        return f'{text}<span class="lang">@{html.escape(term["xml:lang"])}</span>'
    datatype = term.get("datatype")
    if datatype and not datatype.endswith("#string"):
        return f'{text}<span class="datatype">^^{html.escape(short_iri(datatype))}</span>'
    return text


def rdflib_term_json(term: Any) -> dict[str, str]:
    if isinstance(term, URIRef):
        return {"type": "uri", "value": str(term)}
    if isinstance(term, BNode):
        return {"type": "bnode", "value": str(term)}
    assert isinstance(term, Literal)
    result = {"type": "literal", "value": str(term)}
    if term.language:
        result["xml:lang"] = term.language
    elif term.datatype:
        result["datatype"] = str(term.datatype)
    return result


def table_html(variables: list[str], rows: list[dict[str, Any]], limit: int = MAX_PLAIN_ROWS) -> str:
    head = "".join(f"<th>{html.escape(v)}</th>" for v in variables)
    body = "\n".join("<tr>" + "".join(f"<td>{term_html(row.get(v))}</td>" for v in variables) + "</tr>"
                     for row in rows[:limit])
    more = f'<p class="note">Showing the first {limit:,} of {len(rows):,} rows.</p>' if len(rows) > limit else ""
    return f'<table class="results"><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>{more}'


# ---------------------------------------------------------------------------------------------------
# Running a query for the page (the same guard and limits as /sparql)
# ---------------------------------------------------------------------------------------------------

def run_for_page(query: str) -> tuple[list[str], list[dict[str, Any]] | None, bool | None]:
    """(variables, rows, boolean) of a query run like ``/sparql`` runs it; CONSTRUCT gives s/p/o rows."""
    check_query(query)
    form = query_form(query)
    if form in UPDATE_FORMS:
        raise Forbidden("this endpoint is read-only: updates are refused")
    graph_result = form in ("CONSTRUCT", "DESCRIBE")
    media_type = "application/n-triples" if graph_result else JSON_RESULTS
    store = current().store
    config = current_app.config
    base_iri = url_for("sparql.sparql", _external=True)

    def work(buffer: Any) -> tuple[bytes, str]:
        return store.query_serialized(query, media_type, output=buffer, base_iri=base_iri)

    body, _served = run_limited(work, float(config["QUERY_TIMEOUT_SECONDS"]), int(config["MAX_RESULT_BYTES"]))
    if graph_result:
        graph = Graph()
        graph.parse(data=body, format="nt")
        rows = [{"subject": rdflib_term_json(s), "predicate": rdflib_term_json(p), "object": rdflib_term_json(o)}
                for s, p, o in sorted(graph)]
        return ["subject", "predicate", "object"], rows, None
    data = json.loads(body)
    if "boolean" in data:
        return [], None, bool(data["boolean"])
    return list(data["head"]["vars"]), list(data["results"]["bindings"]), None


def results_html(query: str) -> tuple[str, int]:
    """The rendered answer (or the error) for the plain page, and the HTTP status to send it with."""
    try:
        variables, rows, boolean = run_for_page(query)
    except KgschedError as exc:
        status = int(getattr(exc, "status_code", 400))
        return f'<p class="error" role="alert">{html.escape(str(exc))}</p>', status
    if boolean is not None:
        return f'<p class="boolean">ASK: <strong>{"true" if boolean else "false"}</strong></p>', 200
    assert rows is not None
    count = f'<p class="count">{len(rows):,} row{"s" if len(rows) != 1 else ""}</p>'
    return count + table_html(variables, rows), 200


# ---------------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------------

STYLE = """
  body { font-family: system-ui, sans-serif; margin: 1.5rem 2rem; color: #222; }
  header { display: flex; align-items: baseline; gap: 1.5rem; flex-wrap: wrap; }
  header h1 { font-size: 1.4rem; margin: 0; }
  nav.examples { margin: 0.6rem 0; display: flex; gap: 0.5rem; flex-wrap: wrap; align-items: baseline; }
  nav.examples a { padding: 0.15rem 0.6rem; border: 1px solid #9ab; border-radius: 1rem; text-decoration: none; }
  textarea { width: 100%; height: 14rem; font-family: ui-monospace, monospace; font-size: 0.9rem; }
  table.results { border-collapse: collapse; margin-top: 0.5rem; font-size: 0.85rem; }
  table.results td, table.results th { border: 1px solid #ccc; padding: 0.2rem 0.5rem; text-align: left;
    vertical-align: top; }
  table.results th { background: #eef2f5; }
  .error { color: #a00; white-space: pre-wrap; font-family: ui-monospace, monospace; }
  .datatype, .lang { color: #777; font-size: 0.8em; }
  .note, .count { color: #555; }
  body.js #plain-form { display: none; }
  body:not(.js) #yasgui { display: none; }
"""


def _script_json(value: Any) -> str:
    """JSON safe inside <script>: no '<', '>' or '&' can close the element or open a comment."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


SCRIPT = """
(function () {
  if (!window.Yasgui) { return; }
  var config = JSON.parse(document.getElementById("kgsched-config").textContent);
  var textarea = document.getElementById("query");
  document.body.classList.add("js");
  var plain = document.getElementById("plain-results");
  if (plain) { plain.hidden = true; }
  var yasgui = new Yasgui(document.getElementById("yasgui"), {
    requestConfig: { endpoint: config.endpoint, method: "POST" },
    endpointCatalogueOptions: { getData: function () { return [{ endpoint: config.endpoint }]; } },
    copyEndpointOnNewTab: true, persistenceId: null, populateFromUrl: false, autoAddOnInit: true,
    yasqe: { value: textarea.value },
    yasr: { prefixes: config.prefixes, defaultPlugin: "table" }
  });
  var tab = yasgui.getTab();
  tab.setQuery(textarea.value);
  yasgui.on("query", function (instance, running) {
    var url = config.page + "?" + new URLSearchParams({ query: running.getQuery() }).toString();
    history.replaceState(null, "", url);
  });
  if (config.run) { tab.query(); }
  document.querySelectorAll("a.example").forEach(function (link) {
    link.addEventListener("click", function (event) {
      event.preventDefault();
      var current = yasgui.getTab();
      current.setQuery(config.examples[link.dataset.example]);
      current.query();
    });
  });
  document.getElementById("yasgui").addEventListener("click", function (event) {
    var link = event.target.closest("a.iri");
    var cut = event.target.closest(".expandable");  // a long value YASR shows cut: its first click opens it too
    if (!link && cut && cut.querySelectorAll("a.iri").length === 1) { link = cut.querySelector("a.iri"); }
    if (!link) { return; }
    var iri = link.getAttribute("href");
    if (!/^[a-z][a-z0-9+.-]*:/i.test(iri)) { return; }
    event.preventDefault();
    event.stopPropagation();
    window.location.href = config.resource + "?" + new URLSearchParams({ iri: iri }).toString();
  }, true);
})();
"""


def render_page(query: str, results: str, run: bool) -> str:
    endpoint = url_for("sparql.sparql", _external=True)
    config = {
        "endpoint": endpoint, "page": url_for("page.index"), "resource": url_for("resources.resource"),
        "prefixes": prefixes(), "run": run, "examples": {e.key: e.text for e in examples()},
    }
    links = "\n".join(
        f'<a class="example" data-example="{html.escape(e.key)}" title="{html.escape(e.source)}" '
        f'href="{html.escape(url_for("page.index") + "?" + urlencode({"query": e.text}))}">{html.escape(e.title)}</a>'
        for e in examples())
    static = url_for("page.yasgui_static", name="")
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>kgsched — SPARQL</title>
<link rel="stylesheet" href="{html.escape(static)}yasgui.min.css">
<style>{STYLE}</style>
</head>
<body>
<header>
<h1>kgsched knowledge graph</h1>
<span>Read-only SPARQL 1.1 at <code>{html.escape(endpoint)}</code> (default graph: the union of the named
graphs) · <a href="{html.escape(url_for("meta.openapi"))}">REST API</a></span>
</header>
<nav class="examples" aria-label="Example queries"><span>Examples:</span>
{links}
</nav>
<div id="yasgui"></div>
<form id="plain-form" method="get" action="{html.escape(url_for("page.index"))}">
<textarea id="query" name="query" spellcheck="false" aria-label="SPARQL query">{html.escape(query)}</textarea>
<p><button type="submit">Run</button> <small>Without JavaScript the server runs the query and shows the
table; <code>/?query=…</code> links open and run a query.</small></p>
</form>
<section id="plain-results" aria-live="polite">
{results}
</section>
<script type="application/json" id="kgsched-config">{_script_json(config)}</script>
<script src="{html.escape(static)}yasgui.min.js"></script>
<script>{SCRIPT}</script>
</body>
</html>
"""


@bp.get("/")
def index() -> Response:
    """The query page; with ``?query=`` the server also runs the query and renders its table."""
    query = request.args.get("query")
    results, status = ("", 200)
    if query and query.strip():
        results, status = results_html(query)
    return Response(render_page(query or default_query(), results, bool(query and query.strip())),
                    status=status, mimetype="text/html")


@bp.get("/static/yasgui/<path:name>")
def yasgui_static(name: str) -> Response:
    """The vendored YASGUI build (js, css, licence), cached by browsers for a day."""
    return send_from_directory(STATIC_DIR / "yasgui", name, max_age=86400)
