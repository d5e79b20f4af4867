"""The ``kgsched`` command line: initialise a store, register and validate Turtle, query.

Exit status 0 on success, 1 when the input is rejected (the reason goes to stderr), so scripts and CI
can rely on it. Commands of later concerns (plan, serve, runner) register themselves on ``main``.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from kgsched.errors import KgschedError, ShapeViolation
from kgsched.graph import queries
from kgsched.graph.binding import check_iri
from kgsched.graph.guard import check_query
from kgsched.graph.store import DEFAULT_STORE_DIR, Store, open_store
from kgsched.namespaces import ONTOLOGY_GRAPH, PREFIXES, bind_prefixes
from kgsched.registry.registration import Registry, load_ontology

DEFAULT_REGISTRANT = "urn:kgsched:agent:local-admin"


class StoreOptions:
    """The --store/--endpoint choice, opened lazily (so --help never touches the disk)."""

    def __init__(self, store_dir: str | None, endpoint: str | None) -> None:
        self.store_dir = store_dir
        # a server's own query URL (KGSCHED_QUERY_ENDPOINT, with its update/store URLs and credentials
        # in the other KGSCHED_* settings: kgsched.graph.store.REMOTE_SETTINGS) also picks the remote store
        self.endpoint = endpoint or os.environ.get("KGSCHED_QUERY_ENDPOINT") or None

    def open(self, *, read_only: bool = False) -> Store:
        if read_only and not self.endpoint:
            path = Path(self.store_dir or os.environ.get("KGSCHED_STORE") or DEFAULT_STORE_DIR)
            if not path.exists():
                raise KgschedError(f"no store at {path}; run 'kgsched init' or 'kgsched register' first")
        return open_store(self.store_dir, self.endpoint, read_only=read_only)


def reports_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the project's errors into a message on stderr and exit status 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ShapeViolation as exc:
            click.echo(f"rejected: {exc.detail}", err=True)
            click.echo("\nSHACL report:\n" + exc.report_text, err=True)
            sys.exit(1)
        except KgschedError as exc:
            click.echo(f"rejected: {exc.error}: {exc.detail}", err=True)
            sys.exit(1)

    return wrapper


@click.group()
@click.option("--store", "store_dir", envvar="KGSCHED_STORE", default=None,
              help=f"Directory of the embedded store (default {DEFAULT_STORE_DIR}; env KGSCHED_STORE).")
@click.option("--endpoint", envvar="KGSCHED_ENDPOINT", default=None,
              help="A SPARQL 1.1 server instead (its root or query URL; env KGSCHED_ENDPOINT).")
@click.version_option(package_name="kgsched")
@click.pass_context
def main(ctx: click.Context, store_dir: str | None, endpoint: str | None) -> None:
    """kgsched: provenance knowledge graph and scheduler for federated analysis."""
    ctx.obj = StoreOptions(store_dir, endpoint)


def ensure_ontology(store: Store) -> None:
    if not store.ask("ASK { GRAPH ?g { ?s ?p ?o } }", [{"g": ONTOLOGY_GRAPH}]):
        load_ontology(store)


@main.command()
@click.pass_obj
@reports_errors
def init(options: StoreOptions) -> None:
    """Load (or refresh) the ontology into the store."""
    with options.open() as store:
        count = load_ontology(store)
    click.echo(f"ontology loaded: {count} triples")


def _documents(files: tuple[str, ...]) -> list[tuple[str, bytes]]:
    return [(path, Path(path).read_bytes()) for path in files]


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--as", "registrant", envvar="KGSCHED_REGISTRANT", default=DEFAULT_REGISTRANT, show_default=True,
              help="IRI of the registrant that will own what the files describe.")
@click.pass_obj
@reports_errors
def register(options: StoreOptions, files: tuple[str, ...], registrant: str) -> None:
    """Validate FILES (Turtle) and register them, all or nothing."""
    with options.open() as store:
        ensure_ontology(store)
        result = Registry(store).register(_documents(files), check_iri(registrant))
    click.echo(f"registered {len(result.resources)} resources ({result.triples} triples) for {registrant}")


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--as", "registrant", envvar="KGSCHED_REGISTRANT", default=DEFAULT_REGISTRANT, show_default=True)
@click.pass_obj
@reports_errors
def validate(options: StoreOptions, files: tuple[str, ...], registrant: str) -> None:
    """Check FILES as 'register' would, writing nothing."""
    store_dir = Path(options.store_dir or os.environ.get("KGSCHED_STORE") or DEFAULT_STORE_DIR)
    if options.endpoint or store_dir.exists():
        store = options.open(read_only=not options.endpoint)
    else:
        from kgsched.graph.store import EmbeddedStore

        store = EmbeddedStore(None)  # nothing registered yet: check against an empty federation
    with store:
        _, subjects = Registry(store).check(_documents(files), check_iri(registrant))
    click.echo(f"valid: {len(subjects)} resources in {len(files)} file(s)")


_PREFIX_DECL_RE = re.compile(r"^\s*PREFIX\s+([A-Za-z][\w.-]*)?:", re.IGNORECASE | re.MULTILINE)


def with_default_prefixes(text: str) -> str:
    """Prepend kgsched's usual PREFIX lines that the query does not declare itself."""
    declared = set(_PREFIX_DECL_RE.findall(text))
    missing = [f"PREFIX {p}: <{ns}>" for p, ns in PREFIXES.items() if p not in declared]
    return "\n".join(missing) + ("\n" if missing else "") + text


def _query_text(query_or_file: str) -> str:
    path = Path(query_or_file)
    if len(query_or_file) < 4096 and "\n" not in query_or_file and path.is_file():
        return path.read_text()
    if re.fullmatch(r"[\w-]+", query_or_file) and query_or_file in queries.all_queries():
        return queries.get(query_or_file).text
    return query_or_file


def _cell(term: Any) -> str:
    return "" if term is None else str(term)


def render_rows(rows: list[dict[str, Any]], variables: list[str], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([{v: _cell(r.get(v)) for v in variables if v in r} for r in rows], indent=2)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(variables)
        for row in rows:
            writer.writerow([_cell(row.get(v)) for v in variables])
        return buffer.getvalue().rstrip("\n")
    table = [[_cell(row.get(v)) for v in variables] for row in rows]
    widths = [max([len(v)] + [len(r[i]) for r in table]) for i, v in enumerate(variables)]
    lines = ["  ".join(v.ljust(w) for v, w in zip(variables, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in table]
    lines.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(lines)


_VARS_RE = re.compile(r"\?([A-Za-z_]\w*)")


def _select_variables(text: str, rows: list[dict[str, Any]]) -> list[str]:
    """Projection order as written (SELECT ?a ?b), falling back to the rows' keys for SELECT *."""
    match = re.search(r"SELECT\s+(?:DISTINCT\s+|REDUCED\s+)?(.*?)\s*(?:WHERE|FROM|\{)", text, re.I | re.S)
    order: list[str] = []
    if match and "*" not in match.group(1):
        for name in re.findall(r"(?:AS\s+)?\?([A-Za-z_]\w*)", match.group(1), re.I):
            if name not in order:
                order.append(name)
        # for "(expr AS ?x)" keep only the ?x that follows AS
        aliases = re.findall(r"AS\s+\?([A-Za-z_]\w*)", match.group(1), re.I)
        inner = set(re.findall(r"\(([^()]*?)\s+AS", match.group(1), re.I))
        dropped = {v for expr in inner for v in _VARS_RE.findall(expr)} - set(aliases)
        order = [v for v in order if v not in dropped]
    for row in rows:
        for key in row:
            if key not in order:
                order.append(key)
    return order


@main.command()
@click.argument("query_or_file")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.pass_obj
@reports_errors
def query(options: StoreOptions, query_or_file: str, fmt: str) -> None:
    """Run a read-only SPARQL query (text, a .rq file, or the name of a packaged query)."""
    text = with_default_prefixes(check_query(_query_text(query_or_file)))
    form = queries._parse("cli", text).form
    with options.open(read_only=True) as store:
        if form == "ASK":
            click.echo("true" if store.ask(text) else "false")
        elif form in ("CONSTRUCT", "DESCRIBE"):
            graph = store.construct(text)
            bind_prefixes(graph)
            click.echo(graph.serialize(format="json-ld" if fmt == "json" else "turtle"))
        else:
            rows = store.select(text)
            click.echo(render_rows(rows, _select_variables(text, rows), fmt))


@main.command()
@click.option("--as", "registrant", envvar="KGSCHED_REGISTRANT", default=DEFAULT_REGISTRANT, show_default=True)
@click.pass_obj
@reports_errors
def unregister(options: StoreOptions, registrant: str) -> None:
    """Remove everything the registrant registered."""
    with options.open() as store:
        removed = Registry(store).unregister(check_iri(registrant))
    click.echo(f"removed {removed} triples registered by {registrant}")


def _register_commands() -> None:
    """Commands of other modules attach themselves to ``main`` when imported."""
    from kgsched.cli import demo, export, plan, runner, serve, wfcommons  # noqa: F401


_register_commands()

if __name__ == "__main__":  # pragma: no cover
    main()
