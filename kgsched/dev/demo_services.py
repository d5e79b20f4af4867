"""The demo's last act: a remote web service and a notebook in one lineage (``kgsched demo``).

Frank joins his OGC API – Processes service (a real pygeoapi started here) as a runner at Garching,
with a runner agent in service mode. Alice asks for a light-curve plot made by a Jupyter notebook,
annotated with the variability Frank's service computes from the same light curve: the lineage of
the plot runs through the service's product, and Frank is thanked in the acknowledgement.

The printing helpers are passed in by the demo (so this module does not depend on where the demo's
command lives).
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from typing import Any

import click
from rdflib import URIRef

from kgsched.dev.federation import EXAMPLES, FED, Federation
from kgsched.dev.services import (
    EXAMPLE_SERVICE,
    EXAMPLE_SERVICE_RUNNER,
    start_example_service,
    start_service_runner,
    with_endpoint,
)
from kgsched.vocabulary import KS_IRI

SERVICE_NAME = EXAMPLE_SERVICE_RUNNER.rsplit("/", 1)[-1]
KS = KS_IRI
PNG_MAGIC = b"\x89PNG"


def executed_notebook(federation: Federation, product: str) -> dict[str, str] | None:
    rows = federation.select(
        f"PREFIX ks: <{KS}> PREFIX prov: <http://www.w3.org/ns/prov#>\n"
        "SELECT ?notebook ?location ?checksum ?size WHERE {\n# @values\n"
        "?product prov:wasGeneratedBy/ks:executedNotebook ?notebook .\n"
        "?notebook ks:location ?location ; ks:checksum ?checksum ; ks:sizeBytes ?size }",
        {"product": [URIRef(product)]})
    return rows[0] if rows else None


def services_and_notebooks(federation: Federation, alice: str, *, heading: Callable[[str], None],
                           run_request: Callable[[Federation, str, dict[str, Any]], dict[str, Any]],
                           show_lineage: Callable[[Federation, str], None]) -> dict[str, Any]:
    """Runs the act; returns what it saw (the end-to-end test asserts on it)."""
    seen: dict[str, Any] = {}
    heading("Frank joins his web service (OGC API - Processes) as a runner at Garching")
    server = start_example_service(federation.workdir)
    try:
        config = with_endpoint(EXAMPLE_SERVICE, server.url, federation.workdir / "variability-service.ttl")
        start_service_runner(federation, SERVICE_NAME, config)
        click.echo(f"  pygeoapi at {server.url} offers process 'light-curve-variability'")
        click.echo(f"  runner {SERVICE_NAME} (a ks:ServiceRunner owned by Frank) registered; a runner agent in "
                   "service mode calls the service for its jobs")

        request = json.loads((EXAMPLES / "requests" / "light-curve-plot.json").read_text())
        heading("Alice asks for a light-curve plot (a notebook) with the variability Frank's service computes")
        answer = run_request(federation, alice, request)
        seen["services_answer"] = answer
        product = federation.product_of(answer["plan"]["root"])
        if product is None:
            raise click.ClickException("the notebook's plot has no product")
        data = federation.fetch(product["location"])
        plot = federation.workdir / "light-curve-plot.png"
        plot.write_bytes(data)
        seen["notebook_product"] = product["product"]
        kind = "PNG image" if data.startswith(PNG_MAGIC) else "file (not a PNG!)"
        click.echo(f"notebook product {product['product'].rsplit('/', 1)[-1][:24]}…: a {len(data)}-byte {kind}, "
                   f"saved as {plot} (kept with 'kgsched demo --keep DIR')")
        notebook = executed_notebook(federation, product["product"])
        if notebook is not None:
            seen["executed_notebook"] = notebook["notebook"]
            click.echo(f"  executed notebook ({notebook['size']} bytes, ks:executedNotebook): {notebook['location']}")
        service_step = next(s for s in answer["plan"]["steps"] if s["workflow"].endswith("-service"))
        service_product = federation.product_of(service_step["expression"])
        if service_product is not None:
            seen["service_product"] = service_product["product"]
            stats = json.loads(federation.fetch(service_product["location"]))
            click.echo(f"  service product: mean {stats['mean_rate_cts_per_s']:.2f} cts/s, chi2/dof "
                       f"{stats['chi2_per_dof']:.1f}, fractional variability {stats['fractional_variability']:.2f}")

        heading("Lineage of the plot: events -> light curve -> Frank's service -> notebook")
        show_lineage(federation, product["product"])
        heading("Acknowledgement of the plot")
        acknowledgement = federation.acknowledgements(product["product"])
        seen["services_acknowledgement"] = acknowledgement
        click.echo(textwrap.fill(acknowledgement["sentence"], width=100, initial_indent="  ",
                                 subsequent_indent="  "))
    finally:
        # pygeoapi stops now; the service runner's agent keeps serving the products it stored until the
        # federation stops (it is one of federation.runners).
        server.stop()
    return seen


__all__ = ["FED", "services_and_notebooks"]
