"""What the commands share: the --store/--endpoint choice, the registrant default, and error reporting.

Light on purpose: it is imported whenever a command runs or shows its help, so the store (and with
it pyoxigraph) and the registry (pySHACL) are imported only when a command opens them.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from kgsched.errors import KgschedError, ShapeViolation
from kgsched.graph import DEFAULT_STORE_DIR

if TYPE_CHECKING:
    from kgsched.graph.store import Store

DEFAULT_REGISTRANT = "urn:kgsched:agent:local-admin"


class StoreOptions:
    """The --store/--endpoint choice, opened lazily (so --help never touches the disk)."""

    def __init__(self, store_dir: str | None, endpoint: str | None) -> None:
        self.store_dir = store_dir
        # a server's own query URL (KGSCHED_QUERY_ENDPOINT, with its update/store URLs and credentials
        # in the other KGSCHED_* settings: kgsched.graph.store.REMOTE_SETTINGS) also picks the remote store
        self.endpoint = endpoint or os.environ.get("KGSCHED_QUERY_ENDPOINT") or None

    def store_path(self) -> Path:
        """The embedded store's directory this command would open (when no endpoint is given)."""
        return Path(self.store_dir or os.environ.get("KGSCHED_STORE") or DEFAULT_STORE_DIR)

    def open(self, *, read_only: bool = False) -> Store:
        from kgsched.graph.store import open_store

        if read_only and not self.endpoint:
            path = self.store_path()
            if not path.exists():
                raise KgschedError(f"no store at {path}; run 'kgsched init' or 'kgsched register' first")
        return open_store(self.store_dir, self.endpoint, read_only=read_only)


def reports_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the project's errors into a message on stderr and exit status 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ShapeViolation as exc:
            click.echo(f"rejected: {exc.detail}", err=True)
            click.echo("\nSHACL report:\n" + exc.report_text, err=True)
            sys.exit(1)
        except KgschedError as exc:
            click.echo(f"rejected: {exc.error}: {exc.detail}", err=True)
            sys.exit(1)

    return wrapper


def ensure_ontology(store: Store) -> None:
    """Load the ontology into a store that has none yet (register and import-wfcommons need it)."""
    from kgsched.graph import queries
    from kgsched.namespaces import ONTOLOGY_GRAPH
    from kgsched.registry.registration import load_ontology

    if not queries.ask(store, "graph-exists", {"g": [ONTOLOGY_GRAPH]}):
        load_ontology(store)
