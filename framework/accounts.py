"""Accounts as Cozy keeps them: ``io.cozy.accounts`` documents.

``auth`` holds the fields the user typed, ``data`` the konnector's persisted
state, ``oauth`` the tokens a platform obtained. Secret values (password-type
fields, names that say secret/token/key, and the konnector's ``secrets`` state)
are stored only inside ``secrets_encrypted``, a Fernet token; the rest stays
readable so a platform UI can show it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .crypto import SecretBox
from .errors import ConfigurationError
from .redact import is_secret_name
from .store import Doc, DocumentStore

DOCTYPE = "io.cozy.accounts"
ENCRYPTED = "secrets_encrypted"


@dataclass
class Account:
    id: str
    slug: str
    auth: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    """Konnector state kept in clear (bookmarks, ids); persisted in ``data``."""
    secrets: dict[str, Any] = field(default_factory=dict)
    """Konnector state kept encrypted (cached tokens)."""
    oauth: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    """Other fields of the document, kept as they are (``oauth_callback_results``,
    ``cozyMetadata``…)."""
    rev: str | None = None

    def secret_values(self, secret_fields: frozenset[str]) -> list[Any]:
        """Every value that must never be printed."""
        values = [v for k, v in self.auth.items() if k in secret_fields or is_secret_name(k)]
        values += [v for k, v in self.oauth.items() if is_secret_name(k)]
        values.append(self.secrets)
        return values


def _content(account: Account) -> str:
    fields = (account.auth, account.state, account.secrets, account.oauth, account.extra)
    return json.dumps(fields, sort_keys=True, default=str)


def _split(values: dict[str, Any], secret_names: frozenset[str]) -> tuple[dict, dict]:
    clear, secret = {}, {}
    for key, value in values.items():
        target = secret if key in secret_names or is_secret_name(key) else clear
        target[key] = value
    return clear, secret


def to_document(account: Account, box: SecretBox, secret_fields: frozenset[str]) -> Doc:
    auth, auth_secrets = _split(account.auth, secret_fields)
    oauth, oauth_secrets = _split(account.oauth, frozenset())
    sealed = {"auth": auth_secrets, "oauth": oauth_secrets, "data": account.secrets}
    doc: Doc = {
        **account.extra,
        "_id": account.id,
        "account_type": account.slug,
        "auth": auth,
        "data": account.state,
        "oauth": oauth,
        ENCRYPTED: box.seal(sealed),
    }
    if account.rev:
        doc["_rev"] = account.rev
    return doc


def from_document(doc: Doc, box: SecretBox) -> Account:
    """An account from its document; secrets written in clear by a platform are accepted."""
    known = {"_id", "_rev", "account_type", "auth", "data", "oauth", ENCRYPTED}
    sealed = box.open(doc[ENCRYPTED]) if doc.get(ENCRYPTED) else {}
    if not isinstance(sealed, dict):
        raise ConfigurationError(f"account {doc['_id']}: {ENCRYPTED} is not a sealed object")
    return Account(
        id=doc["_id"],
        slug=doc.get("account_type", ""),
        auth={**doc.get("auth", {}), **sealed.get("auth", {})},
        state=dict(doc.get("data") or {}),
        secrets=dict(sealed.get("data", {})),
        oauth={**doc.get("oauth", {}), **sealed.get("oauth", {})},
        extra={k: v for k, v in doc.items() if k not in known},
        rev=doc.get("_rev"),
    )


class AccountStore:
    """Reads and writes accounts, encrypting secrets; state writes never lose a key."""

    def __init__(self, store: DocumentStore, box: SecretBox) -> None:
        self.store = store
        self.box = box
        self._last_saved: dict[str, tuple[str | None, str]] = {}
        """Account id -> (rev, content) as last read or written: unchanged accounts are not rewritten."""

    def load(self, account_id: str, rev: str | None = None) -> Account:
        if rev:
            doc = self.store.get_revision(DOCTYPE, account_id, rev)
        else:
            doc = self.store.get(DOCTYPE, account_id)
        if doc is None:
            raise ConfigurationError(f"account {account_id!r} not found in {DOCTYPE}")
        return self._remember(self.decode(doc))

    def find(self, account_id: str) -> Account | None:
        doc = self.store.get(DOCTYPE, account_id)
        return self._remember(self.decode(doc)) if doc else None

    def save(self, account: Account, secret_fields: frozenset[str]) -> None:
        """Write the account if it changed; on conflict, merge our state keys over the stored ones."""
        if self._last_saved.get(account.id) == (account.rev, _content(account)):
            return
        doc = self.encode(account, secret_fields)
        saved = self.store.save(DOCTYPE, [doc], merge=self._merge_state)
        account.rev = saved[0]["_rev"]
        self._remember(account)

    def encode(self, account: Account, secret_fields: frozenset[str]) -> Doc:
        """The account's document (secrets sealed); a platform storing accounts its own way overrides it."""
        return to_document(account, self.box, secret_fields)

    def decode(self, doc: Doc) -> Account:
        return from_document(doc, self.box)

    def _remember(self, account: Account) -> Account:
        self._last_saved[account.id] = (account.rev, _content(account))
        return account

    @staticmethod
    def _merge_state(stored: Doc, wanted: Doc) -> Doc:
        data = {**(stored.get("data") or {}), **(wanted.get("data") or {})}
        return {**stored, **wanted, "data": data, "_rev": stored["_rev"]}

    def delete(self, account: Account) -> None:
        doc = self.store.get(DOCTYPE, account.id)
        if doc is not None:
            self.store.delete(DOCTYPE, [doc])
