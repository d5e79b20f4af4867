"""A runner's S3-compatible object storage: put and get a product's bytes under its content address.

The client is **boto3**: the reference client of the S3 API (Amazon's own SDK, maintained with the
API), mature, and it speaks to any S3-compatible store — Ceph RGW, MinIO, SeaweedFS, EOS, a cloud —
given its ``endpoint_url``; it streams large objects (managed multipart uploads and ranged reads) and
signs requests (SigV4) for us. fsspec + s3fs would add an abstraction (and aiobotocore) on top of the
same botocore for nothing we need: a runner only puts and gets whole objects by key.

boto3 is imported here, inside the functions that need it, so a runner that declares no S3 storage
never imports it (tests/test_startup.py checks a runner's start-up modules). Credentials never come
from the graph: they come from the runner's own configuration (``--storage-credentials``), else from
boto3's usual chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``~/.aws/credentials``, an
instance role).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20

#: S3 error codes that say the object is not there (the replica is missing) …
MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound", "NoSuchBucket"})
#: … and those that say *we* may not read it (our credentials): not the replica's fault.
REFUSED_CODES = frozenset({"AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden",
                           "ExpiredToken", "InvalidToken"})


class S3Missing(Exception):
    """The store answered that it does not hold the object."""


class S3Unreachable(Exception):
    """The store did not answer (connection refused, timeout, a server error)."""


class S3Refused(Exception):
    """The store refused *this runner* (no or wrong credentials): the replica may be fine."""


@dataclass
class S3Bucket:
    """One bucket of one endpoint, with this runner's credentials for it (None: boto3's own chain)."""

    endpoint: str
    bucket: str
    credentials: dict[str, str] = field(default_factory=dict)
    _client: Any = field(default=None, repr=False)

    def client(self) -> Any:
        if self._client is None:
            import boto3  # lazily: only a runner that uses an S3 storage imports it
            from botocore.config import Config

            options = {"aws_access_key_id": self.credentials.get("access_key_id"),
                       "aws_secret_access_key": self.credentials.get("secret_access_key"),
                       "aws_session_token": self.credentials.get("session_token")}
            self._client = boto3.client(
                "s3", endpoint_url=self.endpoint, region_name=self.credentials.get("region", "us-east-1"),
                config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2},
                              connect_timeout=10, read_timeout=60),
                **{k: v for k, v in options.items() if v})
        return self._client

    def _call(self, action: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        try:
            return getattr(self.client(), action)(Bucket=self.bucket, **kwargs)
        except NoCredentialsError as exc:
            raise S3Refused(f"no credentials for {self.endpoint}: {exc}") from None
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in MISSING_CODES:
                raise S3Missing(f"{self.endpoint} bucket {self.bucket}: {code}") from None
            if code in REFUSED_CODES:
                raise S3Refused(f"{self.endpoint} refused this runner: {code}") from None
            raise S3Unreachable(f"{self.endpoint}: {code or exc}") from None
        except BotoCoreError as exc:  # connection refused, timeouts, bad endpoint
            raise S3Unreachable(f"{self.endpoint}: {exc}") from None

    def has(self, key: str) -> bool:
        try:
            self._call("head_object", Key=key)
            return True
        except S3Missing:
            return False

    def put(self, source: Path, key: str) -> bool:
        """Store the file under ``key`` unless the object is already there; True if it was uploaded."""
        if self.has(key):
            return False  # content-addressed: the same bytes are stored once
        with open(source, "rb") as handle:
            self._call("put_object", Key=key, Body=handle)
        return True

    def get(self, key: str, directory: Path) -> tuple[Path, str]:
        """Download the object into a temporary file in ``directory``; the file and its sha256."""
        answer = self._call("get_object", Key=key)
        digest = hashlib.sha256()
        body = answer["Body"]
        handle = tempfile.NamedTemporaryFile(dir=directory, delete=False)  # noqa: SIM115 - renamed or removed
        try:
            with handle:
                while chunk := body.read(_CHUNK):
                    digest.update(chunk)
                    handle.write(chunk)
        except Exception as exc:
            os.unlink(handle.name)
            raise S3Unreachable(f"{self.endpoint}: the transfer broke off: {exc}") from None
        return Path(handle.name), "sha256:" + digest.hexdigest()
