"""``pge-smd``: the Bulk flow end to end — ``konnector run`` asks, the sandbox notifies
``konnector serve`` over mutual TLS, the receiver stores and the worker fetches — plus a
receiver killed right after acknowledging, hostile notifications, and PG&E's error cases."""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from framework.store import DocumentStore, SqliteBackend
from konnectors.greenbutton.pge_sandbox import PgeSandbox
from tests.conftest import PATH_KONNECTORS, write_json
from tests.konnectors.greenbutton.test_espi import SAMPLES, independent_total

HOURS = "org.greenbutton.electricity.hour"


class Serve:
    """``konnector serve pge-smd`` as a subprocess; ``url`` read from its first log line."""

    def __init__(self, tmp_path: Path, operator: dict, pge: PgeSandbox, *extra: str) -> None:
        command = [
            sys.executable,
            "-m",
            "framework",
            "serve",
            "pge-smd",
            "--config",
            "dev.json",
            "--port",
            "0",
            "--cert",
            operator["cert"],
            "--key",
            operator["key"],
            "--client-ca",
            pge.ca_path,
            "--client-subject",
            "pge-notifier.example",
            *extra,
        ]
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("COZY_")},
            "KONNECTOR_PATH": str(PATH_KONNECTORS),
        }
        self.process = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
        for line in self.process.stderr:
            if match := re.search(r"listening for notifications on (\S+)", line):
                self.url = match.group(1)
                break
        else:
            raise AssertionError("konnector serve did not start")
        pge.notification_url = self.url

    def stop(self, sig: int = signal.SIGTERM) -> None:
        self.process.send_signal(sig)
        self.process.wait(10)


def store(tmp_path) -> DocumentStore:
    return DocumentStore(SqliteBackend(tmp_path / "konnector-data" / "store.sqlite3"))


def wait_for(predicate, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def stored_hours(tmp_path) -> int:
    try:
        return len(list(store(tmp_path).id_range(HOURS)))
    except Exception:
        return 0


def test_bulk_request_notification_and_resources_end_to_end(cli, tmp_path, operator, pge):
    pge.sample_files = [SAMPLES / "pge_smd_real_hourly_2019-10-23_two_blocks.xml"]
    serve = Serve(tmp_path, operator, pge)
    try:
        result = cli("run", "pge-smd", "--config", "dev.json")
        assert result.status == 0, result.output
        wait_for(lambda: len(pge.notifications) == 2)  # the Bulk data, and the BulkRetailCustomerInfo
        assert [status for status, _ in pge.notifications] == [200, 200]
        wait_for(lambda: len(store(tmp_path).find("org.greenbutton.notification", {"status": "done"}, limit=5)) == 2)
    finally:
        serve.stop()
    hours = list(store(tmp_path).id_range(HOURS))
    synthetic = [h for h in hours if h["_id"].startswith("5391320451/") and h["year"] > 2019]
    assert len(synthetic) >= 7 * 24 - 1
    sample = [h for h in hours if h["year"] == 2019]
    assert math.fsum(h["load"] for h in sample) == pytest.approx(
        independent_total(SAMPLES / "pge_smd_real_hourly_2019-10-23_two_blocks.xml")[1], abs=1e-6
    )
    [customer] = list(store(tmp_path).id_range("org.greenbutton.customer"))
    assert (customer["kind"], customer["name"]) == ("Customer", "SANDBOX HOUSEHOLD")
    assert len(pge.requests_to("/datacustodian/oauth/v2/token")) <= 2


def test_receiver_killed_right_after_acknowledging_loses_nothing(cli, tmp_path, operator, pge):
    serve = Serve(tmp_path, operator, pge, "--no-worker")
    assert cli("run", "pge-smd", "--config", "dev.json").status == 0
    wait_for(lambda: pge.notifications)
    assert pge.notifications[0][0] == 200
    serve.stop(signal.SIGKILL)
    assert stored_hours(tmp_path) == 0
    restarted = Serve(tmp_path, operator, pge)
    try:
        wait_for(lambda: stored_hours(tmp_path) >= 7 * 24 - 1)
    finally:
        restarted.stop()


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (
            b'<BatchList xmlns="http://naesb.org/espi"><resources>https://169.254.169.254/latest</resources></BatchList>',
            400,
            "is not under",
        ),
        (
            b'<?xml version="1.0"?><!DOCTYPE b [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b'<BatchList xmlns="http://naesb.org/espi"><resources>&x;</resources></BatchList>',
            400,
            "DTD",
        ),
        (b"<BatchList>" + b" " * (2 * 1024 * 1024) + b"</BatchList>", 413, "too large"),
    ],
)
def test_hostile_notifications_are_refused_and_nothing_is_stored(tmp_path, operator, pge, body, status, says):
    serve = Serve(tmp_path, operator, pge)
    try:
        answer = requests.post(serve.url, data=body, cert=pge.notifier_cert, verify=operator["ca"], timeout=10)
    finally:
        serve.stop()
    assert answer.status_code == status
    logged = serve.process.stderr.read()
    assert "notification refused" in logged and says in (logged + answer.text)
    assert store(tmp_path).find("org.greenbutton.notification", {"status": {"$exists": True}}, limit=5) == []


def test_receiver_requires_pge_client_certificate(tmp_path, operator, pge):
    serve = Serve(tmp_path, operator, pge)
    try:
        with pytest.raises(requests.exceptions.RequestException):
            requests.post(serve.url, data=b"<x/>", verify=operator["ca"], timeout=10)
    finally:
        serve.stop()


@pytest.mark.parametrize("token_format", ["json-string", "xml"])
def test_token_forms_are_accepted(cli, tmp_path, pge, token_format):
    pge.token_format = token_format
    assert cli("run", "pge-smd", "--config", "dev.json").status == 0
    assert len(pge.requests_to("Batch/Bulk/50916$")) == 1


def test_unregistered_certificate_is_login_failed(cli, tmp_path, pge):
    config = pge.dev_config()
    config["fields"]["cert_path"], config["fields"]["key_path"] = pge.issue_client_cert("someone-else")
    write_json(tmp_path / "dev.json", config)
    result = cli("run", "pge-smd", "--config", "dev.json", "--log-format", "json")
    assert result.status == 1 and result.error_code == "LOGIN_FAILED"
    assert "refused the client certificate" in result.lines[-2]["message"]


def test_service_down_is_maintenance(cli, tmp_path, pge):
    pge.status = "0"
    result = cli("run", "pge-smd", "--config", "dev.json", "--log-format", "json")
    assert result.error_code == "MAINTENANCE"


def test_expired_token_is_renewed_once(cli, tmp_path, pge):
    assert cli("run", "pge-smd", "--config", "dev.json").status == 0
    pge.expire_tokens()
    assert cli("run", "pge-smd", "--config", "dev.json").status == 0
    assert len(pge.requests_to("/token")) == 2
