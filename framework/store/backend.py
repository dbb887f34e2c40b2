"""What a storage backend must do, and how doctypes become database names.

Both backends (CouchDB over HTTP, embedded SQLite) implement :class:`Backend`
with the same semantics, proved by one contract test suite:

- one database per doctype, named ``<prefix><doctype with "." -> "-">``;
- writes are per-document: a stale or missing ``_rev`` on an existing document
  is a ``conflict`` for that document only, never a failed batch;
- bulk-write results are matched to documents by ``_id``, never by position
  (pouchdb-server on disk answers out of order): see :func:`in_request_order`;
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


def in_request_order(doctype: str, docs: Sequence[Doc], results: Sequence[Doc]) -> list[Doc]:
    """The bulk-write ``results`` matched to ``docs`` by ``_id``, in the order of ``docs``.

    A server may answer a ``_bulk_docs`` in any order (pouchdb-server on disk does), so a
    positional match would give one document another's revision. Every doc must carry an
    ``_id``, ids must be distinct, and each must get exactly one result: anything else is a
    :class:`StoreError`, never a silent mismatch.
    """
    wanted: dict[str, int] = {}
    for index, doc in enumerate(docs):
        doc_id = doc.get("_id")
        if not isinstance(doc_id, str) or not doc_id:
            raise StoreError(f"{doctype}: a document of a bulk write has no _id, so its result cannot be matched")
        if doc_id in wanted:
            raise StoreError(f"{doctype}: document {doc_id!r} appears twice in one bulk write")
        wanted[doc_id] = index
    ordered: list[Doc | None] = [None] * len(docs)
    for result in results:
        index = wanted.get(result.get("id"))  # type: ignore[arg-type]
        if index is None:
            raise StoreError(f"{doctype}: the server answered for {result.get('id')!r}, which was not written")
        if ordered[index] is not None:
            raise StoreError(f"{doctype}: the server answered twice for {result.get('id')!r}")
        ordered[index] = result
    missing = [docs[i]["_id"] for i, result in enumerate(ordered) if result is None]
    if missing:
        raise StoreError(f"{doctype}: the server gave no result for {len(missing)} document(s), e.g. {missing[0]!r}")
    return ordered  # type: ignore[return-value]


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
        """Write each doc; one result per doc, in the order of ``docs`` (matched by id, see
        :func:`in_request_order`): ``{"id", "rev"}`` or ``{"id", "error", "reason"}``."""
        ...

    def find(self, doctype: str, selector: Doc, limit: int, sort: Sequence[str] = ()) -> list[Doc]:
        """Mango query; ``limit`` is mandatory (pouchdb-server returns everything without one)."""
        ...

    def ensure_index(self, doctype: str, fields: Sequence[str]) -> None: ...

    def close(self) -> None: ...
