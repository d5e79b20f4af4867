"""HTTP errors of the service, and the app-level handlers that answer every error as JSON.

Everything the service raises is a KgschedError (with ``status_code`` and ``to_dict()``) or a
werkzeug HTTPException; both become ``{"error": …, "detail": …}`` with the right status. The handlers
are registered on the app, not on blueprints, so unmatched URLs (404) and methods (405) are JSON too.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from kgsched.errors import KgschedError, ShapeViolation

log = logging.getLogger("kgsched.service")


class Unauthorized(KgschedError):
    status_code = 401
    error = "unauthorized"


class Forbidden(KgschedError):
    status_code = 403
    error = "forbidden"


class UnsupportedMediaType(KgschedError):
    status_code = 415
    error = "unsupported media type"


class NotAcceptable(KgschedError):
    status_code = 406
    error = "not acceptable"


class ResultTooLarge(KgschedError):
    """The query's result passed the size limit; the client should narrow it (LIMIT, filters)."""

    status_code = 400
    error = "result too large"


class QueryTimeout(KgschedError):
    status_code = 503
    error = "query timeout"


class Busy(KgschedError):
    status_code = 503
    error = "busy"


def _json(body: dict, status: int) -> Response:
    response = jsonify(body)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="kgsched"'
    if status == 503:
        response.headers["Retry-After"] = "1"
    return response


def handle_kgsched_error(exc: KgschedError) -> Response:
    body = exc.to_dict()
    if isinstance(exc, ShapeViolation):
        body["report_turtle"] = exc.report_turtle
        best = request.accept_mimetypes.best_match(["application/json", "text/turtle", "text/plain"])
        if best == "text/turtle" and request.accept_mimetypes["text/turtle"] > request.accept_mimetypes[
                "application/json"]:
            return Response(exc.report_turtle, status=422, mimetype="text/turtle")
        if best == "text/plain" and request.accept_mimetypes["text/plain"] > request.accept_mimetypes[
                "application/json"]:
            return Response(f"{exc.detail}\n\n{exc.report_text}", status=422, mimetype="text/plain")
    if exc.status_code >= 500:
        log.warning("%s %s: %s", request.method, request.path, exc.detail)
    return _json(body, exc.status_code)


def handle_http_exception(exc: HTTPException) -> Response:
    return _json({"error": (exc.name or "error").lower(), "detail": exc.description or ""}, exc.code or 500)


def handle_unexpected(exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.path)
    return _json({"error": "internal error", "detail": f"{type(exc).__name__}: the service failed; see its log"},
                 500)


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(KgschedError, handle_kgsched_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
