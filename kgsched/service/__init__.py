"""kgsched's HTTP service: a Flask application factory and one blueprint per concern.

``create_app(test_config=None)`` reads the configuration (kgsched.service.config), opens the store
once, and registers the blueprints: sparql (the SPARQL endpoint), page (the query and resource pages), registrations,
plans, jobs, credits, identity (tokens) and meta (health, OpenAPI). Every error is answered as JSON
``{"error": …, "detail": …}``. Serve it with ``kgsched serve`` (waitress, threads).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from kgsched.service.config import load_config
from kgsched.service.errors import register_error_handlers
from kgsched.service.state import ServiceState, init_state


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """The application: defaults, config file, ``KGSCHED_*`` environment, then ``test_config``."""
    app = Flask(__name__, static_folder=None)
    load_config(app, test_config)
    init_state(app)
    register_error_handlers(app)
    from kgsched.service import credits, identity, jobs, meta, page, page_resources, plans, registrations, sparql

    for module in (sparql, page, page_resources, registrations, plans, jobs, credits, identity, meta):
        app.register_blueprint(module.bp)
    return app


def close_app(app: Flask) -> None:
    """Close the store the app opened (not one it was given)."""
    from kgsched.service.query_workers import close_workers

    close_workers(app)
    state: ServiceState | None = app.extensions.get("kgsched")
    if state is not None:
        state.close()


__all__ = ["close_app", "create_app"]
