"""The planner's and service's SPARQL, one question per ``queries/*.rq`` file, loaded once.

Each file starts with a comment header (grlc style) that keeps it valid SPARQL and documents it::

    #+ summary: Cached products for a batch of expression addresses
    #+ params: address
    # @values            <- where the bound VALUES block goes

Values are never pasted into the text: ``run(store, name, values)`` binds them with a VALUES block
built from checked rdflib terms (see kgsched.graph.binding).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from rdflib import Graph

from kgsched.errors import NotFound
from kgsched.graph.binding import Rows, bind
from kgsched.graph.store import Solution, Store
from kgsched.resources import query_dir

_HEADER_RE = re.compile(r"^#\+\s*(\w+):\s*(.*)$")


@dataclass(frozen=True)
class NamedQuery:
    name: str
    text: str
    summary: str
    params: tuple[str, ...]

    @property
    def form(self) -> str:
        skipped = ("#", "PREFIX", "prefix", "BASE", "base")
        body = "\n".join(line for line in self.text.splitlines() if not line.lstrip().startswith(skipped))
        return re.match(r"\s*(\w+)", body).group(1).upper() if body.strip() else ""


def _parse(name: str, text: str) -> NamedQuery:
    header: dict[str, str] = {}
    for line in text.splitlines():
        match = _HEADER_RE.match(line)
        if match:
            header[match.group(1)] = match.group(2).strip()
    params = tuple(p.strip() for p in header.get("params", "").split(",") if p.strip())
    return NamedQuery(name, text, header.get("summary", ""), params)


@cache
def all_queries() -> dict[str, NamedQuery]:
    return {path.stem: _parse(path.stem, path.read_text()) for path in sorted(query_dir().glob("*.rq"))}


def get(name: str) -> NamedQuery:
    try:
        return all_queries()[name]
    except KeyError:
        raise NotFound(f"no query named {name!r}; known: {', '.join(sorted(all_queries()))}") from None


def select(store: Store, name: str, values: Rows | None = None) -> list[Solution]:
    return store.select(get(name).text, values)


def ask(store: Store, name: str, values: Rows | None = None) -> bool:
    return store.ask(get(name).text, values)


def construct(store: Store, name: str, values: Rows | None = None) -> Graph:
    return store.construct(get(name).text, values)


def update(store: Store, name: str, values: Rows | None = None) -> None:
    """Run a packaged update (DELETE … WHERE) with the values bound at its ``# @values`` marker."""
    store.update(text(name, values))


def text(name: str, values: Rows | None = None) -> str:
    """The named query with the values bound: for an update request that joins several parts with
    ``;`` (so they apply together or not at all)."""
    query = get(name)
    if values is not None and "# @values" not in query.text:
        raise ValueError(f"{name}.rq has no '# @values' marker to bind values at")
    return bind(query.text, values)
