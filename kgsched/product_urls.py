"""Where products may be fetched from: an http(s) URL under a base URL the graph lists (stdlib only).

The graph lists product sources: the ``ks:baseUrl`` of registered ``ks:Storage`` and the
``ks:productEndpoint`` of registered runners. The service accepts a reported product location only
under the reporting runner's own sources, and a runner fetches a product only from under one of the
sources its claim lists — never ``file://``, never an arbitrary URL. Both sides use :func:`refusal`.

"Under" is decided on parsed URLs, not on string prefixes: same scheme, same host (case-insensitive),
same port (the scheme's default filled in), and the location's path inside the base's path taken as a
directory. A location with a user name or password, a fragment, a ``.``/``..`` segment or an encoded
slash, dot or backslash in its path is refused outright: those are how "under" is usually faked.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable

SCHEMES = ("http", "https")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_ENCODED_TRICKS = re.compile(r"%(2e|2f|5c)", re.IGNORECASE)


class NotAUrl(ValueError):
    """Not an http(s) URL this module accepts (the message says why)."""


def _parts(url: str, what: str) -> tuple[str, str, int, str]:
    if not isinstance(url, str) or not url or any(c.isspace() or ord(c) < 32 for c in url):
        raise NotAUrl(f"{what} {url!r} is not a URL")
    try:
        split = urllib.parse.urlsplit(url)
        port = split.port
    except ValueError as exc:
        raise NotAUrl(f"{what} {url!r} is not a URL: {exc}") from None
    scheme = split.scheme.lower()
    if scheme not in SCHEMES:
        raise NotAUrl(f"{what} {url!r} is not an http:// or https:// URL")
    if not split.hostname:
        raise NotAUrl(f"{what} {url!r} names no host")
    if split.username is not None or split.password is not None:
        raise NotAUrl(f"{what} {url!r} carries a user name or password")
    if split.fragment:
        raise NotAUrl(f"{what} {url!r} has a fragment")
    path = split.path or "/"
    if "\\" in path or _ENCODED_TRICKS.search(path):
        raise NotAUrl(f"{what} {url!r} has an encoded dot, slash or backslash in its path")
    if any(segment in (".", "..") for segment in path.split("/")):
        raise NotAUrl(f"{what} {url!r} has a '.' or '..' segment in its path")
    return scheme, split.hostname.lower(), port or _DEFAULT_PORTS[scheme], path


def is_under(location: str, base: str) -> bool:
    """Whether ``location`` is an acceptable URL inside ``base`` (False for anything malformed)."""
    try:
        scheme, host, port, path = _parts(location, "location")
        b_scheme, b_host, b_port, b_path = _parts(base, "base URL")
    except NotAUrl:
        return False
    if not b_path.endswith("/"):
        b_path += "/"
    return (scheme, host, port) == (b_scheme, b_host, b_port) and path.startswith(b_path) and path != b_path


def refusal(location: str, bases: Iterable[str]) -> str | None:
    """Why ``location`` may not be used as a product location given the allowed ``bases``; None if it may."""
    try:
        _parts(location, "location")
    except NotAUrl as exc:
        return str(exc)
    allowed = sorted(set(bases))
    if any(is_under(location, base) for base in allowed):
        return None
    listed = ", ".join(allowed) if allowed else "none"
    return f"location {location!r} is not under any registered product source (allowed: {listed})"


def storage_key(checksum: str, prefix: str = "") -> str:
    """Where a product's bytes live inside a storage: ``<prefix><hex[:2]>/<hex>`` (content-addressed, so
    the same bytes are stored once however often they are made). The same layout as a runner's
    ``--storage`` directory, so a shared directory is a product store any of its site's runners can use.
    Raises ValueError for anything but ``sha256:<64 hex digits>``."""
    digest = checksum.removeprefix("sha256:") if isinstance(checksum, str) else ""
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ValueError(f"not a sha256 checksum: {checksum!r}")
    return f"{prefix}{digest[:2]}/{digest}"


def s3_location(bucket: str, key: str) -> str:
    """The ``s3://bucket/key`` form the graph records for a replica in an S3-compatible storage."""
    return f"s3://{bucket}/{key}"
