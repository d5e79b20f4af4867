"""One store interface, two implementations: an embedded on-disk Oxigraph and a remote SPARQL 1.1 server.

Everything above this module speaks rdflib terms and SPARQL text; only here do pyoxigraph objects
and HTTP appear. Queries see the union of all named graphs as their default graph (the remote server
must be configured that way: ``oxigraph serve --union-default-graph``, Fuseki ``tdb2:unionDefaultGraph``;
Virtuoso, GraphDB and QLever do it by default). The remote store is tested on Oxigraph and Virtuoso 7.2.
Every write is one SPARQL update (or one store transaction), so it either happens whole or not at all.
"""

from __future__ import annotations

import base64
import copy
import http.client
import json
import os
import threading
import urllib.error
import urllib.parse
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import pyoxigraph as ox
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.term import Node

from kgsched.errors import StoreError, SyntaxProblem
from kgsched.graph import DEFAULT_STORE_DIR
from kgsched.graph.binding import Rows, bind, check_iri
from kgsched.graph.keep_alive import ConnectionPool, HTTPStatusError
from kgsched.graph.rdfio import XSD_STRING, ox_to_rdflib
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
                         base_iri: str | None = None) -> tuple[bytes, str]:
        """Run a user's query and return its results already serialised in ``media_type`` (one of
        RESULTS_MEDIA_TYPES for SELECT/ASK, GRAPH_MEDIA_TYPES for CONSTRUCT/DESCRIBE), for the SPARQL
        endpoint. With ``output`` the bytes are written there as they come (and ``b""`` is returned),
        so the caller can stop a result that grows too big or too slow by raising from ``write``.
        Without graphs the default graph is the union of the named graphs; with only named graphs it
        is empty (SPARQL 1.1 Protocol). Relative IRIs resolve against ``base_iri`` (the endpoint's URL).
        The caller checks the query first (kgsched.graph.guard)."""
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

def _to_rdflib(term: Any) -> Node:
    return ox_to_rdflib(term, StoreError)


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
                         base_iri: str | None = None) -> tuple[bytes, str]:
        options: dict[str, Any] = {}
        if default_graphs or named_graphs:
            options["default_graph"] = [ox.NamedNode(str(check_iri(g))) for g in default_graphs or ()]
            if named_graphs:
                options["named_graphs"] = [ox.NamedNode(str(check_iri(g))) for g in named_graphs]
        else:
            options["use_default_graph_as_union"] = True
        if base_iri:
            options["base_iri"] = str(check_iri(base_iri))
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

#: Environment variables (and service configuration keys without the prefix) for a remote store.
REMOTE_SETTINGS = {
    "QUERY_ENDPOINT": "KGSCHED_QUERY_ENDPOINT",
    "UPDATE_ENDPOINT": "KGSCHED_UPDATE_ENDPOINT",
    "STORE_ENDPOINT": "KGSCHED_STORE_ENDPOINT",
    "ENDPOINT_USER": "KGSCHED_ENDPOINT_USER",
    "ENDPOINT_PASSWORD": "KGSCHED_ENDPOINT_PASSWORD",
    "ENDPOINT_AUTH": "KGSCHED_ENDPOINT_AUTH",
}

_CONSTRUCT_ACCEPT = "application/n-triples, text/turtle;q=0.9, application/rdf+xml;q=0.5"
_RDF_PARSERS = {"application/n-triples": "nt", "text/plain": "nt", "text/turtle": "turtle",
                "application/x-turtle": "turtle", "text/rdf+n3": "turtle", "application/rdf+xml": "xml"}


class RemoteStore(Store):
    """A SPARQL 1.1 server, spoken to in the forms every server accepts.

    * Three URLs: the query endpoint, the update endpoint and the Graph Store Protocol endpoint (for
      bulk loads, so a server holding its directory lock can still be loaded). ``from_url`` derives
      them from one base URL in Oxigraph's layout (``/query``, ``/update``, ``/store``); Virtuoso,
      Fuseki, GraphDB and QLever name them differently, so each can be given (see the README).
    * Queries and updates are form POSTs (``application/x-www-form-urlencoded``): Virtuoso 7.2 never
      answers a direct ``application/sparql-query`` POST, and every server takes the form.
    * Credentials (HTTP basic or digest) come from the configuration, never from the graph; basic is
      sent with the first request, digest answers the server's challenge.
    * What the text itself must avoid to stay portable is handled where the text is made: bound
      values go inside the WHERE group (kgsched.graph.binding) and blank nodes are written through
      ``INSERT {…} WHERE {}`` rather than ``INSERT DATA`` (kgsched.graph.updates).
    """

    def __init__(
        self,
        query_endpoint: str,
        update_endpoint: str | None = None,
        store_endpoint: str | None = None,
        *,
        timeout: float = 60.0,
        user: str | None = None,
        password: str | None = None,
        auth: str = "basic",
    ) -> None:
        super().__init__()
        base = query_endpoint.rsplit("/", 1)[0]
        self.query_endpoint = query_endpoint
        self.update_endpoint = update_endpoint or f"{base}/update"
        self.store_endpoint = store_endpoint or f"{base}/store"
        self.timeout = timeout
        self.user = user
        self._opener = _opener([self.query_endpoint, self.update_endpoint, self.store_endpoint],
                               user, password, auth)
        self._pool = None if user and auth == "digest" else ConnectionPool(_basic_authorization(user, password))
        self._proxy_for: dict[str, bool] = {}

    def with_timeout(self, timeout: float) -> RemoteStore:
        """The same server and credentials with another socket timeout (a user's query gives up sooner)."""
        clone = copy.copy(self)
        clone.timeout = timeout
        return clone

    @classmethod
    def from_url(cls, url: str, timeout: float = 60.0, **options: Any) -> RemoteStore:
        """Accept either the server root (Oxigraph: /query, /update, /store) or its query endpoint."""
        url = url.rstrip("/")
        if url.endswith(("/query", "/sparql")):
            return cls(url, timeout=timeout, **options)
        return cls(f"{url}/query", timeout=timeout, **options)

    @classmethod
    def from_settings(cls, endpoint: str | None, settings: Mapping[str, Any], timeout: float = 60.0) -> RemoteStore:
        """The store a configuration describes: ENDPOINT (a base URL) and/or QUERY_ENDPOINT,
        UPDATE_ENDPOINT, STORE_ENDPOINT, ENDPOINT_USER, ENDPOINT_PASSWORD, ENDPOINT_AUTH."""
        auth = str(settings.get("ENDPOINT_AUTH") or "basic").lower()
        if auth not in ("basic", "digest"):
            raise StoreError(f"ENDPOINT_AUTH must be 'basic' or 'digest', not {auth!r}")
        options = {"user": settings.get("ENDPOINT_USER") or None,
                   "password": settings.get("ENDPOINT_PASSWORD") or None, "auth": auth}
        query = settings.get("QUERY_ENDPOINT")
        if query:
            return cls(str(query), settings.get("UPDATE_ENDPOINT") or None, settings.get("STORE_ENDPOINT") or None,
                       timeout=timeout, **options)
        if not endpoint:
            raise StoreError("a remote store needs ENDPOINT or QUERY_ENDPOINT")
        store = cls.from_url(endpoint, timeout=timeout, **options)
        store.update_endpoint = settings.get("UPDATE_ENDPOINT") or store.update_endpoint
        store.store_endpoint = settings.get("STORE_ENDPOINT") or store.store_endpoint
        return store

    # -- HTTP --------------------------------------------------------------------------------------
    @contextmanager
    def _post(self, url: str, fields: Sequence[tuple[str, str]], accept: str | None) -> Iterator[Any]:
        """A form POST (``accept`` given: a query, else an update); yields the response to read."""
        headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        if accept:
            headers["Accept"] = accept
        body = urllib.parse.urlencode(fields).encode("utf-8")
        with self._send(url, body, headers, "SPARQL syntax error" if accept else "SPARQL update syntax error",
                        replayable=accept is not None) as response:
            yield response

    @contextmanager
    def _send(self, url: str, body: bytes, headers: dict[str, str], syntax_message: str, *,
              replayable: bool) -> Iterator[Any]:
        """POST on a kept-alive connection (kgsched.graph.keep_alive), or through urllib where the pool
        cannot go: HTTP digest credentials (a challenge per connection) or a configured proxy."""
        try:
            if self._pool is not None and not self._through_proxy(url):
                with self._pool.post(url, body, headers, self.timeout, replayable=replayable) as response:
                    yield response
                return
            request = urllib.request.Request(url, data=body, method="POST", headers=headers)
            with self._opener.open(request, timeout=self.timeout) as response:
                yield response
        except (urllib.error.HTTPError, HTTPStatusError) as exc:
            status = exc.code if isinstance(exc, urllib.error.HTTPError) else exc.status
            if isinstance(exc, urllib.error.HTTPError):
                with exc:
                    answer = exc.read()[:2000].decode("utf-8", "replace")
            else:
                answer = exc.body
            if status == 400:
                raise SyntaxProblem(f"{syntax_message}: {answer}") from None
            raise StoreError(f"remote store answered {status}: {answer}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            raise StoreError(f"remote store failed: {exc}") from None

    def _through_proxy(self, url: str) -> bool:
        """Whether urllib would send a request to ``url`` through a configured proxy (the pool would
        not); asked once per URL (reading the proxy settings scans the environment)."""
        if url not in self._proxy_for:
            self._proxy_for[url] = _proxied(url)
        return self._proxy_for[url]

    def close(self) -> None:
        """Close the kept-alive connections (they are also closed when the store is collected)."""
        if self._pool is not None:
            self._pool.close()

    def _results(self, query: str) -> dict[str, Any]:
        with self._post(self.query_endpoint, [("query", query)], "application/sparql-results+json") as response:
            body = response.read()
        try:
            return json.loads(body)
        except ValueError as exc:
            raise StoreError(f"remote store sent no SPARQL JSON results: {body[:200]!r}") from exc

    # -- reading -----------------------------------------------------------------------------------
    def select(self, query: str, values: Rows | None = None) -> list[Solution]:
        result = self._results(bind(query, values))
        if "results" not in result:
            raise SyntaxProblem("expected a SELECT query")
        return [{k: _json_term(v) for k, v in b.items()} for b in result["results"]["bindings"]]

    def ask(self, query: str, values: Rows | None = None) -> bool:
        result = self._results(bind(query, values))
        if "boolean" not in result:
            raise SyntaxProblem("expected an ASK query")
        return bool(result["boolean"])

    def construct(self, query: str, values: Rows | None = None) -> Graph:
        with self._post(self.query_endpoint, [("query", bind(query, values))], _CONSTRUCT_ACCEPT) as response:
            media_type = response.headers.get_content_type()
            body = response.read()
        if media_type.startswith("application/sparql-results"):
            raise SyntaxProblem("expected a CONSTRUCT or DESCRIBE query")
        graph = Graph()
        graph.parse(data=body, format=_RDF_PARSERS.get(media_type, "turtle"))
        return graph

    def quad_count(self) -> int:
        rows = self.select("SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } }")
        return int(rows[0]["n"])

    def query_serialized(self, query: str, media_type: str, default_graphs: Sequence[str] | None = None,
                         named_graphs: Sequence[str] | None = None, output: BinaryIO | None = None,
                         base_iri: str | None = None) -> tuple[bytes, str]:
        """Pass the query and the Accept header through to the server (SPARQL 1.1 Protocol, form POST)."""
        if base_iri:
            query = f"BASE <{check_iri(base_iri)}>\n{query}"  # a BASE in the query itself still wins
        fields: list[tuple[str, str]] = [("query", query)]
        fields += [("default-graph-uri", str(check_iri(g))) for g in default_graphs or ()]
        fields += [("named-graph-uri", str(check_iri(g))) for g in named_graphs or ()]
        if named_graphs and not default_graphs:
            # an empty default graph, as the protocol says; Oxigraph would otherwise use its union
            fields.append(("default-graph-uri", "urn:kgsched:empty-default-graph"))
        if media_type == "text/tab-separated-values":
            # Virtuoso writes TSV with quoted headers and IRIs as strings: ask for JSON, write TSV here
            with self._post(self.query_endpoint, fields, "application/sparql-results+json") as response:
                results = ox.parse_query_results(response.read(), format=ox.QueryResultsFormat.JSON)
            data = results.serialize(output, format=ox.QueryResultsFormat.TSV)
            return (data or b""), media_type
        with self._post(self.query_endpoint, fields, media_type) as response:
            served = response.headers.get_content_type() or media_type
            if output is None:
                return response.read(), served
            while chunk := response.read(65536):
                output.write(chunk)
            return b"", served

    # -- writing -----------------------------------------------------------------------------------
    def update(self, update: str) -> None:
        with self._post(self.update_endpoint, [("update", update)], None) as response:
            response.read()

    def bulk_load(self, data: bytes | str, graph_iri: URIRef, fmt: str = "text/turtle") -> None:
        check_iri(graph_iri)
        payload = data.encode() if isinstance(data, str) else data
        url = f"{self.store_endpoint}?{urllib.parse.urlencode({'graph': str(graph_iri)})}"
        with self._send(url, payload, {"Content-Type": fmt}, "remote load failed", replayable=False) as response:
            response.read()


def _opener(urls: Sequence[str], user: str | None, password: str | None, auth: str) -> urllib.request.OpenerDirector:
    """An opener that sends the configured credentials to these URLs only (basic up front, digest on
    challenge), and follows no credentials anywhere else."""
    if not user:
        return urllib.request.build_opener()
    if auth == "digest":
        manager = urllib.request.HTTPPasswordMgrWithDefaultRealm()
        manager.add_password(None, list(urls), user, password or "")
        return urllib.request.build_opener(urllib.request.HTTPDigestAuthHandler(manager))
    prior = urllib.request.HTTPPasswordMgrWithPriorAuth()
    prior.add_password(None, list(urls), user, password or "", is_authenticated=True)
    return urllib.request.build_opener(urllib.request.HTTPBasicAuthHandler(prior))


def _basic_authorization(user: str | None, password: str | None) -> dict[str, str]:
    """The ``Authorization`` header for HTTP basic credentials (sent up front, as urllib's prior-auth
    handler does), or none."""
    if not user:
        return {}
    pair = f"{user}:{password or ''}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}


def _proxied(url: str) -> bool:
    """Whether urllib would send a request to ``url`` through a configured proxy (the pool would not)."""
    parts = urllib.parse.urlsplit(url)
    proxies = urllib.request.getproxies()
    return parts.scheme in proxies and not urllib.request.proxy_bypass(parts.hostname or "")


def _json_term(binding: dict[str, str]) -> Node:
    kind = binding["type"]
    if kind == "uri":
        return URIRef(binding["value"])
    if kind == "bnode":
        return BNode(binding["value"])
    if "xml:lang" in binding:
        return Literal(binding["value"], lang=binding["xml:lang"])
    datatype = binding.get("datatype")
    return Literal(binding["value"], datatype=URIRef(datatype) if datatype and datatype != XSD_STRING else None)


def remote_settings(config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The remote store's URLs and credentials: the configuration's keys, else the environment's."""
    config = config or {}
    return {key: config.get(key) or os.environ.get(env) for key, env in REMOTE_SETTINGS.items()}


def open_store(
    store_dir: str | None = None, endpoint: str | None = None, *, read_only: bool = False,
    settings: Mapping[str, Any] | None = None,
) -> Store:
    """The store the user asked for: --endpoint / KGSCHED_ENDPOINT (or a QUERY_ENDPOINT) wins, else
    --store / KGSCHED_STORE. ``settings`` holds the REMOTE_SETTINGS keys (else the environment's)."""
    endpoint = endpoint or os.environ.get("KGSCHED_ENDPOINT")
    remote = remote_settings(settings)
    if endpoint or remote["QUERY_ENDPOINT"]:
        return RemoteStore.from_settings(endpoint, remote)
    return EmbeddedStore(store_dir or os.environ.get("KGSCHED_STORE") or DEFAULT_STORE_DIR, read_only=read_only)
