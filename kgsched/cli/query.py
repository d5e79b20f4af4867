"""``kgsched query``: a read-only SPARQL query (text, a .rq file, or a packaged query's name) as a table.

Results print as an aligned table, JSON or CSV (SELECT), true/false (ASK), or Turtle / JSON-LD
(CONSTRUCT, DESCRIBE). The store is imported when the query runs, not for ``--help``.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import click

from kgsched.cli.common import StoreOptions, reports_errors

_PREFIX_DECL_RE = re.compile(r"^\s*PREFIX\s+([A-Za-z][\w.-]*)?:", re.IGNORECASE | re.MULTILINE)


def with_default_prefixes(text: str) -> str:
    """Prepend kgsched's usual PREFIX lines that the query does not declare itself."""
    from kgsched.namespaces import PREFIXES

    declared = set(_PREFIX_DECL_RE.findall(text))
    missing = [f"PREFIX {p}: <{ns}>" for p, ns in PREFIXES.items() if p not in declared]
    return "\n".join(missing) + ("\n" if missing else "") + text


def _query_text(query_or_file: str) -> str:
    from kgsched.graph import queries

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


@click.command()
@click.argument("query_or_file")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.pass_obj
@reports_errors
def query(options: StoreOptions, query_or_file: str, fmt: str) -> None:
    """Run a read-only SPARQL query (text, a .rq file, or the name of a packaged query)."""
    from kgsched.graph import queries
    from kgsched.graph.guard import check_query
    from kgsched.namespaces import bind_prefixes

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
