"""Document storage: one interface, a CouchDB and an embedded backend.

``open_backend`` picks the backend from a CouchDB URL or a data directory;
:class:`DocumentStore` is what konnectors write through.
"""

from __future__ import annotations

from pathlib import Path

from .backend import Backend, Doc, db_name
from .couchdb import CouchBackend
from .documents import DocumentStore, Writer, fields_changed, id_from_keys, never, ours_win
from .sqlite import SqliteBackend

EMBEDDED_FILE = "store.sqlite3"


def open_backend(couchdb_url: str | None, data_dir: Path | None, prefix: str = "") -> Backend:
    """CouchDB when a URL is given, else the embedded store in ``data_dir``."""
    if couchdb_url:
        return CouchBackend(couchdb_url, prefix)
    if data_dir is None:
        raise ValueError("either a CouchDB URL or a data directory is needed")
    data_dir.mkdir(parents=True, exist_ok=True)
    return SqliteBackend(data_dir / EMBEDDED_FILE, prefix)


__all__ = [
    "Backend",
    "CouchBackend",
    "Doc",
    "DocumentStore",
    "SqliteBackend",
    "Writer",
    "db_name",
    "fields_changed",
    "id_from_keys",
    "never",
    "open_backend",
    "ours_win",
]
