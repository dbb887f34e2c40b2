"""__NAME__ tests: ``process`` alone, then a real run through the ``konnector`` command."""

from __future__ import annotations

import json

from framework.store import DocumentStore, SqliteBackend
from framework.testing.runner import run_cli

from __PACKAGE__.konnector import __CLASS__
from __PACKAGE__.sandbox import __CLASS__Sandbox


def test_process_turns_readings_into_day_points():
    documents = __CLASS__().process(None, {"readings": [{"date": "2024-03-01", "kwh": 7.5}]})
    [day] = documents["__DOCTYPE__.day"]
    assert (day["_id"], day["load"], day["year"], day["month"], day["day"]) == ("2024-03-01", 7.5, 2024, 3, 1)


def test_run_against_the_sandbox_is_complete_and_incremental(tmp_path):
    with __CLASS__Sandbox() as sandbox:
        (tmp_path / "dev.json").write_text(json.dumps(sandbox.dev_config()))
        first = run_cli("run", "__SLUG__", "--config", "dev.json", cwd=tmp_path)
        assert first.status == 0, first.output
        store = DocumentStore(SqliteBackend(tmp_path / "konnector-data" / "store.sqlite3"))
        days = list(store.id_range("__DOCTYPE__.day"))
        assert len(days) == 365
        years = list(store.id_range("__DOCTYPE__.year"))
        assert round(sum(y["load"] for y in years), 6) == round(sum(d["load"] for d in days), 6)
        calls = len(sandbox.requests)
        second = run_cli("run", "__SLUG__", "--config", "dev.json", cwd=tmp_path)
        assert second.status == 0 and len(sandbox.requests) == calls + 1


def test_wrong_api_key_is_login_failed(tmp_path):
    with __CLASS__Sandbox() as sandbox:
        config = sandbox.dev_config()
        config["fields"]["api_key"] = "wrong"
        (tmp_path / "dev.json").write_text(json.dumps(config))
        result = run_cli("run", "__SLUG__", "--config", "dev.json", "--log-format", "json", cwd=tmp_path)
        assert result.status == 1 and result.error_code == "LOGIN_FAILED"
