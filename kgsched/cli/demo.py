"""``kgsched demo`` (``make demo``): the whole loop, for real, on one machine (kgsched.dev.demo).

A thin command: the harness it runs (service and runner processes, the example federation) is
imported only when the demo starts.
"""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option("--keep", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Keep the store and logs in this directory (default: a temporary one, removed after).")
def demo(keep: Path | None) -> None:
    """Run the demo: service, example federation, runners, a request, provenance, credits, reuse."""
    from kgsched.dev.demo import run_demo

    run_demo(keep)
