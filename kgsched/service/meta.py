"""``/health`` and ``/openapi.json``."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from flask import Blueprint, Response, jsonify

from kgsched.service.openapi import document
from kgsched.service.state import current

bp = Blueprint("meta", __name__)


def package_version() -> str:
    try:
        return version("kgsched")
    except PackageNotFoundError:  # pragma: no cover - running from a checkout without install
        return "0"


@bp.get("/health")
def health() -> Response:
    state = current()
    return jsonify({"status": "ok", "store": state.store_kind, "version": package_version(),
                    "queue": dict(state.queue.counters), "claim_mode": state.queue.mode})


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(document(package_version()))
