"""HTTP access to one cozy-stack instance with the job's token.

Errors become the job's errors: ``403`` is :class:`~framework.errors.PermissionDenied`
naming the doctype and the verb (the stack enforces the installed manifest's
permissions, ``web/middlewares/permissions.go``); an expired token (``400 Expired
token``, ``WWW-Authenticate: Bearer error="invalid_token"``) or a refused one (``401``)
is :class:`TokenExpired`, a partial sync: the stack will start the next job with a new
token, and that job resumes from the saved bookmark.

Transport faults are retried as for CouchDB (``framework/store/couchdb.py``'s
:func:`~framework.store.couchdb.send`: bounded backoff, then
:class:`~framework.errors.StoreUnreachable`); a request with an effect that a second
sending would repeat (``POST`` of an account without id, an OAuth refresh) passes
``idempotent=False`` and is sent again only if it never reached the stack.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import requests

from ..errors import OAuthOutdated, PartialSync, PermissionDenied, StoreError
from ..store.couchdb import send
from .credentials import Credentials

TIMEOUT = (5, 60)
_VERBS = {"_all_docs": "GET", "_find": "GET", "_index": "GET", "_bulk_docs": "POST"}


class TokenExpired(PartialSync):
    """The stack no longer accepts this job's token."""


class StackClient:
    """Requests to ``COZY_URL`` with ``Authorization: Bearer <COZY_CREDENTIALS>``."""

    def __init__(self, url: str, credentials: Credentials, timeout: tuple[float, float] = TIMEOUT) -> None:
        self.base = url.rstrip("/") + "/"
        self.credentials = credentials
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Bearer {credentials.token}", "Accept": "application/json"})
        self.timeout = timeout

    def request(self, method: str, path: str, *, ok: tuple[int, ...] = (), **kwargs: Any) -> Any:
        """A data API request (``/data/<path>``); the decoded JSON, or None for statuses in ``ok``."""
        return self.call(method, f"data/{path}", ok=ok, **kwargs)

    def send(self, method: str, path: str, *, ok: tuple[int, ...] = (), **kwargs: Any) -> tuple[Any, int]:
        """``(decoded JSON or None, tries)`` of a data API request (the backend's bulk writes need both)."""
        return self._send(method, f"data/{path}", ok=ok, **kwargs)

    def call(self, method: str, path: str, *, ok: tuple[int, ...] = (), **kwargs: Any) -> Any:
        return self._send(method, path, ok=ok, **kwargs)[0]

    def _send(self, method: str, path: str, *, ok: tuple[int, ...] = (), **kwargs: Any) -> tuple[Any, int]:
        server = f"cozy-stack at {self.base}"
        response, tries = send(self.session, method, self.base + path, server=server, timeout=self.timeout, **kwargs)
        if response.status_code in ok:
            return None, tries
        if response.status_code >= 400:
            raise self._error(method, path, response)
        return response.json(), tries

    def _error(self, method: str, path: str, response: requests.Response) -> Exception:
        status, text = response.status_code, response.text[:300]
        route = path.split("?")[0]
        if status == 401 and "oauth_refresh_invalid_token" in text:
            return OAuthOutdated(
                "the provider refused the account's refresh token (cozy-stack: oauth_refresh_invalid_token): "
                "reconnect the account"
            )
        if status == 401 or (status == 400 and "invalid_token" in response.headers.get("WWW-Authenticate", "")):
            return TokenExpired(
                f"cozy-stack no longer accepts this job's token ({method} /{route}: {status} {text}); "
                "what was saved is kept and the next run resumes from it"
            )
        if status == 403 and route.startswith("data/"):
            doctype, verb = _doctype_and_verb(method, route)
            return PermissionDenied(
                f"cozy-stack refused to let konnector '{self.credentials.subject}' {verb} doctype {doctype!r}: "
                f"the manifest installed on the stack does not grant it ({text})"
            )
        if status == 403:
            return PermissionDenied(f"cozy-stack refused {method} /{route}: {text}")
        return StoreError(f"cozy-stack {method} /{route} failed: {status} {text}")

    def close(self) -> None:
        self.session.close()


def _doctype_and_verb(method: str, route: str) -> tuple[str, str]:
    """The doctype and permission verb a data API request needs (as ``web/data`` checks them)."""
    parts = route.split("/")
    doctype = unquote(parts[1]) if len(parts) > 1 else "?"
    last = parts[2] if len(parts) > 2 else ""
    verb = _VERBS.get(last, "POST" if method == "POST" else method)
    return doctype, verb
