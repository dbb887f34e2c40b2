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


_MISSING = object()
PLATFORM_WINS = ("auth", "oauth", "secrets", "extra")
"""Parts of an account where, when the job and the platform both changed a key, the platform's
value is kept (a new password, a refreshed token, a renamed account); in ``state`` the job's wins."""
PARTS = ("auth", "state", "secrets", "oauth", "extra")


def _snapshot(account: Account) -> dict[str, dict[str, Any]]:
    """A deep copy of the account's parts, as a base for a three-way merge."""
    return json.loads(json.dumps({part: dict(getattr(account, part)) for part in PARTS}, default=str))


def _merge_part(base: dict, ours: dict, theirs: dict, ours_win: bool) -> dict:
    """Three-way merge of one part: keys the job did not change keep the stored value."""
    merged = dict(theirs)
    for key in set(base) | set(ours):
        mine = ours.get(key, _MISSING)
        if mine == base.get(key, _MISSING):
            continue
        if not ours_win and theirs.get(key, _MISSING) != base.get(key, _MISSING):
            continue
        if mine is _MISSING:
            merged.pop(key, None)
        else:
            merged[key] = mine
    return merged


def merge_accounts(base: dict[str, dict[str, Any]], ours: Account, theirs: Account) -> Account:
    """The latest stored account (``theirs``) with the changes the job made since ``base``."""
    merged = {
        part: _merge_part(base[part], getattr(ours, part), getattr(theirs, part), part not in PLATFORM_WINS)
        for part in PARTS
    }
    return Account(ours.id, theirs.slug or ours.slug, rev=theirs.rev, **merged)


class AccountStore:
    """Reads and writes accounts, encrypting secrets.

    A save is a merge on the latest revision: when the platform changed the account during the
    job (a new password, refreshed tokens), the stored document is read again and only the
    keys the job changed since it read the account are written over it; where both changed a
    key of ``auth``, ``oauth``, the secrets or other fields, the platform's value wins.
    """

    def __init__(self, store: DocumentStore, box: SecretBox) -> None:
        self.store = store
        self.box = box
        self._last_saved: dict[str, tuple[str | None, str]] = {}
        """Account id -> (rev, content) as last read or written: unchanged accounts are not rewritten."""
        self._base: dict[str, dict[str, dict[str, Any]]] = {}
        """Account id -> its parts as last read or written: the base of the merge on conflict."""

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

    def find_without_secrets(self, account_id: str) -> Account | None:
        """The account with its sealed secrets left out (they were sealed with a lost key)."""
        doc = self.store.get(DOCTYPE, account_id)
        if not doc:
            return None
        return self._remember(self.decode({k: v for k, v in doc.items() if k != ENCRYPTED}))

    def save(self, account: Account, secret_fields: frozenset[str]) -> None:
        """Write the account if it changed; on conflict, merge the job's changes into the stored one.

        After a merge, ``account`` holds the merged values, so the job goes on with the
        platform's edits and a later save does not revert them.
        """
        if self._last_saved.get(account.id) == (account.rev, _content(account)):
            return
        base = self._base.get(account.id) or {part: {} for part in PARTS}
        merged: list[Account] = []

        def merge(stored: Doc, wanted: Doc) -> Doc:
            latest = merge_accounts(base, account, self.decode(stored))
            merged[:] = [latest]
            return {**self.encode(latest, secret_fields), "_rev": stored["_rev"]}

        saved = self.store.save(DOCTYPE, [self.encode(account, secret_fields)], merge=merge)
        if merged:
            _adopt(account, merged[-1])
        account.rev = saved[0]["_rev"]
        self._remember(account)

    def encode(self, account: Account, secret_fields: frozenset[str]) -> Doc:
        """The account's document (secrets sealed); a platform storing accounts its own way overrides it."""
        return to_document(account, self.box, secret_fields)

    def decode(self, doc: Doc) -> Account:
        return from_document(doc, self.box)

    def _remember(self, account: Account) -> Account:
        self._last_saved[account.id] = (account.rev, _content(account))
        self._base[account.id] = _snapshot(account)
        return account

    def delete(self, account: Account) -> None:
        doc = self.store.get(DOCTYPE, account.id)
        if doc is not None:
            self.store.delete(DOCTYPE, [doc])


def _adopt(account: Account, merged: Account) -> None:
    """Give ``account`` the merged values in place (``secrets`` may be a redacting dict: kept as is)."""
    for part in PARTS:
        target = getattr(account, part)
        target.clear()
        target.update(getattr(merged, part))
