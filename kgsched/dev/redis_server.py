"""Start and stop a real Redis server (Debian's ``redis-server``) on 127.0.0.1, for the tests and the
claim benchmark of coordinated replicas (kgsched.jobs.coordination). No persistence: the coordination
keys are short-lived locks, and the graph keeps every fact."""

from __future__ import annotations

import shutil
import socket
import subprocess

from kgsched.dev.oxigraph_server import free_port
from kgsched.dev.processes import stderr_head, stop_process, wait_until_ready
from kgsched.errors import StoreError


def redis_binary() -> str | None:
    return shutil.which("redis-server")


class RedisServer:
    """``with RedisServer() as redis: KGSCHED_COORDINATION_URL=redis.url``."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = redis_binary()
        if binary is None:
            raise StoreError("redis-server is not installed (Debian: apt-get install redis-server; `make test` does)")
        self.process = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--protected-mode", "yes", "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_until_ready(self.process, self._pong, what="redis-server", timeout=20,
                         output=lambda: stderr_head(self.process), stop=self.stop)
        return self

    def _pong(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        stop_process(self.process, timeout=10)
        if self.process is not None and self.process.stderr:
            self.process.stderr.close()
        self.process = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
