"""``kgsched demo``: the main job, on an embedded store in a temporary directory.

It registers the example federation, shows what the graph knows, and then runs whatever later
stages (plan, execution, provenance, credits) are available. Each stage prints a heading so a
person can follow it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from kgsched.cli import main, render_rows
from kgsched.queries import select
from kgsched.registry import Registry, load_ontology
from kgsched.store import EmbeddedStore, Store

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ADMIN = "https://example.org/fed/admin"


def heading(text: str) -> None:
    click.echo("\n" + click.style(f"== {text} ", bold=True) + "=" * max(0, 70 - len(text)))


def register_examples(store: Store) -> None:
    from rdflib import URIRef

    load_ontology(store)
    documents = [(p.name, p.read_bytes()) for p in sorted(EXAMPLES.glob("*.ttl"))]
    result = Registry(store).register(documents, URIRef(ADMIN))
    click.echo(f"registered {len(result.resources)} resources ({result.triples} triples) from "
               f"{len(documents)} files in examples/")


def show_federation(store: Store) -> None:
    rows = select(store, "runners")
    short = [{k: _short(v) for k, v in row.items()} for row in rows]
    click.echo(render_rows(short, ["runner", "kind", "site", "owner", "cores"], "table"))


def _short(term: object) -> str:
    text = str(term)
    for prefix in ("https://example.org/fed/", "https://w3id.org/kgsched#"):
        if text.startswith(prefix):
            return text[len(prefix):]
    return text


def show_rejection(store: Store) -> None:
    from rdflib import URIRef

    from kgsched.errors import KgschedError

    bad = EXAMPLES / "invalid" / "runner-zero-cores.ttl"
    before = store.quad_count()
    try:
        Registry(store).register([(bad.name, bad.read_bytes())], URIRef("https://example.org/fed/person/mallory"))
    except KgschedError as exc:
        click.echo(f"{bad.name} rejected: {exc.detail}")
    click.echo(f"store unchanged: {before} quads before, {store.quad_count()} after")


def show_plan(store: Store) -> None:
    import json

    from rdflib import URIRef

    from kgsched.plan_cli import render_plan
    from kgsched.planner import plan_request, store_plan

    request = json.loads((EXAMPLES / "requests" / "combined-light-curve.json").read_text())
    plan = plan_request(store, request, URIRef("https://example.org/fed/person/alice"))
    store_plan(store, plan)
    click.echo(render_plan(plan))


@main.command()
@click.option("--store", "store_dir", default=None, help="Keep the demo's store here (default: a temporary directory).")
def demo(store_dir: str | None) -> None:
    """Run the demo: example federation, registration, plan, execution, provenance, credits."""
    with tempfile.TemporaryDirectory(prefix="kgsched-demo-") as tmp:
        path = Path(store_dir) if store_dir else Path(tmp) / "store"
        with EmbeddedStore(path) as store:
            heading(f"Embedded store at {path}")
            register_examples(store)
            heading("Runners of the federation (queries/runners.rq)")
            show_federation(store)
            heading("A bad registration is refused and changes nothing")
            show_rejection(store)
            heading("Alice asks for a combined light curve: the plan")
            show_plan(store)
