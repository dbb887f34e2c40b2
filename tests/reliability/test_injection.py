"""Injection through ids and exports: an id CouchDB would treat specially never reaches it, and a
CSV export never hands a spreadsheet a formula."""

from __future__ import annotations

import csv
import json
from datetime import date

import pytest
import requests

from framework.errors import StoreError
from framework.store import DocumentStore, SqliteBackend, Writer
from framework.store.timeseries import energy_series, point, write_points
from framework.testing.runner import run_cli
from tests.conftest import PATH_KONNECTORS, write_json

ENV = {"KONNECTOR_PATH": str(PATH_KONNECTORS)}
HOSTILE_IDS = ["_design/evil", "_local/evil", "_evil", "line\nbreak", "nul\x00byte", "c1\x85next"]


@pytest.mark.parametrize("doc_id", HOSTILE_IDS)
def test_hostile_document_ids_are_refused_on_every_backend(backend, doc_id):
    store = DocumentStore(backend, Writer(app="t"))
    with pytest.raises(StoreError, match="is refused"):
        store.save("io.example.things", [{"_id": doc_id, "v": 1}])
    with pytest.raises(StoreError, match="is refused"):
        store.get("io.example.things", doc_id)
    assert store.find("io.example.things", {}, limit=10) == []


def test_a_meter_id_cannot_make_a_design_document(backend, reliability):
    store = DocumentStore(backend, Writer(app="t"))
    day = point("day", date(2024, 1, 1), meter="_design", load=1.0)
    with pytest.raises(StoreError, match="reserved by CouchDB"):
        write_points(store, energy_series("io.example.e"), "day", [day])
    if backend.__class__.__name__ == "SqliteBackend":
        reliability.record(
            "hostile input",
            "document ids CouchDB reserves or that break logs",
            f"{len(HOSTILE_IDS)} ids (_design/, _local/, leading _, LF, NUL, C1) and a meter id '_design'",
            "StoreError before any write, on every backend and server mode",
        )


@pytest.mark.parametrize("where", ["embedded", "couchdb"])
def test_account_id_design_document_is_refused(tmp_path, request, reliability, where):
    write_json(tmp_path / "dev.json", {"fields": {"login": "bob", "password": "hunter22"}})
    store_args, env = [], dict(ENV)
    if where == "couchdb":
        url = request.getfixturevalue("couchdb_disk_url")
        store_args, env["KONNECTOR_DB_PREFIX"] = ["--couchdb", url], "inj-"
    result = run_cli(
        "run",
        "probe",
        "--config",
        "dev.json",
        "--account",
        "_design/evil",
        "--log-format",
        "json",
        *store_args,
        cwd=tmp_path,
        env=env,
    )
    assert result.status == 1 and result.error_code == "UNKNOWN_ERROR", result.output
    assert "account id '_design/evil' is refused" in result.lines[-2]["message"]
    assert "Traceback" not in result.output
    if where == "couchdb":
        design = requests.get(f"{url}/inj-io-cozy-accounts/_design/evil", timeout=10)
        assert design.status_code == 404
        reliability.record(
            "hostile input",
            "account id `_design/evil`",
            "--account on CouchDB (pouchdb-server on disk) and the embedded store",
            "UNKNOWN_ERROR naming the id, no design document created",
        )
    else:
        assert not (tmp_path / "konnector-data" / "store.sqlite3").exists() or _no_accounts(tmp_path)


def _no_accounts(tmp_path) -> bool:
    backend = SqliteBackend(tmp_path / "konnector-data" / "store.sqlite3")
    try:
        return list(backend.id_range("io.cozy.accounts", "", "\ufff0")) == []
    finally:
        backend.close()


def test_platform_account_id_with_control_characters_is_refused(tmp_path, couchdb_url):
    env = {
        **ENV,
        "COZY_FIELDS": json.dumps({"account": "acc\r\nX-Evil: 1", "konnector": "probe"}),
        "COUCHDB_URL": couchdb_url,
    }
    result = run_cli("run", cwd=tmp_path, env=env)
    assert result.status == 1 and result.error_code == "UNKNOWN_ERROR"
    assert "control characters" in result.lines[-2]["message"]


def test_csv_export_neutralises_formulas(tmp_path, reliability):
    data = tmp_path / "konnector-data"
    data.mkdir()
    backend = SqliteBackend(data / "store.sqlite3")
    hostile = ['=HYPERLINK("http://x","y")', "+1+1", "-1+1", "@SUM(A1)", "\tx", "\rx"]
    docs = [{"_id": f"d{n}", "meter": value, "load": -1.5} for n, value in enumerate(hostile)]
    DocumentStore(backend, Writer(app="t")).save("io.example.things", docs)
    backend.close()
    result = run_cli("export", "io.example.things", "--format", "csv", "--output", "out.csv", cwd=tmp_path)
    assert result.status == 0, result.output
    with open(tmp_path / "out.csv", encoding="utf-8", newline="") as exported:
        rows = list(csv.DictReader(exported))
    assert [row["meter"] for row in rows] == ["'" + value for value in hostile]
    assert {row["load"] for row in rows} == {"-1.5"}  # numbers stay numbers
    reliability.record(
        "hostile input",
        "CSV export of values starting with = + - @ TAB CR",
        "konnector export --format csv",
        "each cell prefixed with ', numbers untouched",
    )
