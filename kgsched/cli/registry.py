"""``kgsched init | register | validate | unregister``: the ontology and registrants' Turtle in the store.

The registry (and pySHACL with it) is imported when one of these commands runs, not when it is listed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from kgsched.cli.common import DEFAULT_REGISTRANT, StoreOptions, ensure_ontology, reports_errors


def _documents(files: tuple[str, ...]) -> list[tuple[str, bytes]]:
    return [(path, Path(path).read_bytes()) for path in files]


@click.command()
@click.pass_obj
@reports_errors
def init(options: StoreOptions) -> None:
    """Load (or refresh) the ontology into the store."""
    from kgsched.registry.registration import load_ontology

    with options.open() as store:
        count = load_ontology(store)
    click.echo(f"ontology loaded: {count} triples")


BY_PARTY_HELP = ("Register each part as the party entitled to state it (docs/authority.md): agents themselves, "
                 "runners as their owners, verifications as their verifiers (dct:creator), the rest as --as. For "
                 "an operator loading a whole federation's files, like the examples.")


def register_by_party(store: Any, documents: list[tuple[str, bytes]], admin: str) -> tuple[int, int]:
    """Register the files part by party, in dependency order; (registrations, resources)."""
    from kgsched.dev.parties import party_registrations
    from kgsched.graph.binding import check_iri
    from kgsched.registry.registration import Registry

    registry, resources = Registry(store), 0
    parts = party_registrations(documents, check_iri(admin))
    for party, turtle in parts:
        resources += len(registry.register([(str(party), turtle)], party).resources)
    return len(parts), resources


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--as", "registrant", envvar="KGSCHED_REGISTRANT", default=DEFAULT_REGISTRANT, show_default=True,
              help="IRI of the registrant that will own what the files describe.")
@click.option("--by-party", is_flag=True, help=BY_PARTY_HELP)
@click.pass_obj
@reports_errors
def register(options: StoreOptions, files: tuple[str, ...], registrant: str, by_party: bool) -> None:
    """Validate FILES (Turtle) and register them, all or nothing."""
    from kgsched.graph.binding import check_iri
    from kgsched.registry.registration import Registry

    with options.open() as store:
        ensure_ontology(store)
        if by_party:
            parts, resources = register_by_party(store, _documents(files), registrant)
            click.echo(f"registered {resources} resources in {parts} registrations, each by its party")
            return
        result = Registry(store).register(_documents(files), check_iri(registrant))
    click.echo(f"registered {len(result.resources)} resources ({result.triples} triples) for {registrant}")


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--as", "registrant", envvar="KGSCHED_REGISTRANT", default=DEFAULT_REGISTRANT, show_default=True)
@click.option("--by-party", is_flag=True, help="Check them as 'register --by-party' would (in a scratch copy).")
@click.pass_obj
@reports_errors
def validate(options: StoreOptions, files: tuple[str, ...], registrant: str, by_party: bool) -> None:
    """Check FILES as 'register' would, writing nothing."""
    from kgsched.graph.binding import check_iri
    from kgsched.graph.store import EmbeddedStore
    from kgsched.registry.registration import Registry

    if options.endpoint or options.store_path().exists():
        store = options.open(read_only=not options.endpoint)
    else:
        store = EmbeddedStore(None)  # nothing registered yet: check against an empty federation
    if by_party:  # each part depends on those before it: register them into a scratch copy
        with store, EmbeddedStore(None) as scratch:
            for graph in store.named_graphs():
                scratch.add_to_graph(graph, store.graph(graph))
            ensure_ontology(scratch)
            parts, resources = register_by_party(scratch, _documents(files), registrant)
        click.echo(f"valid: {resources} resources in {len(files)} file(s), {parts} registrations by party")
        return
    with store:
        _, subjects = Registry(store).check(_documents(files), check_iri(registrant))
    click.echo(f"valid: {len(subjects)} resources in {len(files)} file(s)")


@click.command()
@click.option("--as", "registrant", envvar="KGSCHED_REGISTRANT", default=DEFAULT_REGISTRANT, show_default=True)
@click.pass_obj
@reports_errors
def unregister(options: StoreOptions, registrant: str) -> None:
    """Remove everything the registrant registered."""
    from kgsched.graph.binding import check_iri
    from kgsched.registry.registration import Registry

    with options.open() as store:
        removed = Registry(store).unregister(check_iri(registrant))
    click.echo(f"removed {removed} triples registered by {registrant}")
