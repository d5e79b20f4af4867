"""Who is calling: the bearer token of the request, checked against the token store.

``require_identity()`` answers 401 without a valid token; the caller then decides what the identity
may do (403). One-job and runner tokens are refused everywhere but the job routes.
"""

from __future__ import annotations

from flask import g, request

from kgsched.registry.tokens import Identity
from kgsched.service.errors import Forbidden, Unauthorized
from kgsched.service.state import current, request_generation


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def optional_identity() -> Identity | None:
    if "identity" not in g:
        secret = bearer_token()
        g.identity = current().tokens.authenticate(secret, request_generation()) if secret else None
    return g.identity


def require_identity(*, allow_one_job: bool = False, allow_runner: bool = False) -> Identity:
    """The caller's identity (401 without one). One-job and runner tokens act only as their runner: they
    are refused (403) everywhere but the job routes and /whoami."""
    identity = optional_identity()
    if identity is None:
        if bearer_token() is None:
            raise Unauthorized("this needs a bearer token: 'Authorization: Bearer <token>'")
        raise Unauthorized("the bearer token is not valid (unknown or revoked)")
    if identity.one_job and not allow_one_job:
        raise Forbidden("a one-job token may only claim, heartbeat and report its job")
    if identity.runner_token and not allow_runner:
        raise Forbidden("a runner's token acts only as that runner (claims, heartbeats, results); use its "
                        "owner's token for this")
    return identity


def require_admin() -> Identity:
    identity = require_identity()
    if not identity.admin:
        raise Forbidden("only the administrator may do this")
    return identity
