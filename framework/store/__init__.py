"""Document storage: one interface, a CouchDB and an embedded backend.

``open_backend`` picks the backend from a CouchDB URL or a data directory;
:class:`DocumentStore` is what konnectors write through. Every name here is imported
when first used (``requests`` for CouchDB, ``sqlite3`` for the embedded store), so a
command that stores nothing does not pay for them.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .backend import Backend, Doc, db_name
    from .couchdb import CouchBackend
    from .documents import DocumentStore, Writer, fields_changed, id_from_keys, never, ours_win
    from .sqlite import SqliteBackend

EMBEDDED_FILE = "store.sqlite3"
DEFAULT_DATA_DIR = Path("konnector-data")
"""Where a standalone run keeps its embedded store and key file (relative to the working directory)."""
_LAZY = {
    "Backend": ".backend",
    "Doc": ".backend",
    "db_name": ".backend",
    "CouchBackend": ".couchdb",
    "DocumentStore": ".documents",
    "Writer": ".documents",
    "fields_changed": ".documents",
    "id_from_keys": ".documents",
    "never": ".documents",
    "ours_win": ".documents",
    "SqliteBackend": ".sqlite",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value


def open_backend(couchdb_url: str | None, data_dir: Path | None, prefix: str = "") -> Backend:
    """CouchDB when a URL is given, else the embedded store in ``data_dir``."""
    if couchdb_url:
        from .couchdb import CouchBackend

        return CouchBackend(couchdb_url, prefix)
    if data_dir is None:
        raise ValueError("either a CouchDB URL or a data directory is needed")
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    from .sqlite import SqliteBackend

    return SqliteBackend(data_dir / EMBEDDED_FILE, prefix)


__all__ = [
    "DEFAULT_DATA_DIR",
    "EMBEDDED_FILE",
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
