"""Content-addressed product storage: files named by the sha256 of their bytes, checked on arrival.

A runner keeps its products in a storage directory (runners of one site may share it) and serves
them over HTTP (``ProductServer``) so runners elsewhere can fetch them; every fetch is verified
against the checksum the graph records, so a corrupted or tampered transfer is never used.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import threading
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_CHUNK = 1 << 20
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")


class CorruptTransfer(Exception):
    """The bytes that arrived do not have the checksum the graph records."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


@dataclass(frozen=True)
class StoredProduct:
    checksum: str  # "sha256:<hex>"
    size_bytes: int
    path: Path


class ProductStore:
    """A directory of files named by their sha256; writes are atomic (temporary file, then rename)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory).resolve()  # children run elsewhere: paths must be absolute
        self.directory.mkdir(parents=True, exist_ok=True)

    def path_for(self, checksum: str) -> Path:
        digest = checksum.removeprefix("sha256:")
        if not _SHA_RE.match(digest):
            raise ValueError(f"not a sha256 checksum: {checksum!r}")
        return self.directory / digest[:2] / digest

    def has(self, checksum: str) -> bool:
        return self.path_for(checksum).exists()

    def put(self, source: Path) -> StoredProduct:
        """Move a finished output file into the store under its checksum."""
        checksum = sha256_file(source)
        target = self.path_for(checksum)
        target.parent.mkdir(parents=True, exist_ok=True)
        size = source.stat().st_size
        if target.exists():
            source.unlink()
        else:
            os.replace(source, target)
        return StoredProduct(checksum, size, target)

    def fetch(self, url: str, checksum: str, timeout: float = 60.0) -> Path:
        """The local copy of a product, downloading it first if needed; the checksum is verified."""
        target = self.path_for(checksum)
        if target.exists():
            if sha256_file(target) == checksum:
                return target
            os.unlink(target)  # damaged on disk: fetch it again rather than use it
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as partial:
            digest = hashlib.sha256()
            with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - http(s) checked by caller
                while chunk := response.read(_CHUNK):
                    digest.update(chunk)
                    partial.write(chunk)
        if "sha256:" + digest.hexdigest() != checksum:
            os.unlink(partial.name)
            raise CorruptTransfer(f"{url} sent bytes with sha256:{digest.hexdigest()}, the graph says {checksum}")
        os.replace(partial.name, target)
        return target

    def copy_in(self, source: Path, checksum: str) -> Path:
        """Take a local file (e.g. from a shared site directory), verifying it like a download."""
        if sha256_file(source) != checksum:
            raise CorruptTransfer(f"{source} does not have checksum {checksum}")
        target = self.path_for(checksum)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():  # atomically: a runner reading a shared directory never sees half a file
            with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as partial, \
                    open(source, "rb") as handle:
                shutil.copyfileobj(handle, partial, _CHUNK)
            os.replace(partial.name, target)
        return target


class ProductServer:
    """Serves ``GET /products/<sha256>`` from a ProductStore, in a background thread."""

    def __init__(self, store: ProductStore, host: str = "127.0.0.1", port: int = 0,
                 public_url: str | None = None) -> None:
        handler = _handler_for(store)
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="product-server", daemon=True)
        #: Where others reach it (behind a proxy, or listening on 0.0.0.0); the listening address otherwise.
        self.public_url = None if public_url is None else public_url.rstrip("/") + "/products/"

    @property
    def base_url(self) -> str:
        if self.public_url is not None:
            return self.public_url
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/products/"

    def url_for(self, checksum: str) -> str:
        return self.base_url + checksum.removeprefix("sha256:")

    def start(self) -> ProductServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _handler_for(store: ProductStore) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            digest = self.path.removeprefix("/products/")
            try:
                path = store.path_for(digest)
            except ValueError:
                self.send_error(404, "not a product address")
                return
            if not path.is_file():
                self.send_error(404, "no such product here")
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(path.stat().st_size))
            self.end_headers()
            with open(path, "rb") as handle:
                shutil.copyfileobj(handle, self.wfile, _CHUNK)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
            return

    return Handler
