"""Site storage as a runner sees it: write each product to its storages, read input replicas from them.

A claim tells the runner how its own storages are declared (``storages``: a shared ``directory``, or an
S3 ``endpoint``/``bucket``/``prefix``; kgsched.provenance.replicas.StorageInfo) and, for each input
product, the replicas it may read (``replicas``, its own storages first). What the graph never holds
is this machine's side: the credentials of an object store and where a shared directory is mounted
here. Those come from the runner's local configuration, ``--storage-credentials FILE`` (TOML)::

    [storage."https://example.org/fed/storage/geneva-s3"]
    access_key_id = "…"
    secret_access_key = "…"
    region = "us-east-1"            # optional

    [storage."https://example.org/fed/storage/geneva-shared"]
    path = "/mnt/geneva/kgsched"    # where this machine mounts the storage's ks:directory

An S3 storage without an entry uses boto3's own chain (``AWS_ACCESS_KEY_ID`` …, ``~/.aws``).

Every product is written under its content address (kgsched.product_urls.storage_key): the same
bytes are stored once, however often they are made. A replica that cannot be read is classified —
``missing`` (the storage says it is not there), ``unreachable`` (no answer), ``corrupt`` (wrong
checksum) — and reported by the agent so the service marks it; a replica this runner merely cannot
use (a directory not mounted here, an object store that refuses its credentials) is skipped, never
reported: the replica may be fine for others.
"""

from __future__ import annotations

import logging
import os
import tomllib
import urllib.error
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kgsched.product_urls import refusal, s3_location, storage_key
from kgsched.runner.storage import CorruptTransfer, ProductStore, sha256_file

log = logging.getLogger("kgsched.runner")
CREDENTIAL_KEYS = frozenset({"access_key_id", "secret_access_key", "session_token", "region", "path"})


class StorageConfigError(ValueError):
    """The local storage configuration file is unreadable or malformed."""


class ReplicaUnreadable(Exception):
    """The replica failed: ``status`` is missing, unreachable or corrupt (reported to the service)."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class NotFromHere(Exception):
    """This runner cannot try the replica (not mounted here, no credentials): not the replica's fault."""


@dataclass
class StorageAccess:
    """This machine's side of the site storages: credentials and mount points, per storage IRI."""

    local: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    _buckets: dict[tuple[str, str, str], Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_file(cls, path: Path | None) -> StorageAccess:
        if path is None:
            return cls()
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise StorageConfigError(f"{path}: {exc}") from None
        entries = data.get("storage", {})
        if not isinstance(entries, dict) or set(data) - {"storage"}:
            raise StorageConfigError(f"{path}: expected only [storage.\"IRI\"] tables")
        for iri, entry in entries.items():
            if not isinstance(entry, dict) or set(entry) - CREDENTIAL_KEYS or \
                    not all(isinstance(v, str) for v in entry.values()):
                raise StorageConfigError(f"{path}: [storage.\"{iri}\"] takes string values for "
                                         f"{', '.join(sorted(CREDENTIAL_KEYS))}")
        return cls(entries)

    # -- the kinds ---------------------------------------------------------------------------------
    def directory(self, info: Mapping[str, Any]) -> Path | None:
        """Where this machine sees a directory storage (its local mapping, else the declared path);
        None when it is not there (not mounted here)."""
        mapped = self.local.get(str(info.get("storage")), {}).get("path") or info.get("directory")
        if not mapped:
            return None
        path = Path(mapped)
        return path if path.is_dir() else None

    def bucket(self, info: Mapping[str, Any]):  # noqa: ANN201 - kgsched.runner.s3.S3Bucket (imported lazily)
        from kgsched.runner.s3 import S3Bucket

        key = (str(info["storage"]), str(info["endpoint"]), str(info["bucket"]))
        if key not in self._buckets:
            self._buckets[key] = S3Bucket(key[1], key[2], dict(self.local.get(key[0], {})))
        return self._buckets[key]

    # -- writing -----------------------------------------------------------------------------------
    def write(self, source: Path, checksum: str, storages: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
        """Store the product in each of the runner's storages of a declared kind; the replicas written
        (``{"storage", "location"}``) for the result report. A storage that fails is logged and left out."""
        written: list[dict[str, str]] = []
        for info in storages:
            try:
                location = self._write_one(source, checksum, info)
            except Exception as exc:  # noqa: BLE001 - any failure: that storage simply holds no replica
                log.warning("product %s not stored in %s: %s", checksum[:19], info.get("storage"), exc)
                continue
            if location is not None:
                written.append({"storage": str(info["storage"]), "location": location})
        return written

    def _write_one(self, source: Path, checksum: str, info: Mapping[str, Any]) -> str | None:
        kind = info.get("kind")
        if kind == "directory":
            root = self.directory(info)
            if root is None:
                raise NotFromHere(f"directory {info.get('directory')} is not mounted here")
            ProductStore(root).copy_in(source, checksum)
            return storage_key(checksum)
        if kind == "s3":
            key = storage_key(checksum, str(info.get("prefix") or ""))
            from kgsched.runner.s3 import S3Refused, S3Unreachable

            try:
                self.bucket(info).put(source, key)
            except (S3Refused, S3Unreachable) as exc:
                raise NotFromHere(str(exc)) from None
            return s3_location(str(info["bucket"]), key)
        return None  # a storage of no declared kind: the product server is the replica

    # -- reading -----------------------------------------------------------------------------------
    def read(self, replica: Mapping[str, Any], checksum: str, store: ProductStore,
             product_sources: Sequence[str]) -> Path:
        """The local copy of the product from this replica, checksum-verified; ReplicaUnreadable or
        NotFromHere otherwise."""
        kind = replica.get("kind")
        if kind == "s3":
            return self._read_s3(replica, checksum, store)
        if kind == "directory":
            root = self.directory(replica)
            if root is not None:
                return self._read_directory(root, replica, checksum, store)
            if not replica.get("base_url"):
                raise NotFromHere(f"directory {replica.get('directory')} is not mounted here")
        return self._read_http(replica, checksum, store, product_sources)

    def _read_directory(self, root: Path, replica: Mapping[str, Any], checksum: str, store: ProductStore) -> Path:
        path = root / storage_key(checksum)
        if not path.is_file():
            raise ReplicaUnreadable("missing", f"{path} does not exist")
        try:
            return store.copy_in(path, checksum)
        except CorruptTransfer as exc:
            raise ReplicaUnreadable("corrupt", str(exc)) from None

    def _read_s3(self, replica: Mapping[str, Any], checksum: str, store: ProductStore) -> Path:
        from kgsched.runner.s3 import S3Missing, S3Refused, S3Unreachable

        key = storage_key(checksum, str(replica.get("prefix") or ""))
        target = store.path_for(checksum)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            partial, digest = self.bucket(replica).get(key, target.parent)
        except S3Missing as exc:
            raise ReplicaUnreadable("missing", f"s3://{replica.get('bucket')}/{key}: {exc}") from None
        except S3Unreachable as exc:
            raise ReplicaUnreadable("unreachable", str(exc)) from None
        except S3Refused as exc:
            raise NotFromHere(str(exc)) from None
        if digest != checksum:
            os.unlink(partial)
            raise ReplicaUnreadable("corrupt", f"s3://{replica.get('bucket')}/{key} holds bytes with {digest}, "
                                               f"the graph says {checksum}")
        os.replace(partial, target)
        return target

    def _read_http(self, replica: Mapping[str, Any], checksum: str, store: ProductStore,
                   product_sources: Sequence[str]) -> Path:
        location = str(replica.get("location") or "")
        if not location.startswith(("http://", "https://")):
            base = str(replica.get("base_url") or "")
            if not base:
                raise NotFromHere(f"replica {location!r} has no URL this runner can fetch")
            location = (base if base.endswith("/") else base + "/") + location
        why = refusal(location, product_sources)
        if why is not None:
            raise NotFromHere(why)
        try:
            return store.fetch(location, checksum)
        except CorruptTransfer as exc:
            raise ReplicaUnreadable("corrupt", str(exc)) from None
        except urllib.error.HTTPError as exc:
            status = "missing" if exc.code in (404, 410) else "unreachable"
            raise ReplicaUnreadable(status, f"{location}: HTTP {exc.code}") from None
        except OSError as exc:  # refused, reset, timed out, unknown host
            raise ReplicaUnreadable("unreachable", f"{location}: {exc}") from None


def verify_local(store: ProductStore, checksum: str) -> Path | None:
    """The product already in this runner's own store, if its bytes still match."""
    path = store.path_for(checksum)
    if path.is_file() and sha256_file(path) == checksum:
        return path
    return None
