"""Products that outlive their runner, with real processes: the service, runner agents and a real
S3-compatible object store (SeaweedFS, one per session) on 127.0.0.1.

(c) A product made at Geneva is written to Geneva's S3 storage; Geneva is killed and deregistered, its
    runner-local copy is marked gone, and Paris reuses the product from the bucket, checksum-verified.
(d) A product whose every copy was deleted is not reused: the runner that needed it reports the copies
    missing, and the next plan recomputes it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import signal
from dataclasses import dataclass
from pathlib import Path

import pytest
from rdflib import URIRef
from test_end_to_end import decisions, executions_of, light_curve, start_with_faults

from kgsched.dev.federation import FED, Federation
from kgsched.dev.s3_server import S3Server
from kgsched.product_urls import storage_key
from kgsched.runner.storage import ProductStore

KS = "https://w3id.org/kgsched#"
UNIGE = FED + "org/unige"


@pytest.fixture
def federation(tmp_path: Path):
    with Federation(tmp_path) as running:
        yield running


def with_s3_storage(federation: Federation, s3: S3Server, tmp_path: Path) -> tuple[str, list[str]]:
    """Geneva's disk becomes a bucket of the object store; each runner owner's credentials stay on its machine."""
    bucket = "geneva-" + secrets.token_hex(4)
    s3.create_bucket(bucket)
    federation.declare_storage("geneva-disk", "geneva", endpoint=s3.endpoint, bucket=bucket, prefix="kgsched/")
    credentials = tmp_path / "storage-credentials.toml"
    credentials.write_text(f'[storage."{FED}storage/geneva-disk"]\n'
                           f'access_key_id = "{s3.access_key}"\nsecret_access_key = "{s3.secret_key}"\n')
    return bucket, ["--storage-credentials", str(credentials)]


@dataclass
class MadeAtGeneva:
    """The soft light curve, made by Geneva into its S3 storage (both tests start from it)."""

    alice: str
    bucket: str
    credentials: list[str]
    soft: dict
    product: dict
    key: str


def soft_light_curve_made_at_geneva(federation: Federation, s3: S3Server, tmp_path: Path) -> MadeAtGeneva:
    alice = start_with_faults(federation)
    bucket, credentials = with_s3_storage(federation, s3, tmp_path)
    federation.start_runner("geneva-batch", extra_args=credentials)
    soft = federation.submit(alice, light_curve(20, 40))
    [done] = federation.wait_for_jobs([j["job"] for j in soft["jobs"]])
    assert done["state"] == "done"
    product = federation.product_of(soft["plan"]["root"])
    return MadeAtGeneva(alice, bucket, credentials, soft, product, storage_key(product["checksum"], "kgsched/"))


def replicas(federation: Federation, product: str) -> dict[str, str]:
    rows = federation.named("product-replicas", {"product": [URIRef(product)]})
    return {row["location"]: row.get("status", "").rsplit("#", 1)[-1] for row in rows}


def test_a_product_outlives_its_runner_in_the_sites_object_store(federation: Federation, s3_server: S3Server,
                                                                  tmp_path: Path) -> None:
    made = soft_light_curve_made_at_geneva(federation, s3_server, tmp_path)
    alice, bucket, credentials, soft, product, key = (made.alice, made.bucket, made.credentials, made.soft,
                                                      made.product, made.key)
    stored = s3_server.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    assert "sha256:" + hashlib.sha256(stored).hexdigest() == product["checksum"]
    assert replicas(federation, product["product"]) == {product["location"]: "Available",
                                                        f"s3://{bucket}/{key}": "Available"}

    federation.stop_runner("geneva-batch", sig=signal.SIGKILL)  # gone without a word ...
    federation.deregister_runner_owner(UNIGE)  # ... and its owner withdraws it
    assert replicas(federation, product["product"]) == {product["location"]: "Gone",
                                                        f"s3://{bucket}/{key}": "Available"}
    assert federation.product_of(soft["plan"]["root"])["product"] == product["product"]  # still cache

    federation.start_runner("paris-cluster", extra_args=credentials)  # elsewhere, with read access to the bucket
    combined = federation.submit(alice, {"workflow": FED + "workflow/combine-light-curves",
                                         "args": {"soft": light_curve(20, 40), "hard": light_curve(20, 40)}})
    assert sorted(decisions(combined["plan"])) == [("combine-light-curves", "recompute"), ("light-curve", "reuse")]
    [state] = federation.wait_for_jobs([j["job"] for j in combined["jobs"]], timeout=90)
    assert state["state"] == "done", state
    [run] = executions_of(federation, combined["plan"]["root"])
    assert run["runner"] == FED + "runner/paris-cluster" and run["outcome"] == KS + "Success"
    fetched = ProductStore(federation.workdir / "products-paris-cluster").path_for(product["checksum"])
    assert "sha256:" + hashlib.sha256(fetched.read_bytes()).hexdigest() == product["checksum"]
    assert replicas(federation, product["product"])[f"s3://{bucket}/{key}"] == "Available"  # nothing blamed


def test_a_product_whose_every_copy_was_deleted_is_recomputed(federation: Federation, s3_server: S3Server,
                                                              tmp_path: Path) -> None:
    made = soft_light_curve_made_at_geneva(federation, s3_server, tmp_path)
    alice, bucket, soft, product, key = made.alice, made.bucket, made.soft, made.product, made.key
    # every copy is deleted: the bucket's object and the file Geneva's product server serves
    s3_server.client().delete_object(Bucket=bucket, Key=key)
    ProductStore(federation.workdir / "products-geneva-batch").path_for(product["checksum"]).unlink()

    combined = {"workflow": FED + "workflow/combine-light-curves",
                "args": {"soft": light_curve(20, 40), "hard": light_curve(20, 40)}}
    first = federation.submit(alice, combined)
    assert ("light-curve", "reuse") in decisions(first["plan"])  # nobody knows yet
    [failed] = federation.wait_for_jobs([j["job"] for j in first["jobs"]], timeout=90)
    assert failed["state"] == "failed"  # Geneva, the only able runner, could not stage it
    [run] = executions_of(federation, first["plan"]["root"])
    assert re.search(r"no replica of '(soft|hard)' could be read: .*missing", run["error"]), run["error"]
    assert set(replicas(federation, product["product"]).values()) == {"Missing"}  # as Geneva reported
    assert federation.product_of(soft["plan"]["root"]) is None  # no longer cache

    again = federation.submit(alice, combined)
    assert sorted(decisions(again["plan"])) == [("combine-light-curves", "recompute"), ("light-curve", "recompute")]
    states = federation.wait_for_jobs([j["job"] for j in again["jobs"]], timeout=90)
    assert [s["state"] for s in states] == ["done", "done"]
    assert len(executions_of(federation, soft["plan"]["root"])) == 2  # made again, not reused
    remade = federation.product_of(soft["plan"]["root"])
    assert remade["checksum"] == product["checksum"]  # the same bytes: stored again in the same place
    assert replicas(federation, remade["product"])[f"s3://{bucket}/{key}"] == "Available"
