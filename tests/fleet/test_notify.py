"""A provider's notification, stored by `konnector serve`, becomes a job that any worker handles."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import requests

from framework.fleet.worker import wait_for

KONNECTORS = Path(__file__).parent / "konnectors"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_notification_becomes_a_job(fleet, db_prefix, tmp_path):
    fleet.env["KONNECTOR_PATH"] += os.pathsep + str(KONNECTORS)
    account = f"{db_prefix}notified"
    (tmp_path / "dev.json").write_text(json.dumps({"fields": {"login": "ada"}}))
    port = free_port()
    env = fleet.env | {"KONNECTOR_NOTIFIED_HOOK": "framework.fleet.notify:enqueue"}
    command = ["serve", "notified", "--config", "dev.json", "--account", account, "--couchdb", env["COUCHDB_URL"]]
    receiver = subprocess.Popen(
        [sys.executable, "-m", "framework", *command, "--port", str(port), "--no-worker"],
        env=env,
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/notify"
        assert wait_for(lambda: _answers(url), 30), receiver.stderr.read() if receiver.poll() is not None else ""
        answer = requests.post(url, data=b"<BatchList>one</BatchList>", timeout=10)
        assert answer.status_code == 200 and answer.text == "stored"
        (job,) = fleet.jobs.list()
        assert job["message"] == {"konnector": "notified", "account": account} and job["state"] == "queued"
        assert fleet.store.find("io.example.notification", {"status": "new"}, limit=10)  # stored, not handled yet
        fleet.worker()
        assert wait_for(lambda: fleet.finished(job["_id"]), 60)
        assert fleet.jobs.get(job["_id"])["state"] == "done"
        (handled,) = fleet.store.find("io.example.notification", {}, limit=10)
        assert handled["status"] == "handled" and handled["body"] == "<BatchList>one</BatchList>"
    finally:
        receiver.send_signal(signal.SIGTERM)
        receiver.wait(15)


def _answers(url: str) -> bool:
    try:
        requests.get(url, timeout=1)
        return True
    except requests.ConnectionError:
        return False
