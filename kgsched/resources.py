"""Finds the packaged ontology, shapes, queries and examples, and resolves ontology imports offline.

The files live at the top of the repository (ontology/, shapes/, queries/, examples/) where people
read them; kgsched/data/ links to them so that an installed package carries them too (``kgsched demo``
runs the example federation from any directory).
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

from rdflib import Graph

_DATA = resources.files("kgsched") / "data"

#: owl:imports IRIs and the local files that stand for them, so nothing is fetched from the network.
IMPORTS: dict[str, str] = {
    "http://www.w3.org/ns/prov-o": "imports/prov-o-core.ttl",
    "http://www.w3.org/ns/prov": "imports/prov-o-core.ttl",
}


def data_path(*parts: str) -> Path:
    return Path(str(_DATA.joinpath(*parts)))


def ontology_path() -> Path:
    return data_path("ontology", "kgsched.ttl")


def shape_files() -> list[Path]:
    return sorted(data_path("shapes").glob("*.ttl"))


def query_dir() -> Path:
    return data_path("queries")


def examples_dir() -> Path:
    """The example federation: sites, people, runners, datasets, workflows and their code, requests."""
    return data_path("examples")


@cache
def _ontology_turtle() -> str:
    """The ontology with its imports, as one Turtle text (parsed once per process)."""
    graph = Graph()
    graph.parse(ontology_path(), format="turtle")
    for target in sorted(set(IMPORTS.values())):
        graph.parse(data_path("ontology", target), format="turtle")
    return graph.serialize(format="nt")


def ontology_graph() -> Graph:
    """A fresh copy of the ontology (kgsched.ttl plus its resolved imports)."""
    graph = Graph()
    graph.parse(data=_ontology_turtle(), format="nt")
    return graph


@cache
def _shapes_nt() -> str:
    graph = Graph()
    for path in shape_files():
        graph.parse(path, format="turtle")
    return graph.serialize(format="nt")


def shapes_graph() -> Graph:
    """A fresh copy of all SHACL shapes."""
    graph = Graph()
    graph.parse(data=_shapes_nt(), format="nt")
    return graph
