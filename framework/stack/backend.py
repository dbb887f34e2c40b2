"""The cozy-stack backend: the :class:`~framework.store.backend.Backend` primitives over the stack's data API.

cozy-stack never gives a konnector CouchDB; it proxies a CouchDB subset under
``/data/:doctype/`` (``web/data/data.go``, ``web/data/replication.go``,
``docs/data-system.md``, ``docs/mango.md``):

- reads by ids: ``POST /data/:doctype/_all_docs?include_docs=true`` with ``{"keys"}``,
  id ranges: ``GET`` of the same route with ``startkey``/``endkey`` (proxied as is);
- writes: ``POST /data/:doctype/_bulk_docs`` (per-document results, as CouchDB);
  accounts instead go one by one through ``PUT``/``POST``/``DELETE
  /data/io.cozy.accounts/...``, the routes where the stack encrypts credentials;
- Mango: ``POST /data/:doctype/_index`` once per doctype and fields, then ``_find``,
  whose ``limit`` the stack caps at 1,000 (and turns a larger one into 100), so larger
  reads follow the ``bookmark`` (or ``skip``, where the server gives none);
- one document: ``GET /data/:doctype/:id`` (the answer carries ``_type``, removed here);
  the stack serves an older revision only of an account (``?rev=``, its soft-deleted copy).

The CouchDB backend's request logic is reused: only the paths and these rules differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

from ..errors import StoreError
from ..store.backend import Doc, db_name
from ..store.couchdb import CouchBackend, sortable
from ..store.documents import BATCH_SIZE
from .client import StackClient

ACCOUNTS = "io.cozy.accounts"
MAX_FIND_LIMIT = 1000


class StackBackend(CouchBackend):
    """:class:`~framework.store.backend.Backend` through cozy-stack with a konnector token."""

    write_batch = BATCH_SIZE
    """Not CouchDB's measured 2,000: the stack's own sweet spot is not measured yet."""

    def __init__(self, client: StackClient) -> None:
        self.client = client  # type: ignore[assignment] - same request() contract as CouchClient
        self.prefix = ""
        self._created: set[str] = set()
        self._indexes: set[tuple[str, tuple[str, ...]]] = set()

    def _db(self, doctype: str) -> str:
        db_name("", doctype)  # the same refusal of malformed doctypes, before any request
        return quote(doctype, safe="")

    def _ensure_db(self, doctype: str) -> str:
        """The stack creates the database on ``_bulk_docs`` and ``_index`` itself."""
        return self._db(doctype)

    def get(self, doctype: str, doc_id: str) -> Doc | None:
        doc = super().get(doctype, doc_id)
        return _without_type(doc)

    def get_many(self, doctype: str, ids: Sequence[str]) -> dict[str, Doc]:
        """Accounts one by one: ``_all_docs`` gives them as stored, credentials encrypted."""
        if doctype != ACCOUNTS:
            return super().get_many(doctype, ids)
        found = {doc_id: self.get(ACCOUNTS, doc_id) for doc_id in ids}
        return {doc_id: doc for doc_id, doc in found.items() if doc is not None}

    def get_revision(self, doctype: str, doc_id: str, rev: str) -> Doc | None:
        if doctype != ACCOUNTS:
            raise StoreError(f"cozy-stack serves older revisions of {ACCOUNTS} only, not of {doctype}")
        return _without_type(super().get_revision(doctype, doc_id, rev))

    def bulk_write(self, doctype: str, docs: Sequence[Doc]) -> list[Doc]:
        if doctype != ACCOUNTS:
            return super().bulk_write(doctype, docs)
        return [self._write_account(doc) for doc in docs]

    def _write_account(self, doc: Doc) -> Doc:
        """One account through the routes that encrypt its credentials; a result shaped like ``_bulk_docs``'."""
        db = self._db(ACCOUNTS)
        doc_id = doc.get("_id")
        if doc.get("_deleted"):
            path = f"{db}/{quote(doc_id, safe='')}"
            answer = self.client.request("DELETE", path, params={"rev": doc["_rev"]}, ok=(409,))
        elif not doc_id:
            answer = self.client.request("POST", f"{db}/", json=doc, idempotent=False)  # a second one: a twin
        else:
            # the stack takes either _id and _rev (update) or neither (create with the id of the URL)
            body = doc if doc.get("_rev") else {k: v for k, v in doc.items() if k != "_id"}
            answer = self.client.request("PUT", f"{db}/{quote(doc_id, safe='')}", json=body, ok=(409,))
        if answer is None:
            return {"id": doc_id, "error": "conflict", "reason": "Document update conflict."}
        return {"id": answer["id"], "rev": answer["rev"], "ok": True}

    def find(self, doctype: str, selector: Doc, limit: int, sort: Sequence[str] = ()) -> list[Doc]:
        if sort:
            self.ensure_index(doctype, sort)
        found: list[Doc] = []
        bookmark = None
        while len(found) < limit:
            query: Doc = {"selector": sortable(selector, sort), "limit": min(limit - len(found), MAX_FIND_LIMIT)}
            if sort:
                query["sort"] = [{field: "asc"} for field in sort]
            if bookmark:
                query["bookmark"] = bookmark
            elif found:
                query["skip"] = len(found)  # a server without bookmarks (pouchdb-server)
            body = self.client.request("POST", f"{self._db(doctype)}/_find", json=query, ok=(404,))
            if not body:
                break
            found.extend(body["docs"])
            bookmark = body.get("bookmark") or None
            if not body.get("next") or not body["docs"]:
                break
        return found[:limit]


def _without_type(doc: Doc | None) -> Doc | None:
    """A document as stored: the stack adds ``_type`` to what it answers."""
    if doc is not None:
        doc.pop("_type", None)
    return doc
