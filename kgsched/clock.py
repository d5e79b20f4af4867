"""Time as kgsched writes it: timezone-aware UTC, xsd:dateTime with microseconds and a ``Z``."""

from __future__ import annotations

import datetime as dt

from rdflib import Literal
from rdflib.namespace import XSD

from kgsched.errors import InvalidRequest


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def dt_literal(moment: dt.datetime) -> Literal:
    """One fixed spelling, so equal instants are equal literals (DELETE DATA finds what was written)."""
    return Literal(moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), datatype=XSD.dateTime)


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_literal(value: object) -> dt.datetime:
    """A datetime from a store row (rdflib Literal of xsd:dateTime)."""
    python = value.toPython() if isinstance(value, Literal) else value
    if isinstance(python, dt.datetime):
        return python if python.tzinfo else python.replace(tzinfo=dt.UTC)
    return parse_iso(str(value))


def parse_iso(text: str) -> dt.datetime:
    """An ISO 8601 instant from a client; naive times are refused (which zone would they be in?)."""
    try:
        moment = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(f"not an ISO 8601 date-time: {text!r}") from None
    if moment.tzinfo is None:
        raise InvalidRequest(f"date-time {text!r} has no time zone; add Z or an offset")
    return moment.astimezone(dt.UTC)
