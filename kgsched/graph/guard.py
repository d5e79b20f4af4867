"""A cheap pre-check of user SPARQL, before it reaches Oxigraph: refuse what is known to crash or hang it.

Measured here: pyoxigraph 0.5.13 dies with SIGSEGV (no exception to catch) on groups nested 3,000
deep, subqueries 1,500 deep, ``FILTER(1+1+…)`` with 10,000 terms, chains of 10,000 ``OPTIONAL`` or
``UNION``, and 10,000-step property paths; an Oxigraph server aborts on 1,000-deep subqueries; and
``SERVICE`` makes the store fetch any URL (SSRF). The service does not rely on this check — user
queries run in worker processes that are killed at the deadline (kgsched.service.query_workers) —
but it answers the common attacks with a clear 400 instead of a dead worker.

The text is tokenised the way the SPARQL grammar does: ``\\uXXXX`` escapes are decoded first (as
Oxigraph does, so ``\\u0053ERVICE`` is ``SERVICE``), then strings (with their escapes, short and long
quotes), IRIs, comments, variables and prefixed names (whose local part may hold escapes such as
``ex:a\\'``) are single tokens, so nothing inside them counts as a bracket, an operator or a keyword.
Limits are far above what real queries use.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from kgsched.errors import KgschedError

MAX_QUERY_CHARS = 200_000
MAX_QUERY_TOKENS = 20_000
MAX_NESTING = 64
MAX_CHAIN = 100
MAX_PATH_STEPS = 64
MAX_EXPRESSION_OPERATORS = 256


class QueryRefused(KgschedError):
    status_code = 400
    error = "query refused"


@dataclass(frozen=True)
class Limits:
    """The pre-check's limits (configuration keys QUERY_MAX_* in kgsched.service.config)."""

    max_chars: int = MAX_QUERY_CHARS
    max_tokens: int = MAX_QUERY_TOKENS
    max_nesting: int = MAX_NESTING
    max_chain: int = MAX_CHAIN
    max_path_steps: int = MAX_PATH_STEPS
    max_expression_operators: int = MAX_EXPRESSION_OPERATORS
    service_allowlist: tuple[str, ...] = ()


_CODEPOINT = re.compile(r"\\u([0-9A-Fa-f]{4})|\\U([0-9A-Fa-f]{8})")
_NAME_START = re.compile(r"[A-Za-z_\u00C0-\U000EFFFF]")
_PN_CHAR = re.compile(r"[A-Za-z0-9_\-.\u00B7\u00C0-\U000EFFFF]")
_OPERATORS = {"||", "&&", "=", "!=", "<", ">", "<=", ">=", "+", "-", "*", "/", "!", "^", "|"}
_PATH_SEPARATORS = {"/", "|"}
_PATH_OPERANDS = {"^", "!", "(", ")", "*", "+", "?", "a"}
_CHAIN_KEYWORDS = {"OPTIONAL", "UNION", "MINUS"}
_OPEN, _CLOSE = "{([", "})]"
_LOCAL_ESCAPES = set("_~.-!$&'()*+,;=/?#@%")  # PN_LOCAL_ESC: anything else ends the name


def unescape_codepoints(text: str) -> str:
    """Decode ``\\uXXXX`` / ``\\UXXXXXXXX`` everywhere, as the SPARQL grammar (and Oxigraph) does first."""
    def decode(match: re.Match[str]) -> str:
        value = int(match.group(1) or match.group(2), 16)
        if value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
            raise QueryRefused(f"invalid escape {match.group(0)}")
        return chr(value)

    return _CODEPOINT.sub(decode, text) if "\\u" in text or "\\U" in text else text


@dataclass(frozen=True)
class Token:
    kind: str  # "iri", "string", "var", "pname", "bnode", "number", "word", "punct"
    text: str


def tokens(text: str) -> Iterable[Token]:
    """SPARQL tokens of an already unescaped query; comments and whitespace dropped."""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t\r\n":
            i += 1
        elif c == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end + 1
        elif c in "\"'":
            long_quote = text.startswith(c * 3, i)
            quote = c * 3 if long_quote else c
            j = i + len(quote)
            while j < n and not text.startswith(quote, j):
                if text[j] == "\\":
                    j += 1
                elif not long_quote and text[j] in "\r\n":
                    raise QueryRefused("a string is not closed on its line")
                j += 1
            if j >= n:
                raise QueryRefused("a string is not closed")
            yield Token("string", text[i:j + len(quote)])
            i = j + len(quote)
        elif c == "<":
            # an IRI has none of these before its '>'; otherwise '<' is an operator
            j = i + 1
            while j < n and text[j] not in '<>"{}|^`\\ \t\r\n':
                j += 1
            if j < n and text[j] == ">":
                yield Token("iri", text[i + 1:j])
                i = j + 1
            elif text.startswith("<=", i):
                yield Token("punct", "<=")
                i += 2
            else:
                yield Token("punct", "<")
                i += 1
        elif c in "?$" and i + 1 < n and (_NAME_START.match(text[i + 1]) or text[i + 1].isdigit()):
            j = i + 1
            while j < n and (_PN_CHAR.match(text[j]) and text[j] not in "-."):
                j += 1
            yield Token("var", text[i:j])
            i = j
        elif text.startswith("_:", i):
            j = _local_end(text, i + 2)
            yield Token("bnode", text[i:j])
            i = j
        elif c.isdigit() or (c == "." and i + 1 < n and text[i + 1].isdigit()):
            j = i
            while j < n and (text[j].isdigit() or text[j] in ".eE" or (text[j] in "+-" and text[j - 1] in "eE")):
                if text[j] == "." and not (j + 1 < n and text[j + 1].isdigit()):
                    break
                j += 1
            yield Token("number", text[i:j])
            i = j
        elif c == ":" or _NAME_START.match(c):
            j = i
            while j < n and _PN_CHAR.match(text[j]):
                j += 1
            while j > i and text[j - 1] == ".":  # a name does not end with '.'
                j -= 1
            if j < n and text[j] == ":":
                j = _local_end(text, j + 1)
                yield Token("pname", text[i:j])
            else:
                yield Token("word", text[i:j])
            i = j
        else:
            pair = text[i:i + 2]
            if pair in ("||", "&&", "!=", ">=", "^^"):
                yield Token("punct", pair)
                i += 2
            else:
                yield Token("punct", c)
                i += 1


def _local_end(text: str, j: int) -> int:
    """End of a prefixed name's local part: name characters, ':', '%HH' and backslash escapes."""
    n = len(text)
    while j < n:
        c = text[j]
        if c == "\\" and j + 1 < n and text[j + 1] in _LOCAL_ESCAPES:
            j += 2
        elif c == "%" and j + 2 < n:
            j += 3
        elif c == ":" or _PN_CHAR.match(c):
            j += 1
        else:
            break
    while text[j - 1] == "." and text[j - 2] != "\\":  # nor does a local name
        j -= 1
    return j


def check_query(text: str, limits: Limits | None = None, *, max_chars: int | None = None,
                max_nesting: int | None = None) -> str:
    """Return the query unchanged, or raise QueryRefused saying which limit it breaks."""
    limits = limits or Limits()
    if max_chars is not None:
        limits = replace(limits, max_chars=max_chars)
    if max_nesting is not None:
        limits = replace(limits, max_nesting=max_nesting)
    if len(text) > limits.max_chars:
        raise QueryRefused(f"query is {len(text):,} characters; the limit is {limits.max_chars:,}")
    _check_tokens(list(_limited(tokens(unescape_codepoints(text)), limits.max_tokens)), limits)
    return text


def _limited(stream: Iterable[Token], limit: int) -> Iterable[Token]:
    for count, token in enumerate(stream, 1):
        if count > limit:
            raise QueryRefused(f"query has more than {limit:,} tokens")
        yield token


def _check_tokens(items: list[Token], limits: Limits) -> None:
    depth = 0
    chains = [0]  # OPTIONAL/UNION/MINUS at each open group
    expression_ops = [0]  # operators inside the outermost parenthesis being read
    paren_depth = 0
    path_steps = 0
    for index, token in enumerate(items):
        text = token.text
        if token.kind == "punct" and text in _OPEN:
            depth += 1
            if depth > limits.max_nesting:
                raise QueryRefused(f"query nests more than {limits.max_nesting} levels deep")
            chains.append(0)
            if text == "(":
                paren_depth += 1
                if paren_depth == 1:
                    expression_ops[0] = 0
        elif token.kind == "punct" and text in _CLOSE:
            depth = max(0, depth - 1)
            if len(chains) > 1:
                chains.pop()
            if text == ")":
                paren_depth = max(0, paren_depth - 1)
        elif token.kind == "word":
            keyword = text.upper()
            if keyword in _CHAIN_KEYWORDS:
                chains[-1] += 1
                if chains[-1] > limits.max_chain:
                    raise QueryRefused(f"more than {limits.max_chain} OPTIONAL/UNION/MINUS in one group")
            elif keyword == "SERVICE":
                _check_service(items, index, limits)
        if token.kind == "punct" and text in _OPERATORS and paren_depth > 0:
            expression_ops[0] += 1
            if expression_ops[0] > limits.max_expression_operators:
                raise QueryRefused(
                    f"an expression has more than {limits.max_expression_operators} operators")
        # property paths: separators between path elements, counted along one unbroken run
        if token.kind == "punct" and text in _PATH_SEPARATORS:
            path_steps += 1
            if path_steps > limits.max_path_steps:
                raise QueryRefused(f"a property path has more than {limits.max_path_steps} steps")
        elif not (token.kind in ("iri", "pname") or (token.kind == "punct" and text in _PATH_OPERANDS)
                  or (token.kind == "word" and text == "a")):
            path_steps = 0


def _check_service(items: list[Token], index: int, limits: Limits) -> None:
    following = items[index + 1:index + 3]
    if following and following[0].kind == "word" and following[0].text.upper() == "SILENT":
        following = following[1:]
    target = following[0] if following else None
    if target is None or target.kind != "iri":
        raise QueryRefused("SERVICE needs a full endpoint IRI in <…> (variables and prefixed names are refused)")
    if target.text not in limits.service_allowlist:
        raise QueryRefused(f"SERVICE <{target.text}> is not allowed: federated queries may only call the "
                           "endpoints the configuration's SERVICE_ALLOWLIST names")


def nesting_depth(text: str) -> int:
    """Deepest nesting of { ( [ brackets outside strings, IRIs and comments."""
    depth = deepest = 0
    for token in tokens(unescape_codepoints(text)):
        if token.kind == "punct" and token.text in _OPEN:
            depth += 1
            deepest = max(deepest, depth)
        elif token.kind == "punct" and token.text in _CLOSE:
            depth = max(0, depth - 1)
    return deepest
