"""Running under cozy-stack: its data API as the store, its accounts, its token as a deadline.

``open_stack(COZY_URL, COZY_CREDENTIALS)`` gives a :class:`Stack`: the
:class:`StackBackend` (every store operation through ``/data``), the
:class:`StackAccountStore` (accounts as the stack serves them, OAuth refresh through
the stack) and the token's expiry as a job deadline. ``payload`` reads ``COZY_PAYLOAD``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..store import DocumentStore
from .accounts import StackAccountStore
from .backend import StackBackend
from .client import StackClient, TokenExpired
from .credentials import Credentials, parse_credentials

TOKEN_MARGIN = 60.0
"""Seconds kept before the token expires to store what was fetched and save the bookmark."""


@dataclass
class Stack:
    client: StackClient
    backend: StackBackend

    @property
    def credentials(self) -> Credentials:
        return self.client.credentials

    def accounts(self, store: DocumentStore) -> StackAccountStore:
        return StackAccountStore(store, self.client)

    def deadline(self, deadline: float | None) -> float | None:
        """The job's ``time.monotonic()`` deadline, brought forward to before the token expires.

        The stack gives no new token during a job: the job stops with a partial sync
        while its token still works, so it can save what it fetched.
        """
        expires = self.credentials.expires_at
        if expires is None:
            return deadline
        left = expires - time.time()
        by_token = time.monotonic() + left - min(TOKEN_MARGIN, max(left, 0.0))
        return by_token if deadline is None else min(deadline, by_token)


def open_stack(url: str, credentials: str) -> Stack:
    client = StackClient(url, parse_credentials(credentials))
    return Stack(client, StackBackend(client))


__all__ = ["Credentials", "Stack", "StackAccountStore", "StackBackend", "StackClient", "TokenExpired", "open_stack"]
