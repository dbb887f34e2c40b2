"""Permissions enforced at the only handles a konnector gets: every escape a konnector could try
from ``ctx`` ends in PermissionDenied, and no walk of the context's object graph reaches an
unrestricted store, a backend, the secret key or another account."""

from __future__ import annotations

import inspect
import logging
import os
import sqlite3
from pathlib import Path

import pytest
import requests

from framework.accounts import AccountStore
from framework.crypto import SecretBox
from framework.redact import Redactor
from framework.registry import Registry
from framework.runner import JobSpec, prepare
from framework.store import CouchBackend, DocumentStore, SqliteBackend
from framework.store.couchdb import CouchClient
from framework.testing.runner import run_cli
from tests.conftest import PATH_KONNECTORS, write_json
from tests.reliability.conftest import embedded_snapshot
from tests.reliability.konnectors.attacker_konnector import ESCAPES

ATTACKER_DIR = Path(__file__).parent / "konnectors"
ENV = {"KONNECTOR_PATH": os.pathsep.join([str(PATH_KONNECTORS), str(ATTACKER_DIR)])}
VICTIM_PASSWORD = "victim-pass-7291"


@pytest.fixture(scope="module")
def victim_store(tmp_path_factory) -> Path:
    """A data dir holding the probe konnector's account ``victim`` and its data."""
    work = tmp_path_factory.mktemp("attacker-world")
    write_json(work / "victim.json", {"fields": {"login": "vic", "password": VICTIM_PASSWORD}})
    done = run_cli("run", "probe", "--config", "victim.json", "--account", "victim", cwd=work, env=ENV)
    assert done.status == 0, done.output
    return work


def _accounts(work: Path) -> dict[str, str]:
    with sqlite3.connect(work / "konnector-data" / "store.sqlite3") as db:
        return dict(db.execute("SELECT id, body FROM docs WHERE db = 'io-cozy-accounts'").fetchall())


@pytest.mark.parametrize("escape", list(ESCAPES))
def test_each_escape_from_ctx_is_permission_denied(victim_store, reliability, escape):
    before = (embedded_snapshot(victim_store / "konnector-data"), _accounts(victim_store)["victim"])
    result = _with_escape(victim_store, escape)
    assert result.status == 1 and result.error_code == "UNKNOWN_ERROR", result.output
    message = result.lines[-2]["message"]
    assert any(word in message for word in ("may not", "may read and write only", "offers no")), message
    assert "escaped" not in result.output and VICTIM_PASSWORD not in result.output
    after = (embedded_snapshot(victim_store / "konnector-data"), _accounts(victim_store)["victim"])
    assert after == before
    reliability.record(
        "permissions", f"escape: {escape}", "attacker konnector, CLI run", "PermissionDenied, nothing written"
    )


def _with_escape(work: Path, escape: str):
    """The attacker's run with its ``escape`` parameter (a dev-config carries parameters)."""
    config = {"fields": {"login": "mallory", "password": "m-pw"}, "parameters": {"escape": escape}}
    write_json(work / "attacker.json", config)
    return run_cli(
        "run", "attacker", "--config", "attacker.json", "--account", "attacker", "--log-format", "json",
        cwd=work, env=ENV, timeout=60,
    )  # fmt: skip


FORBIDDEN = (
    DocumentStore,
    SqliteBackend,
    CouchBackend,
    CouchClient,
    AccountStore,
    SecretBox,
    JobSpec,
    sqlite3.Connection,
)


def reachable(root: object, limit: int = 200_000) -> list[tuple[str, object]]:
    """Every object reachable from ``root`` by attributes, slots, properties of framework objects,
    closures, bound methods, defaults and container items (module globals aside: see handles.py)."""
    seen: set[int] = set()
    found: list[tuple[str, object]] = []
    queue: list[tuple[str, object]] = [("ctx", root)]
    while queue and len(seen) < limit:
        path, obj = queue.pop()
        if id(obj) in seen or inspect.ismodule(obj) or isinstance(obj, (str, bytes, int, float, type(None))):
            continue
        seen.add(id(obj))
        found.append((path, obj))
        queue.extend(_edges(path, obj))
    return found


def _edges(path: str, obj: object):
    if isinstance(obj, dict):
        yield from ((f"{path}[{k!r}]", v) for k, v in obj.items())
        yield from ((f"{path}.key", k) for k in obj)
    elif isinstance(obj, (list, tuple, set, frozenset)):
        yield from ((f"{path}[]", v) for v in obj)
    for name in ("__self__", "__func__", "__wrapped__", "__defaults__", "__kwdefaults__", "__dict__", "fget"):
        value = getattr(obj, name, None) if not isinstance(obj, type) else obj.__dict__.get(name)
        if value is not None:
            yield f"{path}.{name}", value
    for index, cell in enumerate(getattr(obj, "__closure__", None) or ()):
        try:
            yield f"{path}.__closure__[{index}]", cell.cell_contents
        except ValueError:
            continue
    for name in getattr(type(obj), "__slots__", ()):
        if hasattr(obj, name) and not name.startswith("__"):
            yield f"{path}.{name}", getattr(obj, name)
    if type(obj).__module__.startswith("framework") and not isinstance(obj, type):
        yield f"{path}.__class__", type(obj)
        for name in dir(obj):
            if not name.startswith("__"):
                try:
                    yield f"{path}.{name}", getattr(obj, name)
                except Exception:  # an attribute a handle refuses
                    continue


@pytest.mark.parametrize("where", ["embedded", "couchdb"])
def test_no_walk_from_ctx_reaches_an_unrestricted_store_or_the_key(tmp_path, request, reliability, where):
    url = request.getfixturevalue("couchdb_url") if where == "couchdb" else None
    manifest = Registry.discover([PATH_KONNECTORS, ATTACKER_DIR]).get("attacker")
    spec = JobSpec(
        slug="attacker", account_id="attacker", fields={"login": "m", "password": "pw"}, couchdb_url=url,
        data_dir=tmp_path / "data", prefix="walk-",
    )  # fmt: skip
    from datetime import UTC, datetime

    spec.now = datetime(2024, 1, 1, tzinfo=UTC)
    ctx, konnector = prepare(spec, manifest, Redactor(), logging.getLogger("walk"), 0.0)
    escapes = [(path, obj) for path, obj in reachable((ctx, konnector)) if isinstance(obj, FORBIDDEN)]
    assert escapes == [], [path for path, _ in escapes[:5]]
    assert not any(isinstance(obj, requests.Session) for _, obj in reachable(ctx)), "a session with store credentials"
    if where == "couchdb":
        reliability.record(
            "permissions",
            "walk of ctx's object graph (attributes, slots, properties, closures, bound methods, defaults)",
            "context as the runner builds it, embedded and CouchDB",
            "no store, backend, key, spec or other account reachable",
        )
