"""Stopping a run: SIGINT and SIGTERM end it cleanly with exactly one report, and no CLI path
prints a traceback (unwritable data dir, bad parameter value)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from framework.testing.runner import run_cli
from tests.conftest import PATH_KONNECTORS, write_json
from tests.reliability.conftest import embedded_snapshot

ENV = {"KONNECTOR_PATH": str(PATH_KONNECTORS)}
CONFIG = {"fields": {"login": "bob", "password": "hunter22"}, "parameters": {"days": 60, "pause": 0.05}}


def _started(tmp_path, log_format: str) -> subprocess.Popen:
    write_json(tmp_path / "dev.json", CONFIG)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("COZY_")}
    return subprocess.Popen(
        [sys.executable, "-m", "framework", "run", "probe", "--config", "dev.json", "--log-format", log_format],
        cwd=tmp_path,
        env={**environment, **ENV},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("log_format", ["json", "human"])
def test_a_signal_stops_the_run_with_one_report(tmp_path, reliability, signum, log_format):
    process = _started(tmp_path, log_format)
    time.sleep(2.5)
    assert process.poll() is None, process.communicate()
    process.send_signal(signum)
    process.send_signal(signum)  # impatient: a second one must not add a report
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 1
    assert "Traceback" not in stdout + stderr and "aborted" not in stdout + stderr
    name = signal.Signals(signum).name
    if log_format == "json":
        lines = [json.loads(line) for line in stdout.splitlines()]
        critical = [line for line in lines if line["type"] == "critical"]
        assert [line["message"] for line in critical] == ["UNKNOWN_ERROR.PARTIAL_SYNC"], stdout
        assert lines[-1] == critical[0] and f"stopped by {name}" in lines[-2]["message"]
    else:
        assert stderr.count(f"stopped by {name}") == 1 and stderr.count("critical") == 1, stderr
    rerun = run_cli("run", "probe", "--config", "dev.json", cwd=tmp_path, env=ENV, timeout=60)
    assert rerun.status == 0, rerun.output
    assert len(embedded_snapshot(tmp_path / "konnector-data")["io-example-probe-day"]) == 60
    reliability.record(
        "stopping",
        f"{name} during a run ({log_format} logs), sent twice",
        "probe konnector mid-run",
        "one PARTIAL_SYNC report, no traceback; the re-run completes",
    )


@pytest.mark.parametrize("log_format", ["json", "human"])
def test_a_data_dir_that_cannot_be_created_is_one_clear_line(tmp_path, reliability, log_format):
    (tmp_path / "blocker").write_text("a file, not a directory")
    write_json(tmp_path / "dev.json", {"fields": {"login": "bob", "password": "hunter22"}})
    result = run_cli(
        "run", "probe", "--config", "dev.json", "--data-dir", "blocker/data", "--log-format", log_format,
        cwd=tmp_path, env=ENV,
    )  # fmt: skip
    assert result.status == 1
    assert "Traceback" not in result.output
    assert "cannot use the data directory blocker/data" in result.output
    if log_format == "json":
        assert result.error_code == "UNKNOWN_ERROR"
        reliability.record(
            "CLI errors", "data dir that cannot be created", "a file in the way", "one line, no traceback"
        )


def test_a_bad_parameter_value_has_no_traceback(tmp_path, reliability):
    write_json(tmp_path / "dev.json", {"fields": {"login": "bob", "password": "pw"}, "parameters": {"days": "many"}})
    result = run_cli("run", "probe", "--config", "dev.json", "--log-format", "json", cwd=tmp_path, env=ENV)
    assert result.status == 1 and result.error_code == "UNKNOWN_ERROR"
    assert "Traceback" not in result.output
    assert [line["type"] for line in result.lines].count("error") == 1
    reliability.record("CLI errors", "parameter of the wrong type", "days: 'many'", "one line, no traceback")
