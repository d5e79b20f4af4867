"""One store interface, two implementations: an embedded on-disk Oxigraph and a remote SPARQL 1.1 server.

Everything above this module speaks rdflib terms and SPARQL text; only here do pyoxigraph objects
and HTTP appear. Queries see the union of all named graphs as their default graph (the remote server
must be configured that way: ``oxigraph serve --union-default-graph``, Fuseki ``tdb2:unionDefaultGraph``).
Every write is one SPARQL update (or one store transaction), so it either happens whole or not at all.
"""

from __future__ import annotations

import os
import threading
import urllib.error
import urllib.parse
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import pyoxigraph as ox
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.term import Node

from kgsched.errors import StoreError, SyntaxProblem
from kgsched.graph import DEFAULT_STORE_DIR
from kgsched.graph.binding import Rows, bind, check_iri
from kgsched.graph.updates import data_update

Solution = dict[str, Node]


class Store(ABC):
    """What kgsched needs from a triple store.

    ``write_lock`` serializes read-modify-write sequences inside one process: the stores execute each
    update atomically but do not serialize concurrent read-then-write sequences (measured: jobs
    handed out twice), so callers that read, decide and write hold this lock around the three.
    """

    def __init__(self) -> None:
        self.write_lock = threading.RLock()

    # -- reading -----------------------------------------------------------------------------------
    @abstractmethod
    def select(self, query: str, values: Rows | None = None) -> list[Solution]:
        """Rows of a SELECT query, each a mapping variable → rdflib term (unbound variables absent)."""

    @abstractmethod
    def ask(self, query: str, values: Rows | None = None) -> bool: ...

    @abstractmethod
    def construct(self, query: str, values: Rows | None = None) -> Graph: ...

    @abstractmethod
    def quad_count(self) -> int:
        """Quads in all named graphs: the figure that must not move when input is rejected."""

    def query_serialized(self, query: str, media_type: str, default_graphs: Sequence[str] | None = None,
                         named_graphs: Sequence[str] | None = None, output: BinaryIO | None = None,
                         ) -> tuple[bytes, str]:
        """Run a user's query and return its results already serialised in ``media_type`` (one of
        RESULTS_MEDIA_TYPES for SELECT/ASK, GRAPH_MEDIA_TYPES for CONSTRUCT/DESCRIBE), for the SPARQL
        endpoint. With ``output`` the bytes are written there as they come (and ``b""`` is returned),
        so the caller can stop a result that grows too big or too slow by raising from ``write``.
        Without graphs the default graph is the union of the named graphs; with only named graphs it
        is empty (SPARQL 1.1 Protocol). The caller checks the query first (kgsched.graph.guard)."""
        raise NotImplementedError

    def graph(self, graph_iri: URIRef) -> Graph:
        """A copy of one named graph."""
        check_iri(graph_iri)
        result = Graph()
        for row in self.select(
            "SELECT ?s ?p ?o WHERE { GRAPH ?g { ?s ?p ?o } }", [{"g": URIRef(graph_iri)}]
        ):
            result.add((row["s"], row["p"], row["o"]))
        return result

    def named_graphs(self) -> list[URIRef]:
        rows = self.select("SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }")
        return sorted(row["g"] for row in rows)  # type: ignore[type-var]

    # -- writing -----------------------------------------------------------------------------------
    @abstractmethod
    def update(self, update: str) -> None:
        """Run one SPARQL update, atomically."""

    def replace_graph(self, graph_iri: URIRef, data: Graph) -> None:
        """Make the named graph exactly ``data``, in one update."""
        check_iri(graph_iri)
        self.update(f"DROP SILENT GRAPH <{graph_iri}> ;\n" + insert_data(graph_iri, data))

    def add_to_graph(self, graph_iri: URIRef, data: Graph | Iterable[tuple[Node, Node, Node]]) -> None:
        """Add triples to a named graph, in one update."""
        check_iri(graph_iri)
        self.update(insert_data(graph_iri, data))

    @abstractmethod
    def bulk_load(self, data: bytes | str, graph_iri: URIRef, fmt: str = "text/turtle") -> None:
        """Fast, non-transactional load for large trusted inputs (benchmarks, trace imports)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the store."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def insert_data(graph_iri: URIRef, data: Graph | Iterable[tuple[Node, Node, Node]]) -> str:
    """An INSERT DATA update for the triples (kgsched.graph.updates writes them); a valid no-op if empty."""
    return data_update(insert={graph_iri: data}) or f"INSERT DATA {{ GRAPH <{check_iri(graph_iri)}> {{ }} }}"


# ---------------------------------------------------------------------------------------------------
# Embedded store
# ---------------------------------------------------------------------------------------------------

_XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"


def _to_rdflib(term: Any) -> Node:
    if isinstance(term, ox.NamedNode):
        return URIRef(term.value)
    if isinstance(term, ox.Literal):
        if term.language:
            return Literal(term.value, lang=term.language)
        datatype = term.datatype.value
        # rdflib writes xsd:string literals without a datatype; keep both stores' rows comparable.
        return Literal(term.value, datatype=None if datatype == _XSD_STRING else URIRef(datatype))
    if isinstance(term, ox.BlankNode):
        return BNode(term.value)
    raise StoreError(f"unsupported term from the store: {term!r}")


def _rdf_mime_to_ox(fmt: str) -> ox.RdfFormat:
    return {
        "text/turtle": ox.RdfFormat.TURTLE,
        "turtle": ox.RdfFormat.TURTLE,
        "application/n-triples": ox.RdfFormat.N_TRIPLES,
        "nt": ox.RdfFormat.N_TRIPLES,
        "application/n-quads": ox.RdfFormat.N_QUADS,
    }[fmt]


#: Media types the SPARQL endpoint serves, for SELECT/ASK and for CONSTRUCT/DESCRIBE.
RESULTS_MEDIA_TYPES: dict[str, ox.QueryResultsFormat] = {
    "application/sparql-results+json": ox.QueryResultsFormat.JSON,
    "application/sparql-results+xml": ox.QueryResultsFormat.XML,
    "text/csv": ox.QueryResultsFormat.CSV,
    "text/tab-separated-values": ox.QueryResultsFormat.TSV,
}
GRAPH_MEDIA_TYPES: dict[str, ox.RdfFormat] = {
    "text/turtle": ox.RdfFormat.TURTLE,
    "application/n-triples": ox.RdfFormat.N_TRIPLES,
    "application/ld+json": ox.RdfFormat.JSON_LD,
    "application/rdf+xml": ox.RdfFormat.RDF_XML,
}


class EmbeddedStore(Store):
    """An on-disk pyoxigraph store in a directory (or in memory with ``path=None``, for tests)."""

    def __init__(self, path: str | os.PathLike[str] | None = DEFAULT_STORE_DIR, *, read_only: bool = False):
        super().__init__()
        self.path = None if path is None else Path(path)
        try:
            if self.path is None:
                self._ox = ox.Store()
            elif read_only:
                self._ox = ox.Store.read_only(str(self.path))
            else:
                self.path.mkdir(parents=True, exist_ok=True)
                self._ox = ox.Store(str(self.path))
        except OSError as exc:
            raise StoreError(f"cannot open the store at {self.path}: {exc}") from exc
        self.read_only = read_only

    @property
    def oxigraph(self) -> ox.Store:
        """The underlying pyoxigraph store, for code that streams results without conversion."""
        return self._ox

    def raw_query(self, query: str, values: Rows | None = None, **options: Any) -> Any:
        try:
            return self._ox.query(bind(query, values), use_default_graph_as_union=True, **options)
        except SyntaxError as exc:
            raise SyntaxProblem(f"SPARQL syntax error: {exc}") from exc
        except OSError as exc:
            raise StoreError(str(exc)) from exc

    def select(self, query: str, values: Rows | None = None) -> list[Solution]:
        solutions = self.raw_query(query, values)
        if not isinstance(solutions, ox.QuerySolutions):
            raise SyntaxProblem("expected a SELECT query")
        names = [v.value for v in solutions.variables]
        rows = []
        # Converting to rdflib terms costs more than the query itself on large results; the same
        # terms recur across rows (runners, sites, booleans), so convert each distinct term once.
        memo: dict[Any, Node] = {}
        for solution in solutions:
            row = {}
            for name, term in zip(names, solution, strict=True):
                if term is not None:
                    converted = memo.get(term)
                    if converted is None:
                        converted = memo[term] = _to_rdflib(term)
                    row[name] = converted
            rows.append(row)
        return rows

    def ask(self, query: str, values: Rows | None = None) -> bool:
        result = self.raw_query(query, values)
        if not isinstance(result, ox.QueryBoolean):
            raise SyntaxProblem("expected an ASK query")
        return bool(result)

    def construct(self, query: str, values: Rows | None = None) -> Graph:
        result = self.raw_query(query, values)
        if not isinstance(result, ox.QueryTriples):
            raise SyntaxProblem("expected a CONSTRUCT or DESCRIBE query")
        graph = Graph()
        for triple in result:
            graph.add((_to_rdflib(triple.subject), _to_rdflib(triple.predicate), _to_rdflib(triple.object)))
        return graph

    def quad_count(self) -> int:
        return len(self._ox)

    def query_serialized(self, query: str, media_type: str, default_graphs: Sequence[str] | None = None,
                         named_graphs: Sequence[str] | None = None, output: BinaryIO | None = None,
                         ) -> tuple[bytes, str]:
        options: dict[str, Any] = {}
        if default_graphs or named_graphs:
            options["default_graph"] = [ox.NamedNode(str(check_iri(g))) for g in default_graphs or ()]
            if named_graphs:
                options["named_graphs"] = [ox.NamedNode(str(check_iri(g))) for g in named_graphs]
        else:
            options["use_default_graph_as_union"] = True
        try:
            result = self._ox.query(query, **options)
        except SyntaxError as exc:
            raise SyntaxProblem(f"SPARQL syntax error: {exc}") from exc
        except OSError as exc:
            raise StoreError(str(exc)) from exc
        if isinstance(result, ox.QueryTriples):
            fmt: ox.RdfFormat | ox.QueryResultsFormat = GRAPH_MEDIA_TYPES[media_type]
        else:
            fmt = RESULTS_MEDIA_TYPES[media_type]
        try:
            data = result.serialize(output, format=fmt)
        finally:
            # pyoxigraph results may only be dropped on the thread that made them; a traceback that
            # carried this frame to another thread would otherwise drop it there.
            del result
        return (data or b""), media_type

    def update(self, update: str) -> None:
        if self.read_only:
            raise StoreError("the store is open read-only")
        try:
            self._ox.update(update)
        except SyntaxError as exc:
            raise SyntaxProblem(f"SPARQL update syntax error: {exc}") from exc
        except OSError as exc:
            raise StoreError(str(exc)) from exc

    def bulk_load(self, data: bytes | str, graph_iri: URIRef, fmt: str = "text/turtle") -> None:
        check_iri(graph_iri)
        payload = data.encode() if isinstance(data, str) else data
        self._ox.bulk_load(payload, format=_rdf_mime_to_ox(fmt), to_graph=ox.NamedNode(str(graph_iri)))

    def close(self) -> None:
        if self.path is not None and not self.read_only:
            self._ox.flush()
        del self._ox


# ---------------------------------------------------------------------------------------------------
# Remote store
# ---------------------------------------------------------------------------------------------------

def _close_responses(exc: BaseException | None) -> None:
    """Close the HTTP responses an error chain holds: SPARQLWrapper re-raises urllib's HTTPError
    with its response unread and open, and the socket would otherwise stay open until the error
    is garbage-collected (a ResourceWarning wherever that happens to be)."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, urllib.error.HTTPError):
            exc.close()
        exc = exc.__cause__ or exc.__context__
        seen += 1


class RemoteStore(Store):
    """A SPARQL 1.1 server: query and update endpoints through SPARQLWrapper, loads through its
    Graph Store Protocol endpoint (so a server holding its directory lock can still be loaded)."""

    def __init__(
        self,
        query_endpoint: str,
        update_endpoint: str | None = None,
        store_endpoint: str | None = None,
        *,
        timeout: float = 60.0,
    ) -> None:
        super().__init__()
        base = query_endpoint.rsplit("/", 1)[0]
        self.query_endpoint = query_endpoint
        self.update_endpoint = update_endpoint or f"{base}/update"
        self.store_endpoint = store_endpoint or f"{base}/store"
        self.timeout = timeout

    @classmethod
    def from_url(cls, url: str, timeout: float = 60.0) -> RemoteStore:
        """Accept either the server root (Oxigraph: /query, /update, /store) or its query endpoint."""
        url = url.rstrip("/")
        if url.endswith(("/query", "/sparql")):
            return cls(url, timeout=timeout)
        return cls(f"{url}/query", timeout=timeout)

    def _wrapper(self, endpoint: str):
        from SPARQLWrapper import SPARQLWrapper

        wrapper = SPARQLWrapper(endpoint)
        wrapper.setTimeout(int(self.timeout))
        wrapper.setMethod("POST")
        wrapper.setRequestMethod("postdirectly")
        return wrapper

    def _run(self, query: str, return_format: str):
        from SPARQLWrapper.SPARQLExceptions import QueryBadFormed, SPARQLWrapperException

        wrapper = self._wrapper(self.query_endpoint)
        wrapper.setQuery(query)
        wrapper.setReturnFormat(return_format)
        try:
            return wrapper.query()
        except QueryBadFormed as exc:
            raise SyntaxProblem(f"SPARQL syntax error: {exc}") from exc
        except (SPARQLWrapperException, urllib.error.URLError, OSError) as exc:
            _close_responses(exc)
            raise StoreError(f"remote store failed: {exc}") from exc

    def select(self, query: str, values: Rows | None = None) -> list[Solution]:
        result = self._run(bind(query, values), "json").convert()
        if "results" not in result:
            raise SyntaxProblem("expected a SELECT query")
        return [{k: _json_term(v) for k, v in b.items()} for b in result["results"]["bindings"]]

    def ask(self, query: str, values: Rows | None = None) -> bool:
        result = self._run(bind(query, values), "json").convert()
        if "boolean" not in result:
            raise SyntaxProblem("expected an ASK query")
        return bool(result["boolean"])

    def construct(self, query: str, values: Rows | None = None) -> Graph:
        response = self._run(bind(query, values), "n3")
        graph = Graph()
        graph.parse(data=response.response.read(), format="turtle")
        return graph

    def quad_count(self) -> int:
        rows = self.select("SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } }")
        return int(rows[0]["n"])

    def query_serialized(self, query: str, media_type: str, default_graphs: Sequence[str] | None = None,
                         named_graphs: Sequence[str] | None = None, output: BinaryIO | None = None,
                         ) -> tuple[bytes, str]:
        """Pass the query and the Accept header through to the server (SPARQL 1.1 Protocol, form POST)."""
        fields: list[tuple[str, str]] = [("query", query)]
        fields += [("default-graph-uri", str(check_iri(g))) for g in default_graphs or ()]
        fields += [("named-graph-uri", str(check_iri(g))) for g in named_graphs or ()]
        if named_graphs and not default_graphs:
            # an empty default graph, as the protocol says; Oxigraph would otherwise use its union
            fields.append(("default-graph-uri", "urn:kgsched:empty-default-graph"))
        request = urllib.request.Request(
            self.query_endpoint, data=urllib.parse.urlencode(fields).encode(), method="POST",
            headers={"Accept": media_type, "Content-Type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                served = response.headers.get_content_type() or media_type
                if output is None:
                    return response.read(), served
                while chunk := response.read(65536):
                    output.write(chunk)
                return b"", served
        except urllib.error.HTTPError as exc:
            body = exc.read()[:2000].decode("utf-8", "replace")
            if exc.code == 400:
                raise SyntaxProblem(f"SPARQL syntax error: {body}") from exc
            raise StoreError(f"remote store answered {exc.code}: {body}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise StoreError(f"remote store failed: {exc}") from exc

    def update(self, update: str) -> None:
        from SPARQLWrapper.SPARQLExceptions import QueryBadFormed, SPARQLWrapperException

        wrapper = self._wrapper(self.update_endpoint)
        wrapper.setQuery(update)
        try:
            wrapper.query()
        except QueryBadFormed as exc:
            raise SyntaxProblem(f"SPARQL update syntax error: {exc}") from exc
        except (SPARQLWrapperException, urllib.error.URLError, OSError) as exc:
            raise StoreError(f"remote store failed: {exc}") from exc

    def bulk_load(self, data: bytes | str, graph_iri: URIRef, fmt: str = "text/turtle") -> None:
        check_iri(graph_iri)
        payload = data.encode() if isinstance(data, str) else data
        url = f"{self.store_endpoint}?{urllib.parse.urlencode({'graph': str(graph_iri)})}"
        request = urllib.request.Request(url, data=payload, method="POST", headers={"Content-Type": fmt})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            raise StoreError(f"remote load failed: {exc.code} {exc.read()[:500]!r}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise StoreError(f"remote store failed: {exc}") from exc


def _json_term(binding: dict[str, str]) -> Node:
    kind = binding["type"]
    if kind == "uri":
        return URIRef(binding["value"])
    if kind == "bnode":
        return BNode(binding["value"])
    if "xml:lang" in binding:
        return Literal(binding["value"], lang=binding["xml:lang"])
    datatype = binding.get("datatype")
    return Literal(binding["value"], datatype=URIRef(datatype) if datatype and datatype != _XSD_STRING else None)


def open_store(
    store_dir: str | None = None, endpoint: str | None = None, *, read_only: bool = False
) -> Store:
    """The store the user asked for: --endpoint / KGSCHED_ENDPOINT wins, else --store / KGSCHED_STORE."""
    endpoint = endpoint or os.environ.get("KGSCHED_ENDPOINT")
    if endpoint:
        return RemoteStore.from_url(endpoint)
    return EmbeddedStore(store_dir or os.environ.get("KGSCHED_STORE") or DEFAULT_STORE_DIR, read_only=read_only)
