"""``/resource?iri=…``: a page for any IRI in the graph, opened from the query page's results.

* A data product: its lineage as a picture (kgsched.service.page_lineage), checksum, size, where it
  is stored and its replicas (products with the same checksum elsewhere), and the acknowledgement
  to cite (kgsched.provenance.recording.acknowledgements).
* A runner: what it is, its jobs, its executions and the credits earned through them.
* Anything else: the triples it is the subject of, and those pointing at it, with their graphs.

Every value is bound as a checked VALUES block (never pasted), and every output is escaped.
"""

from __future__ import annotations

import html
from typing import Any

from flask import Blueprint, Response, request, url_for
from rdflib import URIRef
from rdflib.term import Node

from kgsched.errors import InvalidRequest
from kgsched.graph import queries
from kgsched.graph.binding import check_iri
from kgsched.graph.store import Store
from kgsched.namespaces import JOBS_GRAPH
from kgsched.provenance.recording import acknowledgements
from kgsched.service.page import (
    STYLE,
    iri_html,
    rdflib_term_json,
    resource_url,
    short_iri,
    table_html,
    term_html,
)
from kgsched.service.page_lineage import lineage_nodes, lineage_svg
from kgsched.service.state import current

bp = Blueprint("resources", __name__)

MAX_TRIPLES = 500








def rows_json(rows: list[dict[str, Node]]) -> list[dict[str, Any]]:
    return [{name: rdflib_term_json(term) for name, term in row.items()} for row in rows]


def section(title: str, body: str, element_id: str) -> str:
    return f'<section id="{element_id}"><h2>{html.escape(title)}</h2>\n{body}\n</section>'


def triples_sections(store: Store, iri: URIRef) -> str:
    outgoing = queries.select(store, "resource-outgoing", [{"s": iri}])
    incoming = queries.select(store, "resource-incoming", [{"o": iri}])
    parts = [section(f"Says ({len(outgoing)}{'+' if len(outgoing) >= MAX_TRIPLES else ''})",
                     table_html(["p", "o", "g"], rows_json(outgoing)) if outgoing else "<p>Nothing.</p>",
                     "outgoing")]
    if incoming:
        parts.append(section(f"Pointed at by ({len(incoming)})", table_html(["s", "p", "g"], rows_json(incoming)),
                             "incoming"))
    return "\n".join(parts)


def product_sections(store: Store, product: URIRef) -> str:
    facts_rows = queries.select(store, "resource-product", [{"product": product}])
    facts = facts_rows[0] if facts_rows else {}
    labels = {name: facts.get(name) for name in
              ("checksum", "sizeBytes", "storage", "site", "location", "outcome", "generated", "runner", "expression")}
    items = "\n".join(
        f"<dt>{html.escape(name)}</dt><dd>{table_cell(value)}</dd>" for name, value in labels.items()
        if value is not None)
    parts = [section("Data product", f'<dl class="facts">{items}</dl>', "facts")]
    rows = queries.select(store, "product-lineage", [{"product": product}])
    nodes = lineage_nodes(str(product), rows, label=short_label)
    parts.append(section("Lineage", f'<div class="picture">{lineage_svg(nodes, resource_url)}</div>'
                         '<p class="note">Top: this product; boxes below: the executions that made it (blue) and '
                         "what they used (green: products, yellow: datasets). Click a box to open it.</p>",
                         "lineage"))
    replicas: list[dict[str, Node]] = []
    if facts.get("checksum") is not None:
        replicas = queries.select(store, "resource-replicas", [{"checksum": facts["checksum"]}])
    parts.append(section(f"Replicas and locations ({len(replicas)})",
                         table_html(["replica", "storage", "site", "location", "status"], rows_json(replicas))
                         if replicas else "<p>No stored copy is recorded.</p>", "replicas"))
    thanks = acknowledgements(store, product)
    agents = "".join(
        f"<li>{iri_html(a['agent'])} {html.escape(a.get('name') or '')} "
        f"<small>({html.escape(', '.join(sorted(a.get('roles', []))))})</small></li>"
        for a in thanks["agents"])
    parts.append(section("Acknowledgement", f'<blockquote class="sentence">{html.escape(thanks["sentence"])}'
                         f"</blockquote><ul>{agents}</ul>", "acknowledgement"))
    return "\n".join(parts)


def runner_sections(store: Store, runner: URIRef) -> str:
    about = queries.select(store, "runners", [{"runner": runner}])
    jobs = queries.select(store, "job-list", [{"runner": runner, "jobs": JOBS_GRAPH}])
    executions = queries.select(store, "resource-runner-executions", [{"runner": runner}])
    credits = queries.select(store, "resource-runner-credits", [{"runner": runner}])
    parts = [
        section("Runner", table_html(["kind", "label", "site", "owner", "cores", "memoryBytes"], rows_json(about))
                if about else "<p>Not described.</p>", "runner"),
        section(f"Jobs it may take ({len(jobs)})",
                table_html(["job", "state", "created", "lease", "chosen", "expression"], rows_json(jobs))
                if jobs else "<p>No jobs.</p>", "jobs"),
        section(f"Executions ({len(executions)})",
                table_html(["execution", "started", "outcome", "duration", "product"], rows_json(executions))
                if executions else "<p>No executions yet.</p>", "executions"),
        section("Credits earned through it",
                table_html(["agent", "reason", "total", "entries"], rows_json(credits))
                if credits else "<p>No credits yet.</p>", "credits"),
    ]
    return "\n".join(parts)


def short_label(iri: str) -> str:
    short = short_iri(iri)
    return short if short != iri else iri.rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1] or iri


def table_cell(term: Node) -> str:
    return term_html(rdflib_term_json(term))


@bp.get("/resource")
def resource() -> Response:
    """The page of one IRI: a product's lineage, a runner's jobs and credits, or any IRI's triples."""
    given = request.args.get("iri", "").strip()
    if not given:
        raise InvalidRequest("give the resource: /resource?iri=IRI")
    iri = check_iri(given)
    store = current().store
    kind = "resource"
    if queries.ask(store, "product-exists", [{"product": iri}]):
        kind, body = "data product", product_sections(store, iri) + triples_sections(store, iri)
    elif queries.select(store, "runner-kind", [{"runner": iri}]):
        kind, body = "runner", runner_sections(store, iri) + triples_sections(store, iri)
    else:
        body = triples_sections(store, iri)
    query_link = url_for("page.index", query=f"DESCRIBE <{iri}>")
    page = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(short_label(str(iri)))} — kgsched</title>
<style>{STYLE}
  dl.facts {{ display: grid; grid-template-columns: max-content auto; gap: 0.2rem 1rem; }}
  dl.facts dt {{ font-weight: 600; }} dl.facts dd {{ margin: 0; word-break: break-all; }}
  h1 code, p.iri-full code, table.results td {{ word-break: break-all; }}
  .picture {{ overflow: auto; border: 1px solid #ddd; padding: 0.5rem; background: #fafcfd; }}
  blockquote.sentence {{ border-left: 4px solid #9ab; margin: 0.5rem 0; padding: 0.3rem 0.8rem; }}
</style>
</head>
<body>
<header><h1>{html.escape(kind.capitalize())}: <code>{html.escape(short_iri(str(iri)))}</code></h1>
<a href="{html.escape(url_for("page.index"))}">query page</a>
<a href="{html.escape(query_link)}">DESCRIBE it</a></header>
<p class="iri-full"><code>{html.escape(str(iri))}</code></p>
{body}
</body>
</html>
"""
    return Response(page, mimetype="text/html")
