"""A thin CouchDB client on ``requests``, and the CouchDB backend built on it.

Only what the product uses: database create, document get, ``_bulk_docs``,
``_all_docs`` by keys and by id range (paged), ``_find`` with an explicit limit,
``_index``. One ``requests.Session`` keeps connections alive; every request has
a timeout and asks for JSON (pouchdb-server answers ``text/plain`` otherwise).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import SplitResult, quote, unquote, urlsplit, urlunsplit

import requests

from ..errors import StoreError
from .backend import Doc, db_name, in_request_order
from .serialise import DocEncoder

TIMEOUT = (5, 60)
PAGE_SIZE = 5000
"""Rows per ``_all_docs`` page: id ranges are bounded by the periods a store touches."""
KEYS_PER_REQUEST = 2000
WRITE_BATCH = 2000
"""Documents per ``_bulk_docs``: pouchdb-server's sweet spot for time-series documents
(bench/store_ingest.py measures 500 to 5,000; smaller pays round trips, larger stalls its event loop)."""
JSON_HEADERS = {"Content-Type": "application/json"}


def sortable(selector: Doc, sort: Sequence[str]) -> Doc:
    """The selector, constraining the sort fields too: CouchDB uses the sort fields' index only
    when the selector names them ("Cannot sort ... when using the default index" otherwise)."""
    if not sort:
        return selector
    return {"$and": [selector, *({field: {"$exists": True}} for field in sort)]}


def split_credentials(url: str) -> tuple[str, SplitResult]:
    """``(user info, the URL without it)``: the user info runs to the last ``@`` before the host,
    so a password with an unencoded ``/``, ``#`` or ``?`` is read whole, never taken for a path."""
    scheme, separator, rest = url.partition("://")
    at = rest.rfind("@")
    if not separator or at == -1:
        return "", urlsplit(url)
    return rest[:at], urlsplit(f"{scheme}://{rest[at + 1 :]}")


class CouchClient:
    """HTTP access to one CouchDB server; credentials may be in the URL."""

    def __init__(self, url: str, timeout: tuple[float, float] = TIMEOUT) -> None:
        userinfo, parts = split_credentials(url)
        self.session = requests.Session()
        if userinfo:
            user, _, password = userinfo.partition(":")
            self.session.auth = (unquote(user), unquote(password))
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        self.base = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        self.session.headers.update({"Accept": "application/json"})
        self.timeout = timeout

    def request(self, method: str, path: str, *, ok: tuple[int, ...] = (), **kwargs: Any) -> Any:
        """Send a request; return the decoded JSON, or None for statuses listed in ``ok``."""
        url = f"{self.base}/{path}"
        try:
            response = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise StoreError(f"CouchDB at {self.base} is unreachable: {type(exc).__name__}") from exc
        if response.status_code in ok:
            return None
        if response.status_code >= 400:
            raise StoreError(
                f"CouchDB {method} /{path.split('?')[0]} failed: {response.status_code} {response.text[:200]}"
            )
        return response.json()

    def close(self) -> None:
        self.session.close()


class CouchBackend:
    """:class:`~framework.store.backend.Backend` on a CouchDB server (or pouchdb-server)."""

    write_batch = WRITE_BATCH
    concurrent_reads = True
    """Independent reads may be sent together (from threads): they overlap their round trips."""
    writes_in_flight = 2
    """Bulk writes of one save sent two at a time: our serialising overlaps the server's writing."""

    def __init__(self, url: str, prefix: str = "") -> None:
        self.client = CouchClient(url)
        self.prefix = prefix
        self._created: set[str] = set()
        self._indexes: set[tuple[str, tuple[str, ...]]] = set()

    def _db(self, doctype: str) -> str:
        return quote(db_name(self.prefix, doctype), safe="")

    def _ensure_db(self, doctype: str) -> str:
        db = self._db(doctype)
        if db not in self._created:
            self.client.request("PUT", db, ok=(412,))
            self._created.add(db)
        return db

    def get(self, doctype: str, doc_id: str) -> Doc | None:
        return self.client.request("GET", f"{self._db(doctype)}/{quote(doc_id, safe='')}", ok=(404,))

    def get_revision(self, doctype: str, doc_id: str, rev: str) -> Doc | None:
        path = f"{self._db(doctype)}/{quote(doc_id, safe='')}"
        return self.client.request("GET", path, params={"rev": rev}, ok=(404,))

    def get_many(self, doctype: str, ids: Sequence[str]) -> dict[str, Doc]:
        found: dict[str, Doc] = {}
        db = self._db(doctype)
        for start in range(0, len(ids), KEYS_PER_REQUEST):
            keys = list(ids[start : start + KEYS_PER_REQUEST])
            body = self.client.request(
                "POST", f"{db}/_all_docs", params={"include_docs": "true"}, json={"keys": keys}, ok=(404,)
            )
            if body is None:
                return {}
            for row in body["rows"]:
                if row.get("doc"):
                    found[row["id"]] = row["doc"]
        return found

    def id_range(self, doctype: str, start: str, end: str) -> Iterator[Doc]:
        db = self._db(doctype)
        params = {
            "include_docs": "true",
            "inclusive_end": "false",
            "limit": str(PAGE_SIZE),
            "startkey": json.dumps(start),
            "endkey": json.dumps(end),
        }
        while True:
            body = self.client.request("GET", f"{db}/_all_docs", params=params, ok=(404,))
            rows = body["rows"] if body else []
            for row in rows:
                if not row["id"].startswith("_design/"):
                    yield row["doc"]
            if len(rows) < PAGE_SIZE:
                return
            params = {**params, "startkey": json.dumps(rows[-1]["id"]), "skip": "1"}

    def bulk_write(self, doctype: str, docs: Sequence[Doc]) -> list[Doc]:
        if not docs:
            return []
        db = self._ensure_db(doctype)
        docs = [doc if doc.get("_id") else {**doc, "_id": uuid.uuid4().hex} for doc in docs]
        body = DocEncoder().bulk_docs(docs)
        results = self.client.request("POST", f"{db}/_bulk_docs", data=body, headers=JSON_HEADERS)
        return in_request_order(doctype, docs, results)

    def find(self, doctype: str, selector: Doc, limit: int, sort: Sequence[str] = ()) -> list[Doc]:
        query: Doc = {"selector": sortable(selector, sort), "limit": limit}
        if sort:
            self.ensure_index(doctype, sort)
            query["sort"] = [{field: "asc"} for field in sort]
        body = self.client.request("POST", f"{self._db(doctype)}/_find", json=query, ok=(404,))
        return body["docs"] if body else []

    def ensure_index(self, doctype: str, fields: Sequence[str]) -> None:
        """Create the index once per backend (CouchDB sorts only on an indexed field)."""
        db = self._ensure_db(doctype)
        if (db, tuple(fields)) not in self._indexes:
            self.client.request("POST", f"{db}/_index", json={"index": {"fields": list(fields)}})
            self._indexes.add((db, tuple(fields)))

    def close(self) -> None:
        self.client.close()
