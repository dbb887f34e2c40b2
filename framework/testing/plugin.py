"""pytest fixtures: a CouchDB-compatible server, isolated store prefixes, stores of both kinds.

- ``couchdb_url``: ``$COUCHDB_URL`` if set, else a pouchdb-server started once
  per session (found by :func:`find_pouchdb_server`: ``$POUCHDB_SERVER``, the
  project's ``node_modules``, this framework's checkout, ``PATH``). Where it cannot
  start, CouchDB tests are skipped with the reason naming these settings, except
  under CI (``CI`` set), where they fail loudly.
- ``couchdb_disk_url``: the same with pouchdb-server storing on disk (LevelDB),
  which answers bulk writes out of order; ``$COUCHDB_URL`` (a real CouchDB is on
  disk) when set.
- ``db_prefix``: a fresh database prefix per test, so tests never see each
  other's data on a shared server.
- ``backend``: parametrised over ``embedded``, ``couchdb``, ``couchdb-disk`` and
  ``stack`` (the cozy-stack data API of ``stack_double``, with a konnector token
  granting ``STACK_DOCTYPES``): a test using it runs against every backend and both
  server modes (the contract suite).
- ``stack_double``: a cozy-stack double over the CouchDB-compatible server.
- ``embedded_store``: a DocumentStore on a fresh SQLite file.
- ``redis_url``: a redis-server started once per session (fleet mode; framework/fleet/testing.py).

Also in this package: ``runner.run_cli`` (the CLI as a subprocess),
``inprocess.make_context`` (a konnector's context without the CLI),
``household.load_kwh`` (synthetic consumption) and ``couchdb_server``.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from framework.fleet.testing import redis_url  # noqa: F401  (fixture: a real redis-server, for fleet mode)
from framework.store import Backend, CouchBackend, DocumentStore, SqliteBackend

from .couchdb_server import BINARY_ENV, REPOSITORY, CouchServer, ServerUnavailable
from .required import server_unavailable

STACK_DOCTYPES = (
    *("io.example.things", "io.example.nothing", "io.other.thing", "io.read.only", "io.cozy.accounts"),
    *(f"{series}.*" for series in ("com.example.energy", "com.example.curve", "com.example.power")),
    *("com.example.weather.*", "io.example.count.*", "io.example.e.*"),
)
"""What the ``stack`` backend's test konnector may touch (the stack grants only its manifest's doctypes;
``a.b.c.*`` wildcards as cozy-stack allows them)."""


PINNED_SERVER = "pouchdb-server@4.2.0"
"""The version this framework's own suite pins (package.json); what a konnector's project installs."""


def find_pouchdb_server(project: Path) -> Path:
    """The pouchdb-server launcher a test session starts, looked for where an author would put it.

    In order: ``$POUCHDB_SERVER``; ``node_modules/.bin/pouchdb-server`` in the project under test
    (pytest's rootdir) or a folder above it; in the checkout of this framework (an editable
    install); on ``PATH`` (``npm install -g``). Raises :class:`ServerUnavailable` naming the settings.
    """
    if configured := os.environ.get(BINARY_ENV):
        path = Path(configured)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ServerUnavailable(f"{BINARY_ENV} names {path}, which is not an executable file")
        return path
    for folder in (project, *project.parents, REPOSITORY):
        candidate = folder / "node_modules" / ".bin" / "pouchdb-server"
        if candidate.exists():
            return candidate
    if on_path := shutil.which("pouchdb-server"):
        return Path(on_path)
    node = "" if shutil.which("node") else "Node.js is not installed; "
    raise ServerUnavailable(
        f"{node}no pouchdb-server found: run `npm install {PINNED_SERVER}` in {project}, "
        f"or set {BINARY_ENV} to its launcher (node_modules/.bin/pouchdb-server), "
        "or set COUCHDB_URL to a CouchDB server (docs/writing-a-konnector.md, 'Tests')"
    )


def _server_url(on_disk: bool, project: Path) -> Iterator[str]:
    if url := os.environ.get("COUCHDB_URL"):
        yield url
        return
    try:
        server = CouchServer(find_pouchdb_server(project), on_disk=on_disk).start()
    except ServerUnavailable as reason:
        server_unavailable("CouchDB", "CouchDB-compatible server", reason)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def couchdb_url(pytestconfig: pytest.Config) -> Iterator[str]:
    yield from _server_url(on_disk=False, project=pytestconfig.rootpath)


@pytest.fixture(scope="session")
def couchdb_disk_url(pytestconfig: pytest.Config) -> Iterator[str]:
    yield from _server_url(on_disk=True, project=pytestconfig.rootpath)


@pytest.fixture
def db_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}-"


@pytest.fixture
def stack_double(couchdb_url: str, db_prefix: str) -> Iterator:
    from .stack_double import StackDouble

    with StackDouble(couchdb_url, db_prefix) as double:
        yield double


@pytest.fixture(params=["embedded", "couchdb", "couchdb-disk", "stack"])
def backend(request: pytest.FixtureRequest, db_prefix: str, tmp_path) -> Iterator[Backend]:
    if request.param.startswith("couchdb"):
        fixture = "couchdb_disk_url" if request.param == "couchdb-disk" else "couchdb_url"
        store: Backend = CouchBackend(request.getfixturevalue(fixture), db_prefix)
    elif request.param == "stack":
        from framework.stack import open_stack

        double = request.getfixturevalue("stack_double")
        permissions = {f"p{n}": {"type": doctype} for n, doctype in enumerate(STACK_DOCTYPES)}
        double.install({"slug": "contract", "permissions": permissions})
        store = open_stack(double.url, double.token("contract")).backend
    else:
        store = SqliteBackend(tmp_path / "store.sqlite3", db_prefix)
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def embedded_store(tmp_path) -> Iterator[DocumentStore]:
    """A DocumentStore on a fresh embedded (SQLite) file."""
    backend = SqliteBackend(tmp_path / "store.sqlite3")
    try:
        yield DocumentStore(backend)
    finally:
        backend.close()
