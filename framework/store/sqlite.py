"""The embedded backend: CouchDB's document semantics on one SQLite file.

Used for standalone runs and the demo. Revisions are ``<n>-<md5 of the body>``
like CouchDB's; a deleted document keeps its last body (readable by its
revision, as CouchDB keeps it until compaction) and reads as absent otherwise.
WAL mode and a busy timeout let two jobs share the file.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

from ..errors import StoreError
from . import mango
from .backend import Doc, db_name

PAGE_SIZE = 1000
KEYS_PER_QUERY = 500

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


def _revision(generation: int, body: Doc) -> str:
    digest = hashlib.md5(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return f"{generation}-{digest}"


class SqliteBackend:
    """:class:`~framework.store.backend.Backend` on a SQLite file (``:memory:`` for tests)."""

    def __init__(self, path: str | Path, prefix: str = "") -> None:
        self.prefix = prefix
        try:
            self._conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the embedded store at {path}: {exc}") from exc
        self._lock = threading.Lock()

    def _db(self, doctype: str) -> str:
        return db_name(self.prefix, doctype)

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
        results = []
        with self._lock, self._conn:
            for doc in docs:
                results.append(self._write_one(db, doc))
        return results

    def _write_one(self, db: str, doc: Doc) -> Doc:
        doc_id = doc.get("_id") or uuid.uuid4().hex
        row = self._conn.execute("SELECT rev, deleted FROM docs WHERE db = ? AND id = ?", (db, doc_id)).fetchone()
        current_rev, deleted = row if row else (None, True)
        wanted_rev = doc.get("_rev")
        if (not deleted and wanted_rev != current_rev) or (deleted and wanted_rev):
            return {"id": doc_id, "error": "conflict", "reason": "Document update conflict."}
        body = {k: v for k, v in doc.items() if k not in ("_id", "_rev")}
        generation = int(current_rev.split("-")[0]) + 1 if current_rev else 1
        rev = _revision(generation, body)
        if doc.get("_deleted"):
            self._conn.execute(
                "UPDATE docs SET rev = ?, deleted = 1, live_rev = rev WHERE db = ? AND id = ?",
                (rev, db, doc_id),
            )
        else:
            stored = json.dumps({"_id": doc_id, "_rev": rev, **body}, separators=(",", ":"))
            self._conn.execute(
                "INSERT OR REPLACE INTO docs (db, id, rev, deleted, live_rev, body) VALUES (?, ?, ?, 0, NULL, ?)",
                (db, doc_id, rev, stored),
            )
        return {"id": doc_id, "rev": rev, "ok": True}

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
