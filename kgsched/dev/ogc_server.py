"""Start and stop a real OGC API – Processes server (pygeoapi) on 127.0.0.1, for the tests and the demo.

pygeoapi is a Flask application configured by a YAML file and an OpenAPI document it generates from
it; asynchronous jobs are kept by its TinyDB process manager and run in threads of the server. We
write both files into a directory, then run ``python -m kgsched.dev.ogc_server CONFIG OPENAPI PORT``
(which serves the app with waitress) as a child process, so the server is as separate from kgsched
as a contributor's real service would be. ``processes`` maps each process id to the dotted path of
its pygeoapi ``BaseProcessor`` class; ``python_path`` makes the module importable by the server.

pygeoapi is a development dependency (``pip install -e '.[dev]'``); nothing in kgsched proper
imports it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from kgsched.dev.oxigraph_server import free_port
from kgsched.dev.processes import answers, stop_process, wait_until_ready


def config_text(directory: Path, port: int, processes: dict[str, str]) -> str:
    """The pygeoapi configuration (JSON is YAML): metadata it requires, a TinyDB job manager, the processes."""
    config = {
        "server": {
            "bind": {"host": "127.0.0.1", "port": port}, "url": f"http://127.0.0.1:{port}",
            "mimetype": "application/json; charset=UTF-8", "encoding": "utf-8", "language": "en-US",
            "pretty_print": False, "limits": {"default_items": 10, "max_items": 50},
            "map": {"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png", "attribution": "none"},
            "manager": {"name": "TinyDB", "connection": str(directory / "jobs.db"),
                        "output_dir": str(directory / "outputs")},
        },
        "logging": {"level": "ERROR"},
        "metadata": {
            "identification": {"title": "kgsched example processes", "description": "OGC API - Processes for kgsched",
                               "keywords": ["kgsched"], "keywords_type": "theme", "url": "https://example.org",
                               "terms_of_service": "https://example.org/terms"},
            "license": {"name": "MIT", "url": "https://opensource.org/licenses/MIT"},
            "provider": {"name": "kgsched", "url": "https://example.org"},
            "contact": {key: "-" for key in ("name", "position", "address", "city", "stateorprovince", "postalcode",
                                              "country", "phone", "fax", "email", "url", "hours", "instructions",
                                              "role")} | {"email": "nobody@example.org", "url": "https://example.org",
                                                          "postalCode": "-"},
        },
        "resources": {pid: {"type": "process", "processor": {"name": path}} for pid, path in processes.items()},
    }
    return json.dumps(config, indent=2)


class OgcProcessesServer:
    """``with OgcProcessesServer({"double": "my_module.DoubleProcessor"}, [dir]) as server: server.url``."""

    def __init__(self, processes: dict[str, str], python_path: list[str] | None = None,
                 directory: str | Path | None = None, port: int | None = None) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if directory is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="kgsched-ogc-")
            directory = self._tmp.name
        self.directory = Path(directory)
        self.processes = processes
        self.python_path = python_path or []
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> OgcProcessesServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "outputs").mkdir(exist_ok=True)
        config = self.directory / "pygeoapi-config.yml"
        config.write_text(config_text(self.directory, self.port, self.processes))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([*self.python_path, env.get("PYTHONPATH", "")]).strip(os.pathsep)
        log = open(self.directory / "server.log", "wb")  # noqa: SIM115 - closed in stop()
        self._log = log
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kgsched.dev.ogc_server", str(config), str(self.directory / "openapi.yml"),
             str(self.port)], stdout=log, stderr=subprocess.STDOUT, env=env)
        wait_until_ready(self.process, lambda: answers(f"{self.url}/processes?f=json", timeout=2), what="pygeoapi",
                         timeout=timeout, output=self._log_tail, stop=self.stop, pause=0.1, error=RuntimeError)
        return self

    def _log_tail(self) -> str:
        return (self.directory / "server.log").read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        stop_process(self.process, timeout=10)
        self.process = None
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> OgcProcessesServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str]) -> int:
    """Child process: generate the OpenAPI document, then serve pygeoapi's Flask app with waitress."""
    config, openapi, port = Path(argv[0]), Path(argv[1]), int(argv[2])
    from pygeoapi.openapi import generate_openapi_document

    openapi.write_text(generate_openapi_document(config, "yaml"))
    os.environ["PYGEOAPI_CONFIG"], os.environ["PYGEOAPI_OPENAPI"] = str(config), str(openapi)
    from pygeoapi.flask_app import APP
    from waitress import serve

    serve(APP, host="127.0.0.1", port=port, threads=8, _quiet=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
