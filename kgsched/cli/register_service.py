"""``kgsched register-service URL``: draft the Turtle of a remote OGC API – Processes service, for review."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command("register-service")
@click.argument("url")
@click.option("--process", "processes", multiple=True, help="Process id to include (default: every process).")
@click.option("--service", "service_iri", required=True, help="IRI to name the service (a ks:ServiceRunner).")
@click.option("--owner", required=True, help="IRI of the service's owner (credited for every run).")
@click.option("--site", required=True, help="IRI of the registered ks:Site where the service runs.")
@click.option("--workflow-base", required=True, help="Workflow IRIs are this prefix + the process id.")
@click.option("--storage", default=None, help="IRI of the ks:Storage where its products are kept.")
@click.option("--verified-by", default=None, help="IRI of who verified the processes (and whom the service trusts).")
@click.option("--cores", type=int, default=2, show_default=True, help="Jobs the service takes at once.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the Turtle here (default: standard output).")
def register_service(url: str, processes: tuple[str, ...], service_iri: str, owner: str, site: str,
                     workflow_base: str, storage: str | None, verified_by: str | None, cores: int,
                     output: Path | None) -> None:
    """Read the service's process descriptions and write the Turtle to review and register."""
    from kgsched.registry.service_description import ServiceDraft, service_turtle
    from kgsched.runner.ogc import OgcProcessesClient, ServiceCallError

    if not url.startswith(("http://", "https://")):
        raise click.BadParameter("the service URL must start with http:// or https://", param_hint="URL")
    client = OgcProcessesClient(url)
    try:
        ids = list(processes) or client.process_ids()
        descriptions = [client.describe(pid) for pid in ids]
    except ServiceCallError as exc:
        click.echo(f"rejected: {exc}", err=True)
        sys.exit(1)
    if not descriptions:
        click.echo(f"rejected: the service at {url} offers no process", err=True)
        sys.exit(1)
    draft = ServiceDraft(url, service_iri, owner, site, workflow_base, storage, verified_by, cores)
    turtle = service_turtle(draft, descriptions)
    if output is None:
        click.echo(turtle, nl=False)
    else:
        output.write_text(turtle)
        click.echo(f"wrote {output}: review it, then register it with 'kgsched register {output}'", err=True)
