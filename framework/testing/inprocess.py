"""Run a konnector in-process, on a real store, without the CLI: for tests and benchmarks."""

from __future__ import annotations

import time
import weakref
from typing import Any

from framework.accounts import Account, AccountStore
from framework.context import Context
from framework.crypto import SecretBox, new_key
from framework.handles import accounts_handle, store_handle
from framework.logs import get_logger
from framework.manifest import Manifest
from framework.redact import Redactor
from framework.runner import permissions_of
from framework.store import Backend, DocumentStore, Writer

_KEYS: weakref.WeakKeyDictionary[Backend, str] = weakref.WeakKeyDictionary()
"""One secret key per backend, as one installation has one: contexts made on the same store can
read each other's sealed secrets (an account saved again is merged, so it must be decrypted)."""


def make_context(
    backend: Backend,
    manifest: Manifest,
    fields: dict[str, Any],
    *,
    account_id: str = "test-account",
    parameters: dict[str, Any] | None = None,
    time_limit: float | None = None,
) -> Context:
    """A context as the runner builds it: validated fields, saved account, scoped store."""
    writer = Writer(app=manifest.slug, version=manifest.version, source_account=account_id)
    root = DocumentStore(backend, writer)
    accounts = AccountStore(root, SecretBox(_KEYS.setdefault(backend, new_key())))
    account = Account(account_id, manifest.slug, auth=dict(fields))
    accounts.save(account, manifest.secret_fields())
    redactor = Redactor()
    redactor.add(account.secret_values(manifest.secret_fields()))
    return Context(
        manifest=manifest,
        account=account,
        fields=manifest.validate_fields(account.auth),
        parameters=parameters or {},
        store=store_handle(root.scoped(permissions_of(manifest), writer)),
        accounts=accounts_handle(accounts, account_id),
        log=get_logger(manifest.slug),
        redactor=redactor,
        deadline=None if time_limit is None else time.monotonic() + time_limit,
    )
