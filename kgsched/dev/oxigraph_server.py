"""Start and stop a real Oxigraph SPARQL server (the ``oxigraph`` PyPI package) on 127.0.0.1.

Used by the tests and benchmarks that need a remote store, and by anyone trying the remote set-up
locally. The server is started with ``--union-default-graph`` because kgsched's queries read the
union of its named graphs.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from kgsched.dev.processes import answers, stderr_head, stop_process, wait_until_ready
from kgsched.errors import StoreError


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def oxigraph_binary() -> str:
    beside_python = Path(sys.executable).parent / "oxigraph"
    found = str(beside_python) if beside_python.exists() else shutil.which("oxigraph")
    if not found:
        raise StoreError("the 'oxigraph' server is not installed (pip install oxigraph)")
    return found


class OxigraphServer:
    """``with OxigraphServer() as server: RemoteStore.from_url(server.url)``."""

    def __init__(self, location: str | Path | None = None, port: int | None = None, timeout_s: int = 60) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if location is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="kgsched-oxigraph-")
            location = self._tmp.name
        self.location = Path(location)
        self.port = port or free_port()
        self.timeout_s = timeout_s
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> OxigraphServer:
        self.process = subprocess.Popen(
            [oxigraph_binary(), "serve", "--location", str(self.location), "--bind", f"127.0.0.1:{self.port}",
             "--union-default-graph", "--timeout-s", str(self.timeout_s)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        wait_until_ready(self.process, lambda: answers(f"{self.url}/query?query=ASK%7B%7D"), what="oxigraph server",
                         timeout=20, output=lambda: stderr_head(self.process), stop=self.stop)
        return self

    def stop(self) -> None:
        stop_process(self.process, timeout=10)
        if self.process is not None and self.process.stderr:
            self.process.stderr.close()
        self.process = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> OxigraphServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

