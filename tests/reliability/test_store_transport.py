"""Transport faults between a job and its CouchDB store, made at the TCP level by the testing kit's
fault proxy in front of pouchdb-server: a reset bulk write is sent again and counted once (the store
equals a clean run's, no extra revision); a store that stays unreachable ends the job with
UNKNOWN_ERROR.STORE_UNREACHABLE in one line, the bookmark not moved past what was stored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from framework.store import CouchBackend, DocumentStore
from framework.testing.faultproxy import FaultProxy
from framework.testing.runner import CliResult, run_cli
from tests.conftest import PATH_KONNECTORS

ENV = {"KONNECTOR_PATH": str(PATH_KONNECTORS), "KONNECTOR_NOW": "2025-03-01T12:00:00+01:00"}
DOCTYPES = ("io.example.probe.day", "io.example.probe.month", "io.example.probe.year")
ACCOUNT = "probe-dev"


def _proxied(url: str, proxy: FaultProxy) -> str:
    """``url`` (credentials included) with the proxy's port in place of the server's."""
    head, _, port = url.rpartition(":")
    return f"{head}:{proxy.port}" if port.isdigit() else url


def _run(work: Path, url: str, prefix: str, days: int) -> CliResult:
    work.mkdir(exist_ok=True)
    (work / "dev.json").write_text(
        json.dumps({"fields": {"login": "ada", "password": "pw"}, "parameters": {"days": days}})
    )
    return run_cli(
        "run", "probe", "--config", "dev.json", "--couchdb", url, "--log-format", "json",
        cwd=work, env={**ENV, "KONNECTOR_DB_PREFIX": prefix}, timeout=180,
    )  # fmt: skip


def _store(url: str, prefix: str) -> tuple[dict, dict, str | None]:
    """``(documents without bookkeeping, revision generation of each, the account's bookmark)``."""
    store = DocumentStore(CouchBackend(url, prefix))
    docs, generations = {}, {}
    for doctype in DOCTYPES:
        for doc in store.id_range(doctype):
            docs[(doctype, doc["_id"])] = {k: v for k, v in doc.items() if k not in ("_rev", "cozyMetadata")}
            generations[(doctype, doc["_id"])] = doc["_rev"].split("-")[0]
    account = store.backend.get("io.cozy.accounts", ACCOUNT) or {}
    return docs, generations, (account.get("data") or {}).get("bookmark")


@pytest.fixture(params=["memory", "disk"])
def server(request) -> tuple[str, str]:
    """``(mode, URL)`` of pouchdb-server in memory, and on disk (which answers bulk writes out of order)."""
    return request.param, request.getfixturevalue("couchdb_url" if request.param == "memory" else "couchdb_disk_url")


@pytest.mark.parametrize("where", ["day", "month"])
def test_a_bulk_write_reset_mid_answer_is_sent_again_and_counted_once(tmp_path, server, db_prefix, reliability, where):
    mode, server = server
    clean = _run(tmp_path / "clean", server, f"{db_prefix}clean-", days=400)
    assert clean.status == 0, clean.output
    with FaultProxy(server.rpartition("@")[2].split("/")[0]) as proxy:
        proxy.fault("reset", path=f"probe-{where}/_bulk_docs", after=1000)
        faulted = _run(tmp_path / "faulted", _proxied(server, proxy), f"{db_prefix}faulted-", days=400)
    assert proxy.applied and faulted.status == 0, faulted.output
    assert "Traceback" not in faulted.output
    retried = [line for line in faulted.lines if "trying again" in line["message"]]
    assert len(retried) == 1 and "ConnectionResetError" in retried[0]["message"], faulted.stdout
    expected, faulted_store = _store(server, f"{db_prefix}clean-"), _store(server, f"{db_prefix}faulted-")
    assert len(expected[0]) == 400 + 14 + 2
    assert faulted_store[0] == expected[0]
    assert faulted_store[1] == expected[1]  # the landed first try was recognised: no second revision
    assert faulted_store[2] == expected[2] == "2025-02-04"
    reliability.record(
        "store faults",
        f"CouchDB connection reset mid-answer of a bulk write ({where} documents, pouchdb-server {mode})",
        "TCP fault proxy, probe konnector, 400 days",
        "sent again, its own writes recognised: store and revisions equal a clean run",
    )


def test_a_store_that_stays_unreachable_ends_in_one_line_and_keeps_the_bookmark(
    tmp_path, couchdb_url, db_prefix, reliability
):
    reference = f"{db_prefix}reference-"
    for _ in range(2):
        assert _run(tmp_path / "reference", couchdb_url, reference, days=3).status == 0
    prefix = f"{db_prefix}faulted-"
    assert _run(tmp_path / "faulted", couchdb_url, prefix, days=3).status == 0
    with FaultProxy(couchdb_url.rpartition("@")[2].split("/")[0]) as proxy:
        proxy.fault("reset", path="probe-month/_bulk_docs", after=0, times=99)
        failed = _run(tmp_path / "faulted", _proxied(couchdb_url, proxy), prefix, days=3)
    assert len(proxy.applied) == 5  # STORE_RETRY's attempts
    assert failed.status == 1 and failed.error_code == "UNKNOWN_ERROR.STORE_UNREACHABLE", failed.output
    errors = [line for line in failed.lines if line["type"] == "error"]
    assert len(errors) == 1, errors
    host = f"CouchDB at http://127.0.0.1:{proxy.port} is unreachable: POST /{prefix}io-example-probe-month/_bulk_docs"
    assert errors[0]["message"].startswith(host) and "5: ConnectionError (ConnectionResetError)" in errors[0]["message"]
    password = couchdb_url.rpartition("@")[0].rpartition(":")[2]
    assert "Traceback" not in failed.output and password not in failed.output
    docs, _, bookmark = _store(couchdb_url, prefix)
    assert bookmark == "2024-01-04"  # its days were stored, their month was not: the bookmark stays before them
    assert len([key for key in docs if key[0] == "io.example.probe.day"]) == 6
    again = _run(tmp_path / "faulted", couchdb_url, prefix, days=3)
    assert again.status == 0, again.output
    assert _store(couchdb_url, prefix)[0] == _store(couchdb_url, reference)[0]  # the next run repairs the month
    reliability.record(
        "store faults",
        "CouchDB resets every bulk write of one database (month aggregates)",
        "TCP fault proxy, probe konnector, after a first run",
        "UNKNOWN_ERROR.STORE_UNREACHABLE in one line after 5 tries; bookmark kept; next run equals a clean one",
    )
