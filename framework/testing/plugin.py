"""pytest fixtures: a CouchDB-compatible server, isolated store prefixes, stores of both kinds.

- ``couchdb_url``: ``$COUCHDB_URL`` if set, else a pouchdb-server started once
  per session. Where it cannot start, CouchDB tests are skipped with the
  reason, except under CI (``CI`` set), where they fail loudly.
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
import uuid
from collections.abc import Iterator

import pytest

from framework.fleet.testing import redis_url  # noqa: F401  (fixture: a real redis-server, for fleet mode)
from framework.store import Backend, CouchBackend, DocumentStore, SqliteBackend

from .couchdb_server import CouchServer, ServerUnavailable

STACK_DOCTYPES = (
    *("io.example.things", "io.example.nothing", "io.other.thing", "io.read.only", "io.cozy.accounts"),
    *(f"{series}.*" for series in ("com.example.energy", "com.example.curve", "com.example.power")),
    *("com.example.weather.*", "io.example.count.*", "io.example.e.*"),
)
"""What the ``stack`` backend's test konnector may touch (the stack grants only its manifest's doctypes;
``a.b.c.*`` wildcards as cozy-stack allows them)."""


def _server_url(on_disk: bool) -> Iterator[str]:
    if url := os.environ.get("COUCHDB_URL"):
        yield url
        return
    try:
        server = CouchServer(on_disk=on_disk).start()
    except ServerUnavailable as reason:
        if os.environ.get("CI"):
            pytest.fail(f"CouchDB tests must run in CI: {reason}")
        pytest.skip(f"no CouchDB-compatible server: {reason}")
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def couchdb_url() -> Iterator[str]:
    yield from _server_url(on_disk=False)


@pytest.fixture(scope="session")
def couchdb_disk_url() -> Iterator[str]:
    yield from _server_url(on_disk=True)


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
