"""``kgsched init | register | validate | unregister``: the ontology and registrants' Turtle in the store.

The registry (and pySHACL with it) is imported when one of these commands runs, not when it is listed.
"""

from __future__ import annotations

from pathlib import Path

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


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--as", "registrant", envvar="KGSCHED_REGISTRANT", default=DEFAULT_REGISTRANT, show_default=True,
              help="IRI of the registrant that will own what the files describe.")
@click.pass_obj
@reports_errors
def register(options: StoreOptions, files: tuple[str, ...], registrant: str) -> None:
    """Validate FILES (Turtle) and register them, all or nothing."""
    from kgsched.graph.binding import check_iri
    from kgsched.registry.registration import Registry

    with options.open() as store:
        ensure_ontology(store)
        result = Registry(store).register(_documents(files), check_iri(registrant))
    click.echo(f"registered {len(result.resources)} resources ({result.triples} triples) for {registrant}")


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--as", "registrant", envvar="KGSCHED_REGISTRANT", default=DEFAULT_REGISTRANT, show_default=True)
@click.pass_obj
@reports_errors
def validate(options: StoreOptions, files: tuple[str, ...], registrant: str) -> None:
    """Check FILES as 'register' would, writing nothing."""
    from kgsched.graph.binding import check_iri
    from kgsched.graph.store import EmbeddedStore
    from kgsched.registry.registration import Registry

    if options.endpoint or options.store_path().exists():
        store = options.open(read_only=not options.endpoint)
    else:
        store = EmbeddedStore(None)  # nothing registered yet: check against an empty federation
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
