"""The project's error vocabulary, mapped once to HTTP status codes and CLI exit codes."""

from __future__ import annotations

from typing import Any


class KgschedError(Exception):
    """Base error: carries the HTTP status the service answers with and a JSON body."""

    status_code = 400
    error = "bad request"

    def __init__(self, detail: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra or {}

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.error, "detail": self.detail, **self.extra}


class SyntaxProblem(KgschedError):
    """Input that does not parse (Turtle, JSON, SPARQL): the client's fault."""

    error = "syntax error"


class ShapeViolation(KgschedError):
    """Data that parses but breaks a SHACL shape; carries the report."""

    status_code = 422
    error = "SHACL validation failed"

    def __init__(self, detail: str, *, report_text: str, report_turtle: str, results: list[dict]) -> None:
        super().__init__(detail, extra={"report": report_text, "results": results})
        self.report_text = report_text
        self.report_turtle = report_turtle
        self.results = results


class OwnershipConflict(KgschedError):
    """A registrant tried to describe a resource another registrant owns."""

    status_code = 403
    error = "not owner"


class NotEntitled(KgschedError):
    """A registration states something its registrant is not entitled to state (docs/authority.md)."""

    status_code = 403
    error = "not entitled"


class NotFound(KgschedError):
    status_code = 404
    error = "not found"


class InvalidRequest(KgschedError):
    """Well-formed input that asks for something impossible (unknown parameter, wrong type...)."""

    error = "invalid request"


class StoreError(KgschedError):
    """The store failed; ours, not the client's."""

    status_code = 500
    error = "store error"
