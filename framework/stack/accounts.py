"""Accounts as cozy-stack serves them to a konnector, and OAuth refresh through the stack.

The stack encrypts an account's credentials itself (``model/account/credentials.go``):
``auth.password`` and the ``secret dob code answer access_token refresh_token appSecret
session`` entries of ``auth`` and of ``data.auth`` are stored encrypted and decrypted
only for a konnector's token (``web/data/accounts.go``). So no key of ours is needed:
fields go in ``auth`` as typed, the konnector's clear state in ``data``, and its secret
state (``ctx.secrets``: cached tokens) in ``data.auth.secret``, which the stack keeps
encrypted at rest. ``oauth`` is the stack's (tokens it obtained and refreshes).

``refresh_oauth`` asks the stack to refresh the account's OAuth tokens
(``POST /accounts/:accountType/:accountID/refresh``, ``docs/konnectors-workflow.md``
"Refreshing token"): the stack holds the application's secret and serialises
refreshes, so two jobs never race on one refresh token.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from ..accounts import Account, AccountStore
from ..errors import PermissionDenied, StoreError
from ..store import Doc, DocumentStore
from .client import StackClient, TokenExpired

SECRET_STATE = "secret"
"""Key of ``data.auth`` holding the konnector's secret state (one the stack encrypts)."""
_KNOWN = {"_id", "_rev", "_type", "account_type", "auth", "data", "oauth"}


class StackAccountStore(AccountStore):
    """:class:`~framework.accounts.AccountStore` for the stack's account documents."""

    def __init__(self, store: DocumentStore, client: StackClient) -> None:
        super().__init__(store, box=None)  # type: ignore[arg-type] - the stack encrypts, not us
        self.client = client

    def encode(self, account: Account, secret_fields: frozenset[str]) -> Doc:
        data: dict[str, Any] = dict(account.state)
        if account.secrets:
            data["auth"] = {SECRET_STATE: dict(account.secrets)}
        doc: Doc = {
            **account.extra,
            "_id": account.id,
            "account_type": account.slug,
            "auth": dict(account.auth),
            "data": data,
            "oauth": dict(account.oauth),
        }
        if account.rev:
            doc["_rev"] = account.rev
        return doc

    def decode(self, doc: Doc) -> Account:
        data = dict(doc.get("data") or {})
        sealed = data.pop("auth", None) or {}
        return Account(
            id=doc["_id"],
            slug=doc.get("account_type", ""),
            auth=dict(doc.get("auth") or {}),
            state=data,
            secrets=dict(sealed.get(SECRET_STATE) or {}),
            oauth=dict(doc.get("oauth") or {}),
            extra={k: v for k, v in doc.items() if k not in _KNOWN},
            rev=doc.get("_rev"),
        )

    def refresh_oauth(self, account: Account) -> dict[str, Any]:
        """New OAuth tokens from the stack; the account's ``oauth`` and revision follow. Returns ``oauth``."""
        path = f"accounts/{quote(account.slug, safe='')}/{quote(account.id, safe='')}/refresh"
        try:
            answer = self.client.call("POST", path, idempotent=False)  # the provider may rotate the refresh token
        except (StoreError, TokenExpired) as error:
            if isinstance(error, TokenExpired | PermissionDenied):
                raise
            message = f"cozy-stack could not refresh the OAuth tokens of account {account.id}: {error}"
            raise type(error)(message) from error  # StoreUnreachable keeps its code
        data = answer["data"]
        account.oauth = dict(data["attributes"].get("oauth") or {})
        account.rev = data["meta"]["rev"]
        self._remember(account)
        return account.oauth
