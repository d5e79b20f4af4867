"""Start and stop a real OpenLink Virtuoso 7.2 server (Debian ``virtuoso-opensource``) on 127.0.0.1.

Used by the tests' store matrix: kgsched must work on a SPARQL server that is not Oxigraph, and
Virtuoso (the store behind DBpedia) is the strictest widely deployed one. The server gets a scratch
database directory and a generated ``virtuoso.ini`` (free ports, no checkpoints, a result limit far
above the planner's 10,000-IRI batches instead of Debian's 10,000 rows, and one thread per query). On
a busy machine this Virtuoso was seen to stop answering, idle, on an EXISTS over a UNION with a
GRAPH ?g (queries/runner-eligibility.rq now avoids it; one thread per query alone did not help):
``responsive`` and ``restart`` let the tests go on after such a hang. Layout:

* queries: ``/sparql`` (anonymous, read-only);
* updates: ``/sparql-auth`` with HTTP digest credentials (the ``dba`` account of the scratch database);
* Graph Store Protocol: ``/sparql-graph-crud-auth``, same credentials.

Virtuoso's default graph is already the union of all graphs, but it also holds its own system graphs
(``virtrdf#``, ``ldp#``, …): ``clear()`` drops every graph except those present at start.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from kgsched.dev.oxigraph_server import free_port
from kgsched.dev.processes import answers, stop_process, wait_until_ready
from kgsched.errors import StoreError
from kgsched.graph.store import RemoteStore

USER = "dba"
PASSWORD = "dba"  # the scratch database's initial password; the server listens on 127.0.0.1 only

_INI = """\
[Database]
DatabaseFile = {dir}/virtuoso.db
ErrorLogFile = {dir}/virtuoso.log
LockFile = {dir}/virtuoso.lck
TransactionFile = {dir}/virtuoso.trx
xa_persistent_file = {dir}/virtuoso.pxa
MaxCheckpointRemap = 2000
Striping = 0
TempStorage = TempDatabase

[TempDatabase]
DatabaseFile = {dir}/virtuoso-temp.db
TransactionFile = {dir}/virtuoso-temp.trx
MaxCheckpointRemap = 2000
Striping = 0

[Parameters]
ServerPort = 127.0.0.1:{sql_port}
DisableUnixSocket = 1
CheckpointInterval = 0
CaseMode = 2
DirsAllowed = .
NumberOfBuffers = 10000
MaxDirtyBuffers = 6000
ThreadsPerQuery = 1
AllowOSCalls = 0

[HTTPServer]
ServerPort = 127.0.0.1:{http_port}
ServerRoot = {dir}
ServerThreads = 10
MaxClientConnections = 10
EnabledGzipContent = 0
Charset = UTF-8

[SPARQL]
ResultSetMaxRows = 10000000
MaxQueryExecutionTime = 120
MaxQueryCostEstimationTime = 0
"""


def virtuoso_binary() -> str | None:
    return shutil.which("virtuoso-t")


class VirtuosoServer:
    """``with VirtuosoServer() as server: server.store()``."""

    def __init__(self) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.directory: Path | None = None
        self.http_port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.system_graphs: set[str] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def settings(self) -> dict[str, str]:
        """The configuration keys (kgsched.graph.store.REMOTE_SETTINGS) that point kgsched here."""
        return {"QUERY_ENDPOINT": f"{self.url}/sparql", "UPDATE_ENDPOINT": f"{self.url}/sparql-auth",
                "STORE_ENDPOINT": f"{self.url}/sparql-graph-crud-auth", "ENDPOINT_USER": USER,
                "ENDPOINT_PASSWORD": PASSWORD, "ENDPOINT_AUTH": "digest"}

    def store(self, timeout: float = 60.0) -> RemoteStore:
        return RemoteStore.from_settings(None, self.settings(), timeout=timeout)

    def start(self) -> VirtuosoServer:
        binary = virtuoso_binary()
        if binary is None:
            raise StoreError("Virtuoso is not installed (apt-get install virtuoso-opensource)")
        self._tmp = tempfile.TemporaryDirectory(prefix="kgsched-virtuoso-")
        self.directory = Path(self._tmp.name)
        self.http_port = free_port()
        ini = self.directory / "virtuoso.ini"
        ini.write_text(_INI.format(dir=self.directory, sql_port=free_port(), http_port=self.http_port))
        self.process = subprocess.Popen(
            [binary, "+foreground", "+configfile", str(ini)], cwd=self.directory,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until_ready(self.process, lambda: answers(f"{self.url}/sparql?query=ASK%7B%7D"), what="virtuoso",
                         timeout=60, output=self._log_tail, stop=self.stop, pause=0.1)
        self.system_graphs = set(self._graphs())
        return self

    def _log_tail(self) -> str:
        log = self.directory / "virtuoso.log"
        return log.read_text(errors="replace")[-800:] if log.exists() else ""

    def responsive(self, timeout: float = 10.0) -> bool:
        """Whether the server answers a trivial query in time. Under CPU load Virtuoso 7.2 was seen to
        stop answering anything (HTTP and SQL alike, the server idle) after a planner query."""
        try:
            self.store(timeout=timeout).ask("ASK {}")
        except StoreError:
            return False
        return True

    def restart(self) -> VirtuosoServer:
        self.stop()
        return self.start()

    def _graphs(self) -> list[str]:
        rows = self.store().select("SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }")
        return [str(row["g"]) for row in rows]

    def clear(self) -> None:
        """Drop every graph kgsched (or a test) made, keeping Virtuoso's own."""
        store = self.store()
        for graph in self._graphs():
            if graph not in self.system_graphs:
                store.update(f"DROP SILENT GRAPH <{graph}>")

    def stop(self) -> None:
        stop_process(self.process, timeout=20)
        self.process = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> VirtuosoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
