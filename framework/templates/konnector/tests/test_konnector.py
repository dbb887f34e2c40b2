"""__NAME__ tests: ``process`` alone, then a real run through the ``konnector`` command."""

from __future__ import annotations

import json

from framework.registry import Registry
from framework.store import DocumentStore, SqliteBackend
from framework.testing.reliability import (
    assert_converged,
    clean_then_crashed,
    embedded,
    hostile_fields,
    sandboxed,
    secret_leaks,
)
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
        assert sandbox.quota_refusals == 0, "the konnector's limiter lets through more than the API allows"


def test_wrong_api_key_is_login_failed(tmp_path):
    with __CLASS__Sandbox() as sandbox:
        config = sandbox.dev_config()
        config["fields"]["api_key"] = "wrong"
        (tmp_path / "dev.json").write_text(json.dumps(config))
        result = run_cli("run", "__SLUG__", "--config", "dev.json", "--log-format", "json", cwd=tmp_path)
        assert result.status == 1 and result.error_code == "LOGIN_FAILED"


# Reliability checks from the testing kit (framework.testing.reliability).


def test_killed_runs_rerun_to_the_store_of_a_clean_run(tmp_path):
    kills = [("request", 1), ("request", 2), ("request", 3), ("moment", 0.5)]
    setup = sandboxed(__CLASS__Sandbox, seed=1, history_days=90)
    expected, results = clean_then_crashed(tmp_path, "__SLUG__", setup, embedded(), kills)
    assert assert_converged(expected, results) >= 2


def test_hostile_fields_fail_cleanly_before_any_request(tmp_path):
    manifest = Registry.discover().get("__SLUG__")
    with __CLASS__Sandbox() as sandbox:
        assert hostile_fields("__SLUG__", manifest, sandbox.dev_config(), tmp_path) == []
        assert sandbox.requests == []


def test_secrets_never_leak(tmp_path):
    manifest = Registry.discover().get("__SLUG__")
    with __CLASS__Sandbox() as sandbox:
        config = {**sandbox.dev_config(), "parameters": {"history_days": 40}}
        (tmp_path / "dev.json").write_text(json.dumps(config))
        secrets = [config["fields"][name] for name in manifest.secret_fields()]
        leaks, result = secret_leaks("__SLUG__", manifest, secrets, tmp_path)
    assert result.status == 0, result.output
    assert leaks == []
