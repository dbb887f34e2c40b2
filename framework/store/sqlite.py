"""The embedded backend: CouchDB's document semantics on one SQLite file.

Used for standalone runs and the demo. Revisions are ``<n>-<md5 of the body>``
like CouchDB's; a deleted document keeps its last body (readable by its
revision, as CouchDB keeps it until compaction) and reads as absent otherwise.
WAL mode and a busy timeout let two jobs share the file.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from hashlib import md5
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from pathlib import Path

from ..errors import StoreError
from . import mango
from .backend import Doc, db_name
from .serialise import DocEncoder

PAGE_SIZE = 1000
KEYS_PER_QUERY = 900
"""Below SQLite's oldest limit of 999 bound parameters per statement."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
    db TEXT NOT NULL,
    id TEXT NOT NULL,
    rev TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    live_rev TEXT,
    body TEXT NOT NULL,
    PRIMARY KEY (db, id)
) WITHOUT ROWID
"""


_ABSENT = (None, 1)
_ID_REV = ("_id", "_rev")


class _Batch:
    """The rows one bulk write changes, checked against the revisions read once for the batch.

    A later write of an id in the same batch sees the earlier one, as it would one request
    after the other.
    """

    def __init__(self, db: str) -> None:
        self.db = db
        self.current: dict[str, tuple[str, int]] = {}
        self.stored: dict[str, tuple[str, str, str, str]] = {}
        self.deleted: dict[str, tuple[str, str, str]] = {}
        self.encoder = DocEncoder()

    def change(self, doc: Doc) -> Doc:
        doc_id = doc["_id"]
        current_rev, is_deleted = self.current.get(doc_id, _ABSENT)
        wanted_rev = doc.get("_rev")
        if (wanted_rev != current_rev) if not is_deleted else wanted_rev:
            return {"id": doc_id, "error": "conflict", "reason": "Document update conflict."}
        text = self.encoder.body(doc, _ID_REV)
        generation = int(current_rev.split("-", 1)[0]) + 1 if current_rev else 1
        rev = f"{generation}-{md5(text.encode(), usedforsecurity=False).hexdigest()}"
        if doc.get("_deleted"):
            self.deleted[doc_id] = (rev, self.db, doc_id)
            self.current[doc_id] = (rev, 1)
        else:
            head = f'{{"_id":{encode_basestring_ascii(doc_id)},"_rev":"{rev}"'
            self.stored[doc_id] = (self.db, doc_id, rev, head + ("}" if text == "{}" else "," + text[1:]))
            self.deleted.pop(doc_id, None)
            self.current[doc_id] = (rev, 0)
        return {"id": doc_id, "rev": rev, "ok": True}


def _private_file(path: str | Path) -> None:
    """Create the store file readable by its owner only (SQLite gives its WAL and journal files
    the same mode), and make an existing one private: it holds the account documents."""
    if str(path) == ":memory:" or str(path).startswith("file:"):
        return
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    if os.stat(path).st_mode & 0o077:
        os.chmod(path, 0o600)


class SqliteBackend:
    """:class:`~framework.store.backend.Backend` on a SQLite file (``:memory:`` for tests).

    Settings: WAL journal, ``synchronous=NORMAL`` (durable at each checkpoint, consistent
    always), a 30 s busy timeout; a bulk write is one transaction (``BEGIN IMMEDIATE``, or part
    of an open :meth:`transaction`): one lookup of the current revisions, then one
    ``executemany`` per kind of change.
    """

    write_batch = 10_000
    """Documents per bulk write: a store of up to ``Konnector.store_batch`` (5,000) points and its
    aggregates in one, not split into transactions that rewrite the same index pages."""

    def __init__(self, path: str | Path, prefix: str = "") -> None:
        self.prefix = prefix
        try:
            _private_file(path)
            self._conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open the embedded store at {path}: {exc}") from exc
        self._lock = threading.RLock()

    def _db(self, doctype: str) -> str:
        return db_name(self.prefix, doctype)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Every write inside commits together, or none does (``BEGIN IMMEDIATE`` … ``COMMIT``).

        A konnector's store runs in one (:meth:`Konnector.start`): the points, their aggregates
        and the bookmark that follows them become one commit, so a crash never leaves points
        without their aggregates, and a backfill pays one commit per store, not one per level.
        Nested, it is part of the outer one. The write lock is taken up front: the revisions a
        bulk write checks cannot change before it writes, even from another process. This
        backend's other threads wait for the commit (they share its connection).
        """
        with self._lock:
            if self._conn.in_transaction:
                yield
                return
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._conn.rollback()
                raise
            self._conn.commit()

    def _live(self, doctype: str, where: str, args: Sequence) -> Iterator[Doc]:
        query = f"SELECT body FROM docs WHERE db = ? AND deleted = 0 AND {where}"
        with self._lock:
            rows = self._conn.execute(query, (self._db(doctype), *args)).fetchall()
        return (json.loads(body) for (body,) in rows)

    def get(self, doctype: str, doc_id: str) -> Doc | None:
        return next(self._live(doctype, "id = ?", (doc_id,)), None)

    def get_revision(self, doctype: str, doc_id: str, rev: str) -> Doc | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT body FROM docs WHERE db = ? AND id = ? AND (rev = ? OR live_rev = ?)",
                (self._db(doctype), doc_id, rev, rev),
            ).fetchone()
        return json.loads(row[0]) if row else None

    def get_many(self, doctype: str, ids: Sequence[str]) -> dict[str, Doc]:
        found: dict[str, Doc] = {}
        for start in range(0, len(ids), KEYS_PER_QUERY):
            chunk = list(ids[start : start + KEYS_PER_QUERY])
            marks = ",".join("?" * len(chunk))
            for doc in self._live(doctype, f"id IN ({marks})", chunk):
                found[doc["_id"]] = doc
        return found

    def id_range(self, doctype: str, start: str, end: str) -> Iterator[Doc]:
        while True:
            page = list(self._live(doctype, "id >= ? AND id < ? ORDER BY id LIMIT ?", (start, end, PAGE_SIZE)))
            yield from page
            if len(page) < PAGE_SIZE:
                return
            start = page[-1]["_id"] + "\0"

    def bulk_write(self, doctype: str, docs: Sequence[Doc]) -> list[Doc]:
        db = self._db(doctype)
        docs = [doc if doc.get("_id") else {**doc, "_id": uuid.uuid4().hex} for doc in docs]
        batch = _Batch(db)
        with self.transaction():
            batch.current = self._current(db, [doc["_id"] for doc in docs])
            results = [batch.change(doc) for doc in docs]
            self._conn.executemany(
                "INSERT OR REPLACE INTO docs (db, id, rev, deleted, live_rev, body) VALUES (?, ?, ?, 0, NULL, ?)",
                batch.stored.values(),
            )
            # after the inserts: a document written then deleted in one batch has its row
            self._conn.executemany(
                "UPDATE docs SET rev = ?, deleted = 1, live_rev = rev WHERE db = ? AND id = ?", batch.deleted.values()
            )
        return results

    def _current(self, db: str, ids: list[str]) -> dict[str, tuple[str, int]]:
        """``id -> (rev, deleted)`` of the stored rows among ``ids``: one query per chunk of keys."""
        current: dict[str, tuple[str, int]] = {}
        for start in range(0, len(ids), KEYS_PER_QUERY):
            chunk = ids[start : start + KEYS_PER_QUERY]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT id, rev, deleted FROM docs WHERE db = ? AND id IN ({marks})"
            for doc_id, rev, is_deleted in self._conn.execute(query, (db, *chunk)):
                current[doc_id] = (rev, is_deleted)
        return current

    def find(self, doctype: str, selector: Doc, limit: int, sort: Sequence[str] = ()) -> list[Doc]:
        found = []
        for doc in self.id_range(doctype, "", "\U0010ffff"):
            if mango.matches(doc, selector):
                found.append(doc)
                if not sort and len(found) >= limit:
                    break
        if sort:
            found.sort(key=mango.sort_key(sort))
        return found[:limit]

    def ensure_index(self, doctype: str, fields: Sequence[str]) -> None:
        """Nothing to do: queries scan the doctype's rows, which is fine at embedded sizes."""
        self._db(doctype)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
