"""PG&E's notification: a BatchList of resource URIs to fetch, checked before anything is kept.

The body is ``<BatchList xmlns="http://naesb.org/espi"><resources>URI</resources>…``, sometimes
wrapped in an Atom feed; the ``resources`` elements are read in whatever namespace (or none) the
sender used. It is parsed with the safe XML parser (no DTD, size limit), and every
URI must lie under the configured PG&E base URL: a notification naming anything else is
refused whole, so the receiver can never be made to fetch elsewhere (SSRF).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from framework.errors import KonnectorError
from framework.safexml import UnsafeXml, parse

ESPI = "{http://naesb.org/espi}"
MAX_BYTES = 1024 * 1024


class RefusedNotification(KonnectorError):
    """A notification that must not be acted on."""


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def under(uri: str, base: str) -> bool:
    """Whether ``uri`` lies under ``base`` (same scheme, host and port; path below base's)."""
    try:
        parts, allowed = urlsplit(uri), urlsplit(base)
        same = (parts.scheme, parts.hostname, parts.port) == (allowed.scheme, allowed.hostname, allowed.port)
    except ValueError:
        return False
    return same and not parts.username and parts.path.startswith(allowed.path)


def resources(body: bytes, allowed_base: str) -> list[str]:
    """The resource URIs of a BatchList; refuse the whole list if one points outside ``allowed_base``."""
    try:
        root = parse(body, name="BatchList", max_bytes=MAX_BYTES)
    except UnsafeXml as exc:
        raise RefusedNotification(f"notification refused: {exc.message}") from None
    uris = [(e.text or "").strip() for e in root.iter() if isinstance(e.tag, str) and _local(e.tag) == "resources"]
    if not uris:
        raise RefusedNotification("notification refused: no resources in the BatchList")
    for uri in uris:
        try:
            parts = urlsplit(uri)
            parts.port  # noqa: B018 - parsing the port refuses a malformed one
        except ValueError as error:
            problem = f"resource {uri[:200]!r} is not a valid URI ({error})"
            raise RefusedNotification(f"notification refused: {problem}") from None
        if not under(uri, allowed_base):
            raise RefusedNotification(f"notification refused: resource {uri!r} is not under {allowed_base}")
    return uris
