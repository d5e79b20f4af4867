"""``kgsched serve``: the Flask service behind waitress, a production WSGI server with threads.

One process only on the embedded store (its directory is locked by the process that opens it), so
concurrency comes from waitress's threads, and the job queue serializes its read-modify-writes with
the store's lock. Several replicas are possible over one SPARQL server (``--endpoint``): the claim
protocol arbitrates between them (docs/claim-protocol.md).
"""

from __future__ import annotations

import faulthandler
import logging
import signal
import sys
from typing import Any

import click

from kgsched.cli.common import StoreOptions, reports_errors


@click.command()
@click.option("--store", "store_dir", default=None, help="Directory of the embedded store (overrides the group's).")
@click.option("--endpoint", default=None, help="A SPARQL 1.1 server (Oxigraph root or query URL) instead.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port to listen on.")
@click.option("--threads", default=8, show_default=True, type=int, help="Worker threads of the WSGI server.")
@click.option("--config", "config_file", default=None, type=click.Path(exists=True, dir_okay=False),
              help="A TOML or JSON configuration file (env KGSCHED_CONFIG).")
@click.pass_obj
@reports_errors
def serve(options: StoreOptions, store_dir: str | None, endpoint: str | None, host: str, port: int, threads: int,
          config_file: str | None) -> None:
    """Serve the SPARQL endpoint, registration, plans, the job queue and credits over HTTP."""
    import waitress

    from kgsched.service import close_app, create_app

    if store_dir and endpoint:
        raise click.UsageError("give --store or --endpoint, not both")
    overrides: dict[str, Any] = {"CONFIG_FILE": config_file}
    chosen_endpoint = endpoint or (None if store_dir else options.endpoint)
    chosen_store = store_dir or (None if endpoint else options.store_dir)
    if chosen_endpoint:
        overrides.update(ENDPOINT=chosen_endpoint, STORE=None)
    elif chosen_store:
        overrides.update(STORE=chosen_store, ENDPOINT=None)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # waitress warns on every request queued behind busy threads; under load that is thousands of lines
    # a second (and a full stderr pipe stalls the server), so keep only its errors
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    app = create_app(overrides)
    state = app.extensions["kgsched"]
    where = chosen_endpoint or app.config["STORE"]
    click.echo(f"kgsched serving http://{host}:{port}/ on the {state.store_kind} store {where}", err=True)

    def stop(signum: int, _frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    if hasattr(signal, "SIGUSR1"):  # `kill -USR1 <pid>` prints every thread's stack (diagnosing a stuck server)
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    try:
        waitress.serve(app, host=host, port=port, threads=threads, ident="kgsched", channel_timeout=120,
                       connection_limit=1000, _quiet=True)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        close_app(app)
        click.echo("kgsched stopped", err=True)
    sys.exit(0)
