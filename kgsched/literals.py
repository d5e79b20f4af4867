"""RDF literals as kgsched writes them, and terms as it reports them in JSON: one spelling each.

Fixed spellings matter: ``DELETE DATA`` removes only a literal written exactly as before, so a value
kgsched writes and later replaces (a claim's progress, a running mean) must always be spelled the
same way. Instants are kgsched.clock.dt_literal.
"""

from __future__ import annotations

from rdflib import Literal
from rdflib.namespace import XSD
from rdflib.term import Node


def decimal_literal(value: float, digits: int) -> Literal:
    """An xsd:decimal with ``digits`` digits after the point (no float noise such as 0.30000000000000004)."""
    return Literal(f"{value:.{digits}f}", datatype=XSD.decimal)


def optional_str(term: Node | None) -> str | None:
    """The term as text for JSON; None for a term that is absent."""
    return None if term is None else str(term)
