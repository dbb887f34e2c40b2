"""The only handles a konnector gets to the store and to accounts, with permissions enforced.

A konnector's :class:`~framework.context.Context` holds a :class:`StoreHandle` and an
:class:`AccountsHandle`. Neither keeps what it forwards to in an attribute, a slot or a
closure: the scoped :class:`~framework.store.DocumentStore` (whose ``backend`` is
unrestricted) and the :class:`~framework.accounts.AccountStore` (whose key decrypts every
account) sit in a private table of this module keyed by the handle. So walking a context's
attributes, closures, bound methods or containers never reaches an unrestricted store, a
backend, the key, or another account; an attribute a handle does not offer (``backend``
aside, which is itself guarded) raises :class:`Unreachable`, a ``PermissionDenied``.

What this does not contain: code of the same process that imports framework internals,
walks the garbage collector or stack frames, or opens the data files itself. That takes a
process boundary, which a platform gives each job (cozy-stack runs a konnector in its own
process with a token scoped to its manifest); this module makes the in-process API honest.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from .accounts import DOCTYPE as ACCOUNTS
from .accounts import Account, AccountStore
from .errors import PermissionDenied
from .store import Doc, DocumentStore, Writer
from .store.backend import HIGH_KEY
from .store.documents import ALL_VERBS, READ, Merge, ShouldUpdate, fields_changed, ours_win
from .store.ids import check_id

_TARGETS: weakref.WeakKeyDictionary[object, Any] = weakref.WeakKeyDictionary()


class Unreachable(PermissionDenied, AttributeError):
    """An attribute a konnector's handle does not offer (``hasattr`` sees it as absent)."""


class _Handle:
    __slots__ = ("__weakref__",)

    def __getattr__(self, name: str) -> Any:
        raise Unreachable(f"a konnector's {type(self).__name__} offers no {name!r}: only its documented methods")

    def __setattr__(self, name: str, value: Any) -> None:
        raise Unreachable(f"a konnector's {type(self).__name__} cannot be changed")

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise Unreachable(f"a konnector's {type(self).__name__} cannot be copied or pickled")


def _refuse_accounts(doctype: str) -> None:
    if doctype == ACCOUNTS:
        raise PermissionDenied(f"a konnector may not touch {ACCOUNTS}: its own account is ctx.account")


class StoreHandle(_Handle):
    """A konnector's store: the :class:`DocumentStore` API on the doctypes its manifest grants."""

    __slots__ = ()

    def _store(self, doctype: str) -> DocumentStore:
        _refuse_accounts(doctype)
        return _TARGETS[self]

    def scoped(self, permissions: dict[str, frozenset[str]], writer: object = None) -> StoreHandle:
        """A handle with narrower grants (a dry run's read-only store): never wider than this one's,
        and always writing as this konnector (``writer`` is ignored)."""
        store: DocumentStore = _TARGETS[self]
        granted = store.permissions or {}
        narrowed = {}
        for doctype, verbs in permissions.items():
            mine = ALL_VERBS if "ALL" in granted.get(doctype, ()) else granted.get(doctype, frozenset())
            wanted = ALL_VERBS if "ALL" in verbs else frozenset(verbs)
            narrowed[doctype] = mine & wanted
        return store_handle(store.scoped(narrowed, store.writer))

    @property
    def writer(self) -> Writer:
        return _TARGETS[self].writer

    @property
    def write_slice(self) -> int | None:
        """Documents one save writes at once on this backend (its bulk batch, times the batches it
        keeps in flight): the unit the store path checks the deadline between. ``None`` where a
        konnector's store is one transaction (the embedded store): stopping inside would undo it."""
        store: DocumentStore = _TARGETS[self]
        if getattr(store.backend, "transaction", None) is not None:
            return None
        return store.write_batch * getattr(store.backend, "writes_in_flight", 1)

    @property
    def backend(self) -> BackendHandle:
        """The backend primitives, under the same permissions (never the raw backend)."""
        guarded = BackendHandle()
        _TARGETS[guarded] = _TARGETS[self]
        return guarded

    def get(self, doctype: str, doc_id: str) -> Doc | None:
        return self._store(doctype).get(doctype, doc_id)

    def get_many(self, doctype: str, ids: Sequence[str]) -> dict[str, Doc]:
        return self._store(doctype).get_many(doctype, ids)

    def get_revision(self, doctype: str, doc_id: str, rev: str) -> Doc | None:
        return self._store(doctype).get_revision(doctype, doc_id, rev)

    def id_range(self, doctype: str, start: str = "", end: str = HIGH_KEY) -> Iterator[Doc]:
        return self._store(doctype).id_range(doctype, start, end)

    def with_prefix(self, doctype: str, prefix: str) -> Iterator[Doc]:
        return self._store(doctype).with_prefix(doctype, prefix)

    def find(self, doctype: str, selector: Doc, *, limit: int, sort: Sequence[str] = ()) -> list[Doc]:
        return self._store(doctype).find(doctype, selector, limit=limit, sort=sort)

    def ensure_index(self, doctype: str, fields: Sequence[str]) -> None:
        self._store(doctype).ensure_index(doctype, fields)

    def hydrate_and_filter(
        self, doctype: str, entries: Iterable[Doc], keys: Sequence[str], should_update: ShouldUpdate = fields_changed
    ) -> list[Doc]:
        return self._store(doctype).hydrate_and_filter(doctype, entries, keys, should_update)

    def save(self, doctype: str, docs: Iterable[Doc], merge: Merge = ours_win) -> list[Doc]:
        return self._store(doctype).save(doctype, docs, merge)

    add_data = save

    def transaction(self) -> AbstractContextManager[None]:
        """Writes made inside commit together where the backend can (the embedded store)."""
        return _TARGETS[self].transaction()

    def update_or_create(
        self, doctype: str, entries: Iterable[Doc], keys: Sequence[str], merge: Merge = ours_win
    ) -> list[Doc]:
        return self._store(doctype).update_or_create(doctype, entries, keys, merge)

    def delete(self, doctype: str, docs: Iterable[Doc]) -> None:
        self._store(doctype).delete(doctype, docs)


class BackendHandle(_Handle):
    """``ctx.store.backend``: the :class:`~framework.store.Backend` calls, each checked like the store's."""

    __slots__ = ()

    def _backend(self, doctype: str, verb: str) -> Any:
        _refuse_accounts(doctype)
        store: DocumentStore = _TARGETS[self]
        store._check(doctype, verb)
        return store.backend

    def get(self, doctype: str, doc_id: str) -> Doc | None:
        return self._backend(doctype, READ).get(doctype, check_id(doctype, doc_id))

    def get_many(self, doctype: str, ids: Sequence[str]) -> dict[str, Doc]:
        return self._backend(doctype, READ).get_many(doctype, [check_id(doctype, i) for i in ids])

    def get_revision(self, doctype: str, doc_id: str, rev: str) -> Doc | None:
        return self._backend(doctype, READ).get_revision(doctype, check_id(doctype, doc_id), rev)

    def id_range(self, doctype: str, start: str, end: str) -> Iterator[Doc]:
        return self._backend(doctype, READ).id_range(doctype, start, end)

    def bulk_write(self, doctype: str, docs: Sequence[Doc]) -> list[Doc]:
        verb = "DELETE" if any(doc.get("_deleted") for doc in docs) else "PUT"
        backend = self._backend(doctype, verb)
        for doc in docs:
            check_id(doctype, doc.get("_id"))
        return backend.bulk_write(doctype, docs)

    def find(self, doctype: str, selector: Doc, limit: int, sort: Sequence[str] = ()) -> list[Doc]:
        return self._backend(doctype, READ).find(doctype, selector, limit, sort)

    def ensure_index(self, doctype: str, fields: Sequence[str]) -> None:
        self._backend(doctype, "PUT").ensure_index(doctype, fields)


class AccountsHandle(_Handle):
    """``ctx.accounts``: the job's own account, read again or saved; no other account, no key."""

    __slots__ = ()

    def _accounts(self, account_id: str) -> AccountStore:
        store, own = _TARGETS[self]
        if account_id != own:
            raise PermissionDenied(f"a konnector may read and write only its own account, not {account_id!r}")
        return store

    def load(self, account_id: str, rev: str | None = None) -> Account:
        return self._accounts(account_id).load(account_id, rev)

    def save(self, account: Account, secret_fields: frozenset[str]) -> None:
        self._accounts(account.id).save(account, secret_fields)

    def delete(self, account: Account) -> None:
        self._accounts(account.id).delete(account)

    @property
    def refreshes_oauth(self) -> bool:
        """Whether the platform refreshes OAuth tokens itself (cozy-stack holds the application's secret)."""
        store, _ = _TARGETS[self]
        return callable(getattr(store, "refresh_oauth", None))

    def refresh_oauth(self, account: Account) -> dict[str, Any]:
        """Have the platform refresh the job's own account's tokens; returns the new ``oauth``."""
        store = self._accounts(account.id)
        if not self.refreshes_oauth:
            raise PermissionDenied("this platform does not refresh OAuth tokens: the konnector must")
        return store.refresh_oauth(account)


def store_handle(scoped: DocumentStore) -> StoreHandle:
    """The handle of a store already scoped to a konnector's permissions."""
    if scoped.permissions is None:
        raise PermissionDenied("a konnector's store must be scoped to its manifest's permissions")
    handle = StoreHandle()
    _TARGETS[handle] = scoped
    return handle


def accounts_handle(accounts: AccountStore, account_id: str) -> AccountsHandle:
    """The handle through which a job reads and saves its own account ``account_id``, and only it."""
    handle = AccountsHandle()
    _TARGETS[handle] = (accounts, account_id)
    return handle
