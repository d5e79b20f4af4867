"""``kgsched import-wfcommons TRACE.json``: a WfCommons trace into the graph (see kgsched.wfcommons.convert).

The trace is read and checked, converted in memory (with a progress bar: large traces take
seconds), optionally checked against the SHACL shapes, and only then written — in one update, so a
bad trace or a refused write leaves the store as it was.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from kgsched.cli.common import DEFAULT_REGISTRANT, StoreOptions, ensure_ontology, reports_errors


@click.command("import-wfcommons")
@click.argument("trace_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", default=None, help="Name the trace's IRIs are made from (default: the file name).")
@click.option("--sites", type=click.IntRange(min=1), default=1, show_default=True,
              help="Spread the trace's machines and input files over this many sites (at most one per machine).")
@click.option("--wan-bandwidth", type=click.FloatRange(min=0, min_open=True), default=1e8, show_default=True,
              help="Bytes per second between the trace's sites.")
@click.option("--provenance/--no-provenance", default=True, show_default=True,
              help="Record the trace's executions and products (--no-provenance: only its workflows, runners, "
                   "sites and datasets, to plan it from scratch).")
@click.option("--validate", is_flag=True,
              help="Check everything against the SHACL shapes before writing (about 30 s for 1,738 tasks).")
@click.option("--as", "registrant", envvar="KGSCHED_REGISTRANT", default=DEFAULT_REGISTRANT, show_default=True,
              help="IRI of the registrant that will own the trace's workflows, runners, sites and datasets.")
@click.pass_obj
@reports_errors
def import_wfcommons(options: StoreOptions, trace_file: Path, name: str | None, sites: int, wan_bandwidth: float,
                     provenance: bool, validate: bool, registrant: str) -> None:
    """Import TRACE_FILE, a WfCommons workflow instance (WfFormat 1.5, .json or .json.gz)."""
    from kgsched.graph.binding import check_iri
    from kgsched.planning.words import human_bytes
    from kgsched.wfcommons.convert import ImportOptions, convert, write
    from kgsched.wfcommons.wfformat import read_trace

    owner = check_iri(registrant)
    trace = read_trace(trace_file, name)
    import_options = ImportOptions(name=name, sites=sites, wan_bandwidth=wan_bandwidth, provenance=provenance)
    with click.progressbar(length=len(trace.tasks), label=f"converting {len(trace.tasks):,} tasks",
                           file=sys.stderr) as bar:
        conversion = convert(trace, import_options, progress=lambda _done: bar.update(1))
    if validate:
        from rdflib import Graph

        from kgsched.registry.registration import validate_graph

        click.echo("checking against the SHACL shapes …", err=True)
        graph = Graph()
        for triple in conversion.all_triples():
            graph.add(triple)
        validate_graph(graph).raise_if_violated()
    counts = conversion.counts()
    click.echo(f"writing {counts['triples']:,} triples …", err=True)
    with options.open() as store:
        ensure_ontology(store)
        write(store, conversion, owner)
    recorded = (f"{counts['executions']:,} executions and products ({human_bytes(counts['product_bytes'])})"
                if provenance else "no executions (--no-provenance)")
    click.echo(f"imported {trace.name}: {counts['workflows']} workflows, {counts['expressions']:,} expressions, "
               f"{recorded}; {counts['runners']} runners at {counts['sites']} site(s), "
               f"{counts['datasets']:,} datasets; namespace {conversion.namespace}")
