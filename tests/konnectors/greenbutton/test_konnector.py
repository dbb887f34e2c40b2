"""``greenbutton-file`` end to end through the CLI, on the embedded store and on CouchDB."""

from __future__ import annotations

import math
import shutil

import pytest

from framework.store import CouchBackend, DocumentStore, SqliteBackend
from tests.conftest import write_json
from tests.konnectors.greenbutton.test_espi import SAMPLES, independent_total

FULL_YEAR = "gba_coastal_multi_family_hourly_2011_full_year.xml"
ELECTRICITY = "org.greenbutton.electricity"


@pytest.fixture(params=["embedded", "couchdb"])
def target(request, tmp_path, db_prefix):
    """CLI arguments for one store, and a DocumentStore to read it."""
    if request.param == "couchdb":
        url = request.getfixturevalue("couchdb_url")
        env = {"KONNECTOR_DB_PREFIX": db_prefix}
        return ["--couchdb", url], env, DocumentStore(CouchBackend(url, db_prefix))
    (tmp_path / "data").mkdir()
    return ["--data-dir", str(tmp_path / "data")], {}, DocumentStore(SqliteBackend(tmp_path / "data" / "store.sqlite3"))


def test_full_year_import_is_exact_dst_aware_and_idempotent(cli, tmp_path, target):
    args, env, store = target
    config = write_json(
        tmp_path / "dev.json", {"fields": {"path": str(SAMPLES / FULL_YEAR), "timezone": "America/Los_Angeles"}}
    )
    first = cli("run", "greenbutton-file", "--config", str(config), *args, env=env)
    assert first.status == 0, first.output
    _, expected = independent_total(SAMPLES / FULL_YEAR)
    days = list(store.id_range(f"{ELECTRICITY}.day"))
    months = list(store.id_range(f"{ELECTRICITY}.month"))
    hours = list(store.id_range(f"{ELECTRICITY}.hour"))
    assert len(hours) == 8760 and len(months) == 12
    assert math.fsum(d["load"] for d in days) == pytest.approx(expected, abs=1e-6)
    assert not any(m.get("partial") for m in months[1:])
    per_day = {}
    for hour in hours:
        key = (hour["month"], hour["day"])
        per_day[key] = per_day.get(key, 0) + 1
    assert per_day[(3, 13)] == 23 and per_day[(11, 6)] == 25
    years = {d["_id"]: d["load"] for d in store.id_range(f"{ELECTRICITY}.year")}
    assert math.fsum(years.values()) == pytest.approx(expected, abs=1e-6)
    second = cli("run", "greenbutton-file", "--config", str(config), *args, env=env)
    assert second.status == 0 and "nothing new to write" in second.stderr


def test_directory_import_skips_files_already_imported(cli, tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    shutil.copy(SAMPLES / "pge_smd_real_hourly_2019-10-03.xml", folder)
    config = write_json(tmp_path / "dev.json", {"fields": {"path": str(folder), "timezone": "America/Los_Angeles"}})
    assert cli("run", "greenbutton-file", "--config", str(config)).status == 0
    shutil.copy(SAMPLES / "pge_smd_real_hourly_2019-10-23_two_blocks.xml", folder)
    shutil.copy(SAMPLES / "gas_monthly_therm_2021.xml", folder)
    result = cli("run", "greenbutton-file", "--config", str(config))
    assert result.status == 0, result.output
    assert "pge_smd_real_hourly_2019-10-03.xml: already imported, skipped" in result.stderr
    store = DocumentStore(SqliteBackend(tmp_path / "konnector-data" / "store.sqlite3"))
    october = store.get(f"{ELECTRICITY}.month", "5391320451/2019-10")
    expected = independent_total(SAMPLES / "pge_smd_real_hourly_2019-10-03.xml")[1]
    expected += independent_total(SAMPLES / "pge_smd_real_hourly_2019-10-23_two_blocks.xml")[1]
    assert october["load"] == pytest.approx(expected, abs=1e-6) and october["partial"] is True
    gas_days = list(store.id_range("org.greenbutton.gas.day"))
    assert math.fsum(d["load"] for d in gas_days) == pytest.approx(
        independent_total(SAMPLES / "gas_monthly_therm_2021.xml")[1], abs=1e-6
    )


def test_missing_path_is_a_clear_login_error(cli, tmp_path):
    config = write_json(tmp_path / "dev.json", {"fields": {"path": str(tmp_path / "nope.xml")}})
    result = cli("run", "greenbutton-file", "--config", str(config), "--log-format", "json")
    assert result.status == 1 and result.lines[-1]["message"] == "LOGIN_FAILED"
    assert "no such file or directory" in result.lines[-2]["message"]


def test_hostile_file_is_refused_and_nothing_is_stored(cli, tmp_path):
    hostile = tmp_path / "evil.xml"
    hostile.write_bytes(b'<?xml version="1.0"?><!DOCTYPE f [<!ENTITY x SYSTEM "file:///etc/passwd">]><f>&x;</f>')
    config = write_json(tmp_path / "dev.json", {"fields": {"path": str(hostile)}})
    result = cli("run", "greenbutton-file", "--config", str(config), "--log-format", "json")
    assert result.status == 1 and "declares a DTD" in result.lines[-2]["message"]
    store = DocumentStore(SqliteBackend(tmp_path / "konnector-data" / "store.sqlite3"))
    assert list(store.id_range(f"{ELECTRICITY}.hour")) == []
