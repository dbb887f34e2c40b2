"""What a storage backend must do, and how doctypes become database names.

Both backends (CouchDB over HTTP, embedded SQLite) implement :class:`Backend`
with the same semantics, proved by one contract test suite:

- one database per doctype, named ``<prefix><doctype with "." -> "-">``;
- writes are per-document: a stale or missing ``_rev`` on an existing document
  is a ``conflict`` for that document only, never a failed batch;
- deleted documents read as absent; re-creating one is allowed;
- every read of many documents is bounded (keys, an id range, or a ``limit``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from ..errors import StoreError

Doc = dict[str, Any]

_DB_NAME = re.compile(r"^[a-z][a-z0-9_$()+/-]*$")
MAX_DB_NAME = 238
HIGH_KEY = "\ufff0"
"""Sorts after any id we write: the end of an id prefix range."""


def db_name(prefix: str, doctype: str) -> str:
    """The CouchDB database name of a doctype, as Cozy derives it; refuse illegal names."""
    name = prefix + doctype.replace(".", "-")
    if not _DB_NAME.fullmatch(name) or len(name) > MAX_DB_NAME:
        raise StoreError(
            f"doctype {doctype!r} with prefix {prefix!r} gives database name {name!r}, "
            "which CouchDB refuses (lower-case letter first, then a-z 0-9 _ $ ( ) + - /)"
        )
    return name


class Backend(Protocol):
    """Storage primitives; :class:`~framework.store.documents.DocumentStore` builds on them."""

    def get(self, doctype: str, doc_id: str) -> Doc | None: ...

    def get_many(self, doctype: str, ids: Sequence[str]) -> dict[str, Doc]:
        """The live documents among ``ids``, by id; absent and deleted ones are left out."""
        ...

    def get_revision(self, doctype: str, doc_id: str, rev: str) -> Doc | None:
        """An older revision's body (e.g. a just-deleted account), if still kept."""
        ...

    def id_range(self, doctype: str, start: str, end: str) -> Iterator[Doc]:
        """Live documents with ``start <= _id < end``, in id order, read page by page."""
        ...

    def bulk_write(self, doctype: str, docs: Sequence[Doc]) -> list[Doc]:
        """Write each doc; one result per doc: ``{"id", "rev"}`` or ``{"id", "error", "reason"}``."""
        ...

    def find(self, doctype: str, selector: Doc, limit: int, sort: Sequence[str] = ()) -> list[Doc]:
        """Mango query; ``limit`` is mandatory (pouchdb-server returns everything without one)."""
        ...

    def ensure_index(self, doctype: str, fields: Sequence[str]) -> None: ...

    def close(self) -> None: ...
