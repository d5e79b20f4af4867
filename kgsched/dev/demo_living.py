"""The demo's living-federation act (``kgsched demo``): a product outlives its runner in the site's storage,
and a runner that joins after the plan takes the job that reads it.

Geneva's disk is declared a directory on the site's shared file system, and every runner but
Geneva's batch runner stops. Alice asks for a light curve; Geneva's batch runner makes it and writes
it to its product server *and* to the shared directory. Then it stops too, and Geneva's owner
withdraws it: the copy on its product server is marked gone, the shared one stays. Alice asks for a
combination that reuses the light curve; the runners the plan names are all down. The Garching
volunteer — an anonymous job-token runner — joins only now, takes the job once the planned runners'
head start is over (late binding), reads the light curve from Geneva's shared directory, checksum-
verified, and leaves.

The printing helpers are passed in by the demo (so this module does not depend on where the demo's
command lives).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import click
from rdflib import URIRef

from kgsched.dev.federation import FED, Federation
from kgsched.runner.storage import ProductStore

UNIGE = FED + "org/unige"
GENEVA_BATCH = FED + "runner/geneva-batch"
VOLUNTEER = "garching-volunteer"
ISGRI = FED + "data/isgri-events-rev2670"


def light_curve(emin: float, emax: float) -> dict[str, Any]:
    return {"workflow": FED + "workflow/light-curve",
            "args": {"events": {"dataset": ISGRI}, "energy_min_kev": emin, "energy_max_kev": emax}}


def replicas(federation: Federation, product: str) -> list[dict[str, str]]:
    return federation.named("product-replicas", {"product": [URIRef(product)]})


def show_replicas(federation: Federation, product: str) -> None:
    for row in sorted(replicas(federation, product), key=lambda r: r["location"]):
        status = row.get("status", "?").rsplit("#", 1)[-1]
        where = "product server of " + row["servedBy"].rsplit("/", 1)[-1] if row.get("servedBy") else \
            row["storage"].rsplit("/", 1)[-1]
        click.echo(f"  {status:<10} {where:<36} {row['location'][:60]}")


def living_federation(federation: Federation, alice: str, *, heading: Callable[[str], None],
                      run_request: Callable[[Federation, str, dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    """Runs the act; returns what it saw (the end-to-end test asserts on it)."""
    seen: dict[str, Any] = {}
    heading("Geneva's disk becomes a directory on the site's shared file system")
    shared = federation.workdir / "geneva-shared-disk"
    shared.mkdir(exist_ok=True)
    federation.declare_storage("geneva-disk", "geneva", directory=str(shared))
    click.echo(f"  storage geneva-disk: ks:directory {shared} (credentials, for S3, stay on the runners)")
    for name in [n for n in federation.runners if n != GENEVA_BATCH.rsplit("/", 1)[-1]]:
        federation.stop_runner(name)  # the others go home for the night (still registered)
    click.echo("  every runner but Geneva's batch runner stops for the night (they stay registered)")
    request = {"request": light_curve(60, 100), "options": {"preferred_runner": GENEVA_BATCH}}
    made = run_request(federation, alice, request)
    product = federation.product_of(made["plan"]["root"])
    if product is None:
        raise click.ClickException("the light curve has no product")
    seen["stored_product"] = product
    click.echo("its copies (ks:Replica, recorded by the service from the runner's report):")
    show_replicas(federation, product["product"])

    heading("Geneva's batch runner stops, and its owner withdraws it")
    for name in list(federation.runners):
        federation.stop_runner(name)
    federation.deregister_runner_owner(UNIGE)
    click.echo("  the copy on the runner's product server is gone, the one in site storage is not:")
    show_replicas(federation, product["product"])

    heading("Alice combines it; a volunteer joins after the plan and takes the job")
    combined = {"workflow": FED + "workflow/combine-light-curves",
                "args": {"soft": light_curve(60, 100), "hard": light_curve(60, 100)}}
    answer = federation.submit(alice, combined)
    step = next(s for s in answer["plan"]["steps"] if s["decision"] == "recompute")
    click.echo(f"  plan: reuse the light curve; combine on {step['runner'].rsplit('/', 1)[-1]} (which is down)")
    federation.start_runner(VOLUNTEER, once=True)
    click.echo(f"  runner {VOLUNTEER} (anonymous, one job per token) joined after the plan")
    jobs = [job["job"] for job in answer["jobs"]]
    states = federation.wait_for_jobs(jobs, timeout=120)
    if any(state["state"] != "done" for state in states):
        raise click.ClickException(f"the combination did not run: {states}")
    runs = federation.select(
        "PREFIX ks: <https://w3id.org/kgsched#> PREFIX prov: <http://www.w3.org/ns/prov#>\n"
        "SELECT ?runner WHERE {\n# @values\n?execution ks:computes ?expression ; prov:wasAssociatedWith ?runner }",
        {"expression": [URIRef(answer["plan"]["root"])]})
    seen["living_answer"] = answer
    seen["living_runners"] = sorted(row["runner"] for row in runs)
    local = ProductStore(federation.workdir / f"products-{VOLUNTEER}").path_for(product["checksum"])
    copied = "sha256:" + hashlib.sha256(local.read_bytes()).hexdigest() if local.is_file() else None
    seen["volunteer_copy_matches"] = copied == product["checksum"]
    verdict = "matches" if seen["volunteer_copy_matches"] else "DOES NOT match"
    click.echo(f"  run by {', '.join(r.rsplit('/', 1)[-1] for r in seen['living_runners'])}, which read the light "
               f"curve from Geneva's shared directory after its maker left; its copy {verdict} the graph's checksum")
    return seen


__all__ = ["living_federation"]
