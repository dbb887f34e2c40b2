"""A thin CouchDB client on ``requests``, and the CouchDB backend built on it.

Only what the product uses: database create, document get, ``_bulk_docs``,
``_all_docs`` by keys and by id range (paged), ``_find`` with an explicit limit,
``_index``. One ``requests.Session`` keeps connections alive; every request has
a timeout and asks for JSON (pouchdb-server answers ``text/plain`` otherwise).

Transport faults (a refused or reset connection, a body cut short) are retried with a
bounded backoff (:data:`STORE_RETRY`), then end the job with :class:`StoreUnreachable`.
Every request the store sends may be sent again: reads, ``PUT`` of a database or an
index, and ``_bulk_docs`` with an ``_id`` on every document (given one before sending).
A resent bulk write whose first try landed finds its own documents in conflict; those
are read back and, when the stored document is the one sent, counted as written with
the stored revision (:func:`settle_resent`), so a lost answer costs no extra revision.
A read timeout is not retried: the server is slow, not broken, and waiting again would
double the job's time. cozy-stack's client (``framework/stack/client.py``) shares :func:`send`.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import SplitResult, quote, unquote, urlsplit, urlunsplit

import requests
import urllib3.exceptions

from ..errors import StoreError, StoreUnreachable
from ..http import RetryPolicy, _fault_name
from ..logs import get_logger
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
STORE_RETRY = RetryPolicy(attempts=5, backoff=0.25, max_wait=4.0, total=30.0)
"""Tries of one store request: a store is near (loopback, the same network), so waits are short
(0.25, 0.5, 1, 2 s, with jitter); a store still unreachable after them is down, not busy."""
STORE_FAULTS = (
    requests.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)
"""A refused, reset or dropped connection, a body cut short: what is retried (not ``ReadTimeout``)."""

log = get_logger("store")


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    server: str,
    idempotent: bool = True,
    policy: RetryPolicy = STORE_RETRY,
    **kwargs: Any,
) -> tuple[requests.Response, int]:
    """``(response, tries)``: the request sent again on transport faults, within ``policy``.

    ``server`` names the store in messages (never with credentials). A request that is not
    ``idempotent`` is sent again only if no connection was made. When the tries run out:
    :class:`StoreUnreachable`, one line listing each try's fault.
    """
    path = "/" + url.split("://", 1)[-1].partition("/")[2].split("?")[0]
    started, tried = time.monotonic(), []
    for attempt in range(policy.attempts):
        try:
            return session.request(method, url, **kwargs), attempt + 1  # the whole body is read here
        except STORE_FAULTS as exc:
            tried.append(_fault_name(exc))
            if not idempotent and not _never_connected(exc):
                tried[-1] += " (not sent again: not idempotent)"
                break
        wait = policy.wait(attempt)
        if attempt == policy.attempts - 1 or time.monotonic() - started + wait > policy.total:
            break
        log.info(f"{server}: {tried[-1]} on {method} {path}; trying again in {wait:.1f} s")
        time.sleep(wait)
    faults = "; ".join(f"{n + 1}: {fault}" for n, fault in enumerate(tried))
    raise StoreUnreachable(
        f"{server} is unreachable: {method} {path} failed {len(tried)} time(s) in "
        f"{time.monotonic() - started:.1f} s ({faults}); what was stored is kept and the next run resumes from it"
    )


def _never_connected(exc: BaseException) -> bool:
    """Whether the request surely never reached the server: refused, unresolved, or no connection
    in time (requests wraps urllib3's ``MaxRetryError``, whose ``reason`` says which)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0] if exc.args else None, "reason", None)
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


def settle_resent(doctype: str, sent: bytes, results: list[Doc], read: Any) -> list[Doc]:
    """The results of a ``_bulk_docs`` sent more than once, its own landed writes no longer conflicts.

    A first try that reached the server and lost its answer makes the resend conflict with
    itself. Each conflicted document is read back (``read(ids)`` gives ``_all_docs`` rows);
    a stored document equal to the one sent (``cozyMetadata`` included, whose ``updatedAt``
    this write set), or a deletion found deleted, was this write: ``ok`` with the stored
    revision. Anything else stays a conflict, for the caller's merge.
    """
    conflicted = [i for i, result in enumerate(results) if result.get("error") == "conflict"]
    if not conflicted:
        return results
    docs = json.loads(sent)["docs"]
    rows = {row.get("id", row.get("key")): row for row in read([docs[i]["_id"] for i in conflicted])}
    settled = list(results)
    for index in conflicted:
        doc = docs[index]
        row = rows.get(doc["_id"]) or {}
        value, stored = row.get("value") or {}, row.get("doc")
        if doc.get("_deleted") and value.get("deleted"):
            settled[index] = {"id": doc["_id"], "rev": value["rev"], "ok": True}
        elif stored is not None and _same(stored, doc):
            settled[index] = {"id": doc["_id"], "rev": stored["_rev"], "ok": True}
    landed = sum(1 for i in conflicted if settled[i].get("ok"))
    log.debug(f"{doctype}: a resent bulk write found {landed} of its {len(conflicted)} conflicts already written")
    return settled


def _same(stored: Doc, sent: Doc) -> bool:
    skip = ("_rev", "_revisions", "_conflicts")
    return {k: v for k, v in stored.items() if k not in skip} == {k: v for k, v in sent.items() if k not in skip}


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


def _settle_environment(session: requests.Session, base: str) -> None:
    """Read the proxy, CA bundle and ``.netrc`` settings of the environment once, for a client
    that talks to one server: requests would read them again on every request (0.4 ms each)."""
    settings = session.merge_environment_settings(base, {}, None, None, None)
    if session.auth is None:
        session.auth = requests.utils.get_netrc_auth(base)
    session.trust_env = False
    session.proxies.update(settings["proxies"])
    session.verify = settings["verify"]
    session.cert = settings["cert"]


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
        _settle_environment(self.session, self.base)
        self.timeout = timeout

    def request(self, method: str, path: str, *, ok: tuple[int, ...] = (), **kwargs: Any) -> Any:
        """Send a request; return the decoded JSON, or None for statuses listed in ``ok``."""
        return self.send(method, path, ok=ok, **kwargs)[0]

    def send(self, method: str, path: str, *, ok: tuple[int, ...] = (), **kwargs: Any) -> tuple[Any, int]:
        """``(decoded JSON or None, tries)``: as :meth:`request`, saying how many tries it took."""
        server = f"CouchDB at {self.base}"
        response, tries = send(
            self.session, method, f"{self.base}/{path}", server=server, timeout=self.timeout, **kwargs
        )
        if response.status_code in ok:
            return None, tries
        if response.status_code >= 400:
            raise StoreError(
                f"CouchDB {method} /{path.split('?')[0]} failed: {response.status_code} {response.text[:200]}"
            )
        return response.json(), tries

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
        results, tries = self.client.send("POST", f"{db}/_bulk_docs", data=body, headers=JSON_HEADERS)
        ordered = in_request_order(doctype, docs, results)
        if tries > 1:
            ordered = settle_resent(doctype, body, ordered, lambda ids: self._rows(db, ids))
        return ordered

    def _rows(self, db: str, ids: Sequence[str]) -> list[Doc]:
        """``_all_docs`` rows of ``ids`` with their documents (a deleted one: ``value.deleted``)."""
        body = self.client.request("POST", f"{db}/_all_docs", params={"include_docs": "true"}, json={"keys": list(ids)})
        return body["rows"]

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
