"""``pge-smd`` as the seed (000_f56bd80fb3d6f9a2.txt) describes PG&E Share My Data: the test
environment's paths, a Bulk request answered 200 with data or 202 then a notification,
BulkRetailCustomerInfo, the first run's history, a bookmark that moves only with stored data, a
request asked again when its notification never came, failing notifications parked, redirects
re-checked, namespace-tolerant parsing; and ``sandbox`` + ``serve`` + ``run`` from the CLI."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import pytest

from framework.receiver import Receiver, ServeOptions
from framework.registry import Registry
from framework.store import SqliteBackend
from framework.testing.inprocess import make_context
from konnectors.greenbutton.pge import NOTIFICATIONS, PgeShareMyData
from konnectors.greenbutton.pge_sandbox import ESPI, TEST_ESPI
from tests.conftest import PATH_KONNECTORS, write_json
from tests.konnectors.greenbutton.test_pge import HOURS, store, wait_for

SEED_BULK = f"{TEST_ESPI}/Batch/Bulk/50916$"
SEED_CUSTOMER = f"{TEST_ESPI}/Batch/BulkRetailCustomerInfo/50916$"


def now_env(moment: datetime) -> dict[str, str]:
    return {"KONNECTOR_NOW": moment.isoformat()}


def test_seed_flow_200_with_data_is_stored_at_once(cli, tmp_path, pge):
    pge.flow = "200"
    started = datetime.now(UTC).replace(microsecond=0)
    result = cli("run", "pge-smd", "--config", "dev.json", env=now_env(started))
    assert result.status == 0, result.output
    assert len(pge.requests_to("/datacustodian/test/oauth/v2/token")) == 1
    [bulk] = pge.requests_to(SEED_BULK)
    assert len(pge.requests_to(SEED_CUSTOMER)) == 1 and pge.requests_to(ESPI) == []
    first = datetime.fromisoformat(bulk.query["published-min"].replace("Z", "+00:00"))
    assert (started - first).days >= 4 * 365 - 2  # the first run asks for PG&E's 48 months
    hours = list(store(tmp_path).id_range(HOURS))
    assert len(hours) >= 7 * 24 - 1
    [customer] = list(store(tmp_path).id_range("org.greenbutton.customer"))
    assert customer["name"] == "SANDBOX HOUSEHOLD"
    later = started + timedelta(days=1)
    assert cli("run", "pge-smd", "--config", "dev.json", env=now_env(later)).status == 0
    second = pge.requests_to(SEED_BULK)[1]
    assert second.query["published-min"] == started.strftime("%Y-%m-%dT%H:%M:%SZ")  # from the bookmark


def test_202_bookmark_waits_for_stored_data_and_a_lost_notification_is_asked_again(cli, tmp_path, pge):
    started = datetime.now(UTC).replace(microsecond=0)
    assert cli("run", "pge-smd", "--config", "dev.json", env=now_env(started)).status == 0
    [first] = pge.requests_to(SEED_BULK)
    # No receiver: the notification is lost. A run an hour later waits; a day later it asks again.
    waiting = cli("run", "pge-smd", "--config", "dev.json", env=now_env(started + timedelta(hours=1)))
    assert "waiting for PG&E's notification" in waiting.stderr and len(pge.requests_to(SEED_BULK)) == 1
    again = cli("run", "pge-smd", "--config", "dev.json", env=now_env(started + timedelta(hours=25)))
    assert again.status == 0 and "asking again" in again.stderr
    second = pge.requests_to(SEED_BULK)[1]
    assert second.query["published-min"] == first.query["published-min"]  # the bookmark has not moved
    assert list(store(tmp_path).id_range(HOURS)) == []


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_sandbox_serve_and_run_from_the_cli_store_the_notified_data(tmp_path, operator):
    """The docs' walk-through: three commands, three processes, data stored, then the bookmark moves."""
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("COZY_")}, "KONNECTOR_PATH": str(PATH_KONNECTORS)}
    konnector = [sys.executable, "-m", "framework"]
    sandbox = subprocess.Popen(
        [
            *konnector,
            "sandbox",
            "pge-smd",
            "--set",
            f"notification_url=https://127.0.0.1:{port}/notify",
            "--set",
            f"notification_ca={operator['ca']}",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    serve = None
    try:
        lines = []
        for line in sandbox.stdout:
            lines.append(line)
            if line.startswith("}"):
                break
        config = json.loads("".join(lines))
        write_json(tmp_path / "dev.json", config)
        serve = subprocess.Popen(
            [
                *konnector,
                "serve",
                "pge-smd",
                "--config",
                "dev.json",
                "--port",
                str(port),
                "--cert",
                operator["cert"],
                "--key",
                operator["key"],
                "--client-ca",
                config["fields"]["ca_bundle"],
                "--client-subject",
                "pge-notifier.example",
            ],
            cwd=tmp_path,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for line in serve.stderr:
            if "listening for notifications" in line:
                break
        run = [*konnector, "run", "pge-smd", "--config", "dev.json"]
        first = subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert first.returncode == 0, first.stderr
        wait_for(lambda: len(store(tmp_path).find(NOTIFICATIONS, {"status": "done"}, limit=5)) == 2)
        assert len(list(store(tmp_path).id_range(HOURS))) >= 7 * 24 - 1
        assert len(list(store(tmp_path).id_range("org.greenbutton.customer"))) == 1
        second = subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert second.returncode == 0 and "bookmark moved" in second.stderr, second.stderr
    finally:
        for process in (serve, sandbox):
            if process is not None:
                process.terminate()
                process.wait(10)


@pytest.fixture
def context(tmp_path, pge):
    backend = SqliteBackend(tmp_path / "store.sqlite3")
    yield make_context(backend, Registry.discover().get("pge-smd"), pge.dev_config()["fields"])
    backend.close()


def test_a_failing_notification_is_parked_and_the_next_one_handled(context, pge):
    konnector = PgeShareMyData()
    pge.inject(404, "Not Found", path="Data/9$", times=100)
    bad = pge.batch_list([f"{pge.url}{TEST_ESPI}/Batch/Bulk/50916/Data/9"])
    good = pge.batch_list([f"{pge.url}{TEST_ESPI}/Batch/Bulk/50916/Data/0"])
    bad_id, good_id = (konnector.accept_notification(context, body) for body in (bad, good))
    konnector.handle_notifications(context)
    parked = context.store.get(NOTIFICATIONS, bad_id)
    assert parked["status"] == "pending" and parked["attempts"] == 1 and "404" in parked["last_error"]
    assert parked["retry_at"] > datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert context.store.get(NOTIFICATIONS, good_id)["status"] == "done"
    assert len(list(context.store.id_range(HOURS))) >= 7 * 24 - 1
    konnector.handle_notifications(context)  # not yet due: not tried again
    assert len(pge.requests_to("Data/9$")) == 1


def test_the_receivers_worker_is_not_blocked_by_a_failing_notification(context, pge, operator):
    options = ServeOptions(
        port=0,
        certfile=operator["cert"],
        keyfile=operator["key"],
        client_ca=pge.ca_path,
        client_subject=("pge-notifier.example",),
    )
    receiver = Receiver(PgeShareMyData(), context, options)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    pge.notification_url, pge.notification_ca = None, operator["ca"]
    try:
        wait_for(lambda: receiver.loop is not None)
        pge.inject(404, "Not Found", path="Data/9$", times=100)
        pge.notification_url = receiver.url
        pge._notify([f"{pge.url}{TEST_ESPI}/Batch/Bulk/50916/Data/9"])
        pge._notify([f"{pge.url}{TEST_ESPI}/Batch/Bulk/50916/Data/0"])
        wait_for(lambda: context.store.find(NOTIFICATIONS, {"status": "done"}, limit=1), seconds=40)
    finally:
        receiver.stop()
    assert pge.notifications == [(200, "stored"), (200, "stored")]
    [parked] = context.store.find(NOTIFICATIONS, {"status": "pending"}, limit=5)
    assert "404" in parked["last_error"] and parked["retry_at"]


class _Internal(BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        _Internal.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "6")
        self.end_headers()
        self.wfile.write(b"secret")

    def log_message(self, *args: object) -> None:
        pass


def test_a_redirect_outside_the_base_url_is_refused(context, pge):
    internal = HTTPServer(("127.0.0.1", 0), _Internal)
    threading.Thread(target=internal.serve_forever, daemon=True).start()
    try:
        target = f"http://127.0.0.1:{internal.server_address[1]}/latest/meta-data"
        pge.inject(302, b"", path="Data/0$", headers={"Location": target})
        konnector = PgeShareMyData()
        notification = konnector.accept_notification(
            context, pge.batch_list([f"{pge.url}{TEST_ESPI}/Batch/Bulk/50916/Data/0"])
        )
        konnector.handle_notifications(context)
    finally:
        internal.shutdown()
    parked = context.store.get(NOTIFICATIONS, notification)
    assert "outside" in parked["last_error"] and target in parked["last_error"]
    assert _Internal.hits == [] and list(context.store.id_range(HOURS)) == []


def test_a_redirect_under_the_base_url_is_followed(context, pge):
    pge.inject(302, b"", path="Data/5$", headers={"Location": f"{TEST_ESPI}/Batch/Bulk/50916/Data/0"})
    konnector = PgeShareMyData()
    notification = konnector.accept_notification(
        context, pge.batch_list([f"{pge.url}{TEST_ESPI}/Batch/Bulk/50916/Data/5"])
    )
    konnector.handle_notifications(context)
    assert context.store.get(NOTIFICATIONS, notification)["status"] == "done"


@pytest.mark.parametrize("namespace", ["", ' xmlns="urn:other"', ' xmlns="http://naesb.org/espi"'])
def test_notification_and_status_are_read_in_any_namespace(cli, tmp_path, pge, context, namespace):
    body = f"<BatchList{namespace}><resources>{pge.url}{TEST_ESPI}/Batch/Bulk/50916/Data/0</resources></BatchList>"
    assert PgeShareMyData().accept_notification(context, body.encode())
    status = f"<ServiceStatus{namespace}><currentStatus>1</currentStatus></ServiceStatus>"
    pge.inject(200, status, path="ReadServiceStatus$", headers={"Content-Type": "application/xml"})
    assert cli("run", "pge-smd", "--config", "dev.json").status == 0


def test_bad_data_in_a_200_answer_is_vendor_down_and_the_bookmark_stays(cli, tmp_path, pge):
    pge.flow = "200"
    bad = pge._usage(datetime.now(UTC).date() - timedelta(2), 1).replace("<espi:value>", "<espi:value>12abc", 1)
    pge.inject(200, bad, path="Bulk/50916$")
    result = cli("run", "pge-smd", "--config", "dev.json", "--log-format", "json")
    assert result.error_code == "VENDOR_DOWN" and "is not an integer" in result.lines[-2]["message"]
    assert list(store(tmp_path).id_range(HOURS)) == []
    assert cli("run", "pge-smd", "--config", "dev.json").status == 0
    first, second = pge.requests_to(SEED_BULK)
    assert first.query["published-min"][:10] == second.query["published-min"][:10]  # not moved by the failure


@pytest.mark.parametrize("shape", ["resources", "xml", "debounced"])
def test_a_notification_relayed_by_a_webhook_payload_is_handled_in_the_run(context, pge, shape):
    good = f"{pge.url}{TEST_ESPI}/Batch/Bulk/50916/Data/0?correlationID=hook"
    payloads = {
        "resources": {"resources": [good]},
        "xml": {"body": pge.batch_list([good]).decode()},
        "debounced": {"payloads": [{"resources": ["https://169.254.169.254/latest"]}, {"resources": [good]}]},
    }
    context.payload = payloads[shape]
    PgeShareMyData().start(context)
    [done] = context.store.find(NOTIFICATIONS, {"status": "done"}, limit=5)
    assert [r["uri"] for r in done["resources"]] == [good]
    assert len(list(context.store.id_range(HOURS))) >= 7 * 24 - 1
