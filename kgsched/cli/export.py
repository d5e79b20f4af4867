"""``kgsched export PRODUCT_IRI --format ro-crate|prov-json|turtle``: a product's whole provenance.

Turtle and PROV-JSON go to standard output unless ``--output`` names a file; an RO-Crate is a
directory (or a ``.zip``) and needs ``--output``. An unknown product is refused with exit status 1
and nothing is written.
"""

from __future__ import annotations

from pathlib import Path

import click

from kgsched.cli.common import StoreOptions, reports_errors
from kgsched.errors import InvalidRequest


@click.command("export")
@click.argument("product")
@click.option("--format", "fmt", type=click.Choice(["turtle", "prov-json", "ro-crate"]), default="turtle",
              show_default=True, help="Turtle (PROV-O), W3C PROV-JSON, or a Workflow Run RO-Crate.")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Where to write (a file; for ro-crate a directory or a .zip). Default: standard output.")
@click.pass_obj
@reports_errors
def export(options: StoreOptions, product: str, fmt: str, output: Path | None) -> None:
    """Export the whole provenance of PRODUCT (a data product IRI), through every product it used."""
    from kgsched.graph.binding import check_iri
    from kgsched.provenance.export import lineage, provenance_graph, to_turtle

    iri = check_iri(product)
    if fmt == "ro-crate" and output is None:
        raise InvalidRequest("an RO-Crate is a directory or a .zip: say where with --output")
    with options.open(read_only=True) as store:
        if fmt == "turtle":
            text = to_turtle(provenance_graph(store, iri))
        else:
            found = lineage(store, iri)
    if fmt == "ro-crate":
        from kgsched.provenance.ro_crate import write_ro_crate

        assert output is not None
        write_ro_crate(found, output)
        click.echo(f"wrote an RO-Crate of {len(found.executions)} execution(s) and {len(found.entities)} "
                   f"product(s) and dataset(s) to {output}", err=True)
        return
    if fmt == "prov-json":
        from kgsched.provenance.prov_json import to_prov_json

        text = to_prov_json(found)
    if output is None:
        click.echo(text)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {fmt} to {output}", err=True)
