"""The runner's site storages, for real: a shared directory, and an S3-compatible object store (SeaweedFS,
started once per session on 127.0.0.1) through boto3. A product is stored once under its content
address; a replica is read back checksum-verified; a missing, corrupt or unreachable replica is
classified so the service can mark it, and one this runner merely cannot use is not blamed."""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

import pytest

from kgsched.dev.oxigraph_server import free_port
from kgsched.dev.s3_server import S3Server
from kgsched.product_urls import s3_location, storage_key
from kgsched.runner.executor import Executor, StagingError
from kgsched.runner.site_storage import NotFromHere, ReplicaUnreadable, StorageAccess, StorageConfigError
from kgsched.runner.storage import ProductStore

STORAGE = "https://example.org/fed/storage/geneva-object-store"


def product(tmp_path: Path, content: bytes = b"light curve bytes") -> tuple[Path, str]:
    path = tmp_path / f"out-{secrets.token_hex(4)}"
    path.write_bytes(content)
    return path, "sha256:" + hashlib.sha256(content).hexdigest()


def s3_config(s3: S3Server, bucket: str, tmp_path: Path, *, secret: str | None = None) -> tuple[StorageAccess, dict]:
    credentials = tmp_path / f"credentials-{secrets.token_hex(3)}.toml"
    credentials.write_text(f'[storage."{STORAGE}"]\naccess_key_id = "{s3.access_key}"\n'
                           f'secret_access_key = "{secret or s3.secret_key}"\n')
    info = {"storage": STORAGE, "kind": "s3", "endpoint": s3.endpoint, "bucket": bucket, "prefix": "kgsched/"}
    return StorageAccess.from_file(credentials), info


@pytest.fixture
def bucket(s3_server: S3Server) -> str:
    name = "kgsched-" + secrets.token_hex(4)
    s3_server.create_bucket(name)
    return name


def test_a_shared_directory_keeps_each_product_once_and_serves_it_verified(tmp_path: Path) -> None:
    shared = tmp_path / "site"
    shared.mkdir()
    info = {"storage": STORAGE, "kind": "directory", "directory": str(shared)}
    access = StorageAccess()
    source, checksum = product(tmp_path)
    assert access.write(source, checksum, [info]) == [{"storage": STORAGE, "location": storage_key(checksum)}]
    again, _ = product(tmp_path)
    assert access.write(again, checksum, [info]) == [{"storage": STORAGE, "location": storage_key(checksum)}]
    assert [p.name for p in shared.rglob("*") if p.is_file()] == [checksum.removeprefix("sha256:")]  # once

    elsewhere = ProductStore(tmp_path / "other-runner")
    replica = {**info, "replica": "r", "location": storage_key(checksum)}
    assert access.read(replica, checksum, elsewhere, ()).read_bytes() == b"light curve bytes"

    # mounted elsewhere on this machine: the runner's local configuration says where
    config = tmp_path / "storage.toml"
    config.write_text(f'[storage."{STORAGE}"]\npath = "{shared}"\n')
    mapped = StorageAccess.from_file(config)
    moved = {**replica, "directory": "/nowhere/declared"}
    assert mapped.read(moved, checksum, ProductStore(tmp_path / "third"), ()).is_file()
    with pytest.raises(NotFromHere):  # not mounted here, no web address: not the replica's fault
        access.read(moved, checksum, ProductStore(tmp_path / "fourth"), ())

    (shared / storage_key(checksum)).write_bytes(b"rotten")
    with pytest.raises(ReplicaUnreadable) as corrupt:
        access.read(replica, checksum, ProductStore(tmp_path / "fifth"), ())
    assert corrupt.value.status == "corrupt"
    (shared / storage_key(checksum)).unlink()
    with pytest.raises(ReplicaUnreadable) as missing:
        access.read(replica, checksum, ProductStore(tmp_path / "sixth"), ())
    assert missing.value.status == "missing"


def test_an_s3_store_keeps_each_product_once_and_serves_it_verified(s3_server: S3Server, bucket: str,
                                                                       tmp_path: Path) -> None:
    access, info = s3_config(s3_server, bucket, tmp_path)
    source, checksum = product(tmp_path, b"x" * 3_000_000)
    key = storage_key(checksum, "kgsched/")
    assert access.write(source, checksum, [info]) == [{"storage": STORAGE, "location": s3_location(bucket, key)}]
    client = s3_server.client()
    first = client.head_object(Bucket=bucket, Key=key)
    assert first["ContentLength"] == 3_000_000
    assert access.bucket(info).put(source, key) is False  # already there: not uploaded again
    assert [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]] == [key]

    replica = {**info, "replica": "r", "location": s3_location(bucket, key)}
    copy = access.read(replica, checksum, ProductStore(tmp_path / "elsewhere"), ())
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == checksum.removeprefix("sha256:")

    client.put_object(Bucket=bucket, Key=key, Body=b"tampered")
    with pytest.raises(ReplicaUnreadable) as corrupt:
        access.read(replica, checksum, ProductStore(tmp_path / "b"), ())
    assert corrupt.value.status == "corrupt"
    assert not list((tmp_path / "b").rglob(checksum.removeprefix("sha256:")))  # bad bytes are never kept
    client.delete_object(Bucket=bucket, Key=key)
    with pytest.raises(ReplicaUnreadable) as missing:
        access.read(replica, checksum, ProductStore(tmp_path / "c"), ())
    assert missing.value.status == "missing"

    wrong, _ = s3_config(s3_server, bucket, tmp_path, secret="not-the-secret")
    with pytest.raises(NotFromHere):  # refused *this* runner: the replica is not to blame
        wrong.read(replica, checksum, ProductStore(tmp_path / "d"), ())
    assert wrong.write(source, checksum, [info]) == []  # and it stores nothing there
    down = {**replica, "endpoint": f"http://127.0.0.1:{free_port()}"}
    with pytest.raises(ReplicaUnreadable) as unreachable:
        access.read(down, checksum, ProductStore(tmp_path / "e"), ())
    assert unreachable.value.status == "unreachable"


def test_staging_tries_every_replica_in_order_and_notes_the_failed_ones(s3_server: S3Server, bucket: str,
                                                                        tmp_path: Path) -> None:
    access, info = s3_config(s3_server, bucket, tmp_path)
    source, checksum = product(tmp_path, b"the soft band")
    [written] = access.write(source, checksum, [info])
    shared = tmp_path / "empty-site"
    shared.mkdir()
    replicas = [
        {"replica": "urn:r:dir", "kind": "directory", "storage": "urn:s:dir", "directory": str(shared),
         "location": storage_key(checksum)},
        {"replica": "urn:r:http", "kind": "http", "storage": "urn:s:http",
         "location": f"http://127.0.0.1:{free_port()}/products/{checksum[7:]}"},
        {"replica": "urn:r:s3", **info, "location": written["location"]},
    ]
    executor = Executor(ProductStore(tmp_path / "runner"), tmp_path, storage_access=access)
    argument = {"kind": "product", "product": "urn:p", "location": "gone", "checksum": checksum, "replicas": replicas}
    executor._failures = []
    path = executor._stage_data("soft", argument, [replicas[1]["location"].rsplit("/", 1)[0] + "/"])
    assert path.read_bytes() == b"the soft band"
    assert [(f["replica"], f["status"]) for f in executor._failures] == [("urn:r:dir", "missing"),
                                                                         ("urn:r:http", "unreachable")]
    executor._failures = []
    with pytest.raises(StagingError, match="no replica of 'soft' could be read"):
        Executor(ProductStore(tmp_path / "r2"), tmp_path, storage_access=access)._stage_data(
            "soft", {**argument, "replicas": replicas[:2]}, [])


def test_a_malformed_storage_configuration_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[storage."x"]\npassword = "hunter2"\n')
    with pytest.raises(StorageConfigError, match="takes string values"):
        StorageAccess.from_file(bad)
    bad.write_text("not toml [")
    with pytest.raises(StorageConfigError):
        StorageAccess.from_file(bad)
