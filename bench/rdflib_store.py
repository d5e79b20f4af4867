"""The Store interface over an rdflib in-memory Dataset: the baseline the planner benchmark compares
Oxigraph against (the same queries/*.rq text, the same VALUES binding). Not for production."""

from __future__ import annotations

from rdflib import Dataset, Graph, URIRef

from kgsched.graph.binding import Rows, bind
from kgsched.graph.store import Solution, Store


class RdflibStore(Store):
    def __init__(self) -> None:
        super().__init__()
        self.dataset = Dataset(default_union=True)

    def _query(self, query: str, values: Rows | None):
        return self.dataset.query(bind(query, values))

    def select(self, query: str, values: Rows | None = None) -> list[Solution]:
        result = self._query(query, values)
        names = [str(v) for v in result.vars]
        return [{n: row[i] for i, n in enumerate(names) if row[i] is not None} for row in result]

    def ask(self, query: str, values: Rows | None = None) -> bool:
        return bool(self._query(query, values).askAnswer)

    def construct(self, query: str, values: Rows | None = None) -> Graph:
        graph = Graph()
        for triple in self._query(query, values):
            graph.add(triple)
        return graph

    def quad_count(self) -> int:
        return sum(len(g) for g in self.dataset.graphs() if g.identifier != self.dataset.default_graph.identifier)

    def update(self, update: str) -> None:
        self.dataset.update(update)

    def bulk_load(self, data: bytes | str, graph_iri: URIRef, fmt: str = "text/turtle") -> None:
        self.dataset.graph(graph_iri).parse(data=data, format="nt" if "n-triples" in fmt else "turtle")
