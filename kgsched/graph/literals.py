"""Strict literals: the lexical space of each XSD datatype, so ill-typed literals are refused on input.

Oxigraph's parser accepts ``"abc"^^xsd:integer`` (an ill-typed literal is still an RDF term), and a
shape constrains only the properties it names, so without this check a registrant could store
``"1"^^xsd:negativeInteger`` or ``"2024-02-30"^^xsd:date`` on any other property, and every reader
(SPARQL comparisons, the planner's numbers, exports) would meet them later. The lexical spaces
follow XML Schema 1.1 Part 2 (no surrounding whitespace is accepted, as in RDF 1.1); an XSD name
that is not a datatype usable in RDF (or a typo) is refused too.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import re
from collections.abc import Callable

XSD = "http://www.w3.org/2001/XMLSchema#"

_TZ = r"(?:Z|[+-](?:(?:0\d|1[0-3]):[0-5]\d|14:00))"
_YEAR = r"-?(?:[1-9]\d{3,}|0\d{3})"
_MONTH = r"(?:0[1-9]|1[0-2])"
_DAY = r"(?:0[1-9]|[12]\d|3[01])"
_TIME = r"(?:(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d+)?|24:00:00(?:\.0+)?)"
_DECIMAL = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)"
_FLOAT = r"(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]?INF|NaN)"
_DURATION_DAYTIME = r"(?:\d+D)?(?:T(?=\d)(?:\d+H)?(?:\d+M)?(?:\d+(?:\.\d+)?S)?)?"
_NAME_START = r"A-Z_a-z\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u02FF\u0370-\u037D\u037F-\u1FFF\u200C-\u200D" \
              r"\u2070-\u218F\u2C00-\u2FEF\u3001-\uD7FF\uF900-\uFDCF\uFDF0-\uFFFD\U00010000-\U000EFFFF"
_NAME_CHAR = _NAME_START + r"\-.0-9\u00B7\u0300-\u036F\u203F-\u2040"

_PATTERNS: dict[str, re.Pattern[str]] = {name: re.compile(pattern) for name, pattern in {
    "boolean": r"true|false|1|0",
    "decimal": _DECIMAL,
    "integer": r"[+-]?\d+",
    "double": _FLOAT,
    "float": _FLOAT,
    "date": f"({_YEAR})-({_MONTH})-({_DAY}){_TZ}?",
    "dateTime": f"({_YEAR})-({_MONTH})-({_DAY})T{_TIME}{_TZ}?",
    "dateTimeStamp": f"({_YEAR})-({_MONTH})-({_DAY})T{_TIME}{_TZ}",
    "time": f"{_TIME}{_TZ}?",
    "gYear": f"{_YEAR}{_TZ}?",
    "gYearMonth": f"{_YEAR}-{_MONTH}{_TZ}?",
    "gMonth": f"--{_MONTH}{_TZ}?",
    "gDay": f"---{_DAY}{_TZ}?",
    "gMonthDay": f"--({_MONTH})-({_DAY}){_TZ}?",
    "duration": r"-?P(?=\d|T)(?:\d+Y)?(?:\d+M)?" + _DURATION_DAYTIME,
    "dayTimeDuration": r"-?P(?=\d|T)" + _DURATION_DAYTIME,
    "yearMonthDuration": r"-?P(?=\d)(?:\d+Y)?(?:\d+M)?",
    "hexBinary": r"(?:[0-9A-Fa-f]{2})*",
    "language": r"[a-zA-Z]{1,8}(?:-[a-zA-Z0-9]{1,8})*",
    "normalizedString": r"[^\r\n\t]*",
    "NMTOKEN": f"[{_NAME_CHAR}:]+",
    "Name": f"[{_NAME_START}:][{_NAME_CHAR}:]*",
    "NCName": f"[{_NAME_START}][{_NAME_CHAR}]*",
}.items()}
for _alias in ("ID", "IDREF", "ENTITY"):
    _PATTERNS[_alias] = _PATTERNS["NCName"]

#: integer-derived types: (lowest, highest) value, None for unbounded
_INTEGER_RANGES: dict[str, tuple[int | None, int | None]] = {
    "integer": (None, None),
    "nonPositiveInteger": (None, 0),
    "negativeInteger": (None, -1),
    "nonNegativeInteger": (0, None),
    "positiveInteger": (1, None),
    "long": (-2**63, 2**63 - 1),
    "int": (-2**31, 2**31 - 1),
    "short": (-2**15, 2**15 - 1),
    "byte": (-2**7, 2**7 - 1),
    "unsignedLong": (0, 2**64 - 1),
    "unsignedInt": (0, 2**32 - 1),
    "unsignedShort": (0, 2**16 - 1),
    "unsignedByte": (0, 2**8 - 1),
}
#: any lexical form is fine (strings and IRIs)
_ANY = {"string", "anyURI", "anySimpleType", "anyAtomicType"}


def _check_base64(value: str) -> bool:
    compact = value.replace(" ", "")
    if len(compact) % 4:
        return False
    try:
        base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _real_day(match: re.Match[str]) -> bool:
    """February 30th and April 31st match the pattern but are no dates."""
    year, month, day = int(match.group(1)), int(match.group(2)), int(match.group(3))
    leap_year = year if year > 0 else year + 1  # XSD 1.1: year 0000 is 1 BCE (a leap year)
    return day <= calendar.monthrange(2000 if calendar.isleap(abs(leap_year)) else 2001, month)[1]


def _month_day(match: re.Match[str]) -> bool:
    month, day = int(match.group(1)), int(match.group(2))
    return day <= calendar.monthrange(2000, month)[1]


_EXTRA: dict[str, Callable[[re.Match[str]], bool]] = {
    "date": _real_day, "dateTime": _real_day, "dateTimeStamp": _real_day, "gMonthDay": _month_day,
}


def lexical_problem(value: str, datatype: str) -> str | None:
    """Why ``value`` is not in the lexical space of ``datatype`` (an XSD IRI), or None when it is
    (or the datatype is not XSD: other vocabularies' datatypes are not checked)."""
    if not datatype.startswith(XSD):
        return None
    name = datatype[len(XSD):]
    if name in _ANY:
        return None
    if name in _INTEGER_RANGES:
        if not _PATTERNS["integer"].fullmatch(value):
            return f"not an xsd:{name}"
        low, high = _INTEGER_RANGES[name]
        number = int(value)
        if (low is not None and number < low) or (high is not None and number > high):
            return f"out of the range of xsd:{name}"
        return None
    if name == "token":
        return None if value == " ".join(value.split(" ")).strip(" ") and "  " not in value and not any(
            c in value for c in "\r\n\t") else "not an xsd:token"
    if name == "base64Binary":
        return None if _check_base64(value) else "not an xsd:base64Binary"
    pattern = _PATTERNS.get(name)
    if pattern is None:
        return f"xsd:{name} is not an XSD datatype usable in RDF"
    match = pattern.fullmatch(value)
    if match is None:
        return f"not an xsd:{name}"
    extra = _EXTRA.get(name)
    if extra is not None and not extra(match):
        return f"not an xsd:{name} (no such day)"
    return None


def line_of(text: str, value: str) -> int | None:
    """The first line of ``text`` where the literal ``value`` is written (quoted), for error messages."""
    for candidate in (f'"{value}"', f"'{value}'", value):
        position = text.find(candidate)
        if position >= 0:
            return text.count("\n", 0, position) + 1
    return None
