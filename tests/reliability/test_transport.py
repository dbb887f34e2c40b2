"""Transport faults made at the TCP level by the testing kit's fault proxy, and hard limits:
resets and truncated bodies are retried then end in VENDOR_DOWN with one line; a trickled body
cannot outlive the job's time limit; bodies past the size cap are refused before memory grows."""

from __future__ import annotations

import itertools
import json
import math
import socket
import threading
import time
import tracemalloc
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import urlsplit

import pytest

from framework.accounts import Account, AccountStore
from framework.crypto import SecretBox, new_key
from framework.errors import VendorDown
from framework.http import ProviderSession, RetryPolicy
from framework.registry import Registry
from framework.store import CouchBackend, DocumentStore
from framework.store.timeseries import parent_id
from framework.testing.faultproxy import FaultProxy
from framework.testing.runner import run_cli
from konnectors.enedis_dataconnect.sandbox import EnedisSandbox
from tests.conftest import DATA, write_json
from tests.konnectors.greenbutton.test_espi import independent_total
from tests.reliability.conftest import embedded_snapshot

TODAY = date(2024, 11, 5)
ENV = {"KONNECTOR_NOW": f"{TODAY}T12:00:00+01:00"}
CURVE = "consumption_load_curve"

FAULTS = [
    ("connection reset mid-body (twice)", dict(kind="reset", after=300, times=2), 0, None),
    ("body truncated at the TCP level (twice)", dict(kind="truncate", after=300, times=2), 0, None),
    ("reset right after the request (twice)", dict(kind="reset", after=0, times=2), 0, None),
    ("resets that do not end", dict(kind="reset", after=300, times=99), 1, "VENDOR_DOWN"),
    ("truncations that do not end", dict(kind="truncate", after=300, times=99), 1, "VENDOR_DOWN"),
]


def _through_proxy(tmp_path, fault: dict | None = None, env: dict | None = None, **store):
    with EnedisSandbox(seed=1) as sandbox, FaultProxy(sandbox.url.split("//")[1].rstrip("/")) as proxy:
        sandbox.today = TODAY
        config = sandbox.dev_config()
        config["fields"]["base_url"] = proxy.url
        config["parameters"] = {"curve_history_days": 7}
        write_json(tmp_path / "dev.json", config)
        if fault:
            proxy.fault(fault.pop("kind"), path=CURVE, **fault)
        result = run_cli(
            "run", "enedis-dataconnect", "--config", "dev.json", "--log-format", "json",
            cwd=tmp_path, env={**ENV, **(env or {})}, timeout=300,
        )  # fmt: skip
        return result, proxy.applied


@pytest.mark.parametrize(("name", "fault", "status", "code"), FAULTS, ids=[f[0] for f in FAULTS])
def test_transport_faults_are_retried_then_vendor_down(tmp_path, reliability, name, fault, status, code):
    result, applied = _through_proxy(tmp_path, dict(fault))
    assert applied, "the proxy applied no fault"
    assert result.status == status, result.output
    assert result.error_code == code
    assert "Traceback" not in result.output
    curve = embedded_snapshot(tmp_path / "konnector-data").get("com-grandlyon-enedis-minute", {})
    assert len(curve) == (7 * 48 if status == 0 else 0)
    if status:
        errors = [line for line in result.lines if line["type"] == "error"]
        assert len(errors) == 1 and "did not answer" in errors[0]["message"], errors
    outcome = "success after retries" if status == 0 else "VENDOR_DOWN, one line, curve not half-written"
    reliability.record("transport faults", f"enedis-dataconnect: {name}", "TCP fault proxy", outcome)


def test_dns_failure_is_vendor_down_in_one_line(tmp_path, reliability):
    with EnedisSandbox(seed=1) as sandbox:
        config = sandbox.dev_config()
    config["fields"]["base_url"] = "https://konnector-test.invalid"
    write_json(tmp_path / "dev.json", config)
    result = run_cli("run", "enedis-dataconnect", "--config", "dev.json", "--log-format", "json", cwd=tmp_path, env=ENV)
    assert result.status == 1 and result.error_code == "VENDOR_DOWN", result.output
    assert "Traceback" not in result.output
    reliability.record("transport faults", "DNS name that does not resolve", "*.invalid host", "VENDOR_DOWN, one line")


def test_body_over_the_size_cap_is_refused(tmp_path, reliability):
    result, _ = _through_proxy(tmp_path, env={"KONNECTOR_MAX_BODY_MB": "0.004"})
    assert result.status == 1 and result.error_code == "VENDOR_DOWN", result.output
    assert "with more than 0 MiB" in result.output or "MiB" in result.lines[-2]["message"]
    reliability.record(
        "limits", "provider body over the size cap", "KONNECTOR_MAX_BODY_MB=0.004 on Enedis", "VENDOR_DOWN"
    )


class _Endless(BaseHTTPRequestHandler):
    """Answers every GET with an endless chunked body, or a chunked body cut at the TCP level."""

    cut_first: ClassVar[list[int]] = []

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if self.path == "/cut" and self.cut_first:
            self.cut_first.pop()
            self.wfile.write(b"10\r\n" + b"x" * 16 + b"\r\n40\r\n" + b"y" * 10)
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if self.path == "/cut":
            self.wfile.write(b"5\r\nwhole\r\n0\r\n\r\n")
            return
        try:
            while True:
                self.wfile.write(b"10000\r\n" + b"0" * 0x10000 + b"\r\n")
        except OSError:
            return

    def log_message(self, *args) -> None:
        return


@pytest.fixture
def endless():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Endless)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_truncated_chunked_body_is_retried(endless, reliability):
    _Endless.cut_first = [1]
    session = ProviderSession("p", base_url=endless, retry=RetryPolicy(backoff=0.01))
    assert session.get("/cut").content == b"whole"
    _Endless.cut_first = [1] * 10
    with pytest.raises(VendorDown, match="ChunkedEncodingError|ProtocolError"):
        session.get("/cut")
    reliability.record(
        "transport faults",
        "chunked body cut mid-chunk (ChunkedEncodingError)",
        "chunked server",
        "retried, then VENDOR_DOWN",
    )


def test_endless_body_is_refused_before_memory_grows(endless, reliability):
    session = ProviderSession("p", base_url=endless, max_body=8 * 1024 * 1024)
    tracemalloc.start()
    try:
        with pytest.raises(VendorDown, match="more than 8 MiB"):
            session.get("/endless")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 24 * 1024 * 1024, peak
    reliability.record(
        "limits", "endless body", "chunked stream that never ends, cap 8 MiB", f"VENDOR_DOWN, peak {peak >> 20} MiB"
    )


LIMIT = 12
"""Seconds (the job stops at 90 % of it, as the runner keeps a margin to save and report)."""


def test_a_trickled_body_does_not_outlive_the_time_limit(tmp_path, couchdb_url, db_prefix, reliability):
    key = new_key()
    manifest = Registry.discover().get("enedis-dataconnect")
    with EnedisSandbox(seed=1) as sandbox, FaultProxy(sandbox.url.split("//")[1].rstrip("/")) as proxy:
        sandbox.today = TODAY
        fields = {**sandbox.dev_config()["fields"], "base_url": proxy.url}
        backend = CouchBackend(couchdb_url, db_prefix)
        AccountStore(DocumentStore(backend), SecretBox(key)).save(
            Account("acc-1", manifest.slug, auth=fields), manifest.secret_fields()
        )
        backend.close()
        proxy.fault("trickle", path=CURVE, rate=50, times=99)
        env = {
            **ENV,
            "COZY_FIELDS": json.dumps({"account": "acc-1", "konnector": "enedis-dataconnect"}),
            "COZY_PARAMETERS": json.dumps(
                {"curve_history_days": 7, "daily_history_days": 30, "max_power_history_days": 30}
            ),
            "COZY_TIME_LIMIT": str(LIMIT),
            "COUCHDB_URL": couchdb_url,
            "KONNECTOR_DB_PREFIX": db_prefix,
            "KONNECTOR_SECRET_KEY": key,
        }
        started = time.monotonic()
        result = run_cli("run", cwd=tmp_path, env=env, timeout=120)
        elapsed = time.monotonic() - started
    assert proxy.applied
    assert result.error_code == "UNKNOWN_ERROR.PARTIAL_SYNC", result.output
    assert elapsed < LIMIT, (elapsed, result.output)
    reliability.record(
        "limits",
        f"body trickled at 50 B/s, COZY_TIME_LIMIT={LIMIT}",
        "TCP fault proxy on the curve",
        f"PARTIAL_SYNC after {elapsed:.1f} s (before the limit)",
    )


STORE_LIMIT = 14
"""Seconds: a full year of hourly Green Button readings into a slow CouchDB takes well over this
(no provider: only the store path can see the deadline)."""
BULK_RATE = 8_000
"""Bytes a second of CouchDB's bulk-write answers (~90 bytes a document): a write slow in
proportion to its size, as on a loaded server."""
LATENCY = 0.05
"""Seconds added to every other answer of the server."""
FULL_YEAR = DATA / "greenbutton" / "gba_coastal_multi_family_hourly_2011_full_year.xml"
GB_LEVELS = ("hour", "day", "month", "year")


def _aggregates_match_points(backend, prefix: str) -> int:
    """Every stored day, month and year equals the sum of its stored sources; the hours stored."""
    store = DocumentStore(backend)
    levels = {level: {d["_id"]: d["load"] for d in store.id_range(f"{prefix}.{level}")} for level in GB_LEVELS}
    for child, parent in itertools.pairwise(GB_LEVELS):
        sums: dict[str, float] = {}
        for doc_id, load in levels[child].items():
            sums[parent_id(doc_id, parent)] = sums.get(parent_id(doc_id, parent), 0.0) + load
        assert sums.keys() == levels[parent].keys(), f"{parent} periods differ from their {child} sources"
        for period, total in sums.items():
            assert levels[parent][period] == pytest.approx(total, abs=1e-6), f"{parent} {period}"
    return len(levels["hour"])


def test_a_long_store_into_a_slow_couchdb_stops_before_the_time_limit(tmp_path, couchdb_url, db_prefix, reliability):
    key = new_key()
    manifest = Registry.discover().get("greenbutton-file")
    fields = {"path": str(FULL_YEAR), "timezone": "America/Los_Angeles"}
    server = urlsplit(couchdb_url)
    with FaultProxy(f"{server.hostname}:{server.port}") as proxy:
        slow_url = f"http://{server.username}:{server.password}@127.0.0.1:{proxy.port}"
        backend = CouchBackend(couchdb_url, db_prefix)
        AccountStore(DocumentStore(backend), SecretBox(key)).save(
            Account("acc-1", manifest.slug, auth=fields), manifest.secret_fields()
        )
        proxy.fault("trickle", path="_bulk_docs", rate=BULK_RATE, times=10**6)
        proxy.fault("delay", seconds=LATENCY, times=10**6)
        env = {
            "COZY_FIELDS": json.dumps({"account": "acc-1", "konnector": "greenbutton-file"}),
            "COZY_TIME_LIMIT": str(STORE_LIMIT),
            "COUCHDB_URL": slow_url,
            "KONNECTOR_DB_PREFIX": db_prefix,
            "KONNECTOR_SECRET_KEY": key,
        }
        started = time.monotonic()
        result = run_cli("run", cwd=tmp_path, env=env, timeout=120)
        elapsed = time.monotonic() - started
        assert elapsed < STORE_LIMIT, (elapsed, result.output)
        assert result.error_code == "UNKNOWN_ERROR.PARTIAL_SYNC", result.output
        assert [line["type"] for line in result.lines].count("critical") == 1
        assert "Traceback" not in result.output
        stored = _aggregates_match_points(backend, "org.greenbutton.electricity")
        assert 0 < stored < 8760
        account = AccountStore(DocumentStore(backend), SecretBox(key)).load("acc-1")
        assert "bookmark" not in account.state, "the file was marked imported though only part of it was stored"
        rerun = run_cli("run", cwd=tmp_path, env={**env, "COZY_TIME_LIMIT": "600"}, timeout=600)
        assert rerun.status == 0, rerun.output
        assert _aggregates_match_points(backend, "org.greenbutton.electricity") == 8760
        total = math.fsum(d["load"] for d in DocumentStore(backend).id_range("org.greenbutton.electricity.hour"))
        assert total == pytest.approx(independent_total(FULL_YEAR)[1], abs=1e-6)
        backend.close()
    reliability.record(
        "limits",
        f"a year of hourly readings into a slow CouchDB (bulk answers at {BULK_RATE // 1000} kB/s, "
        f"{LATENCY} s latency), COZY_TIME_LIMIT={STORE_LIMIT}",
        "TCP fault proxy before CouchDB (greenbutton-file: no provider call, only store writes)",
        f"PARTIAL_SYNC after {elapsed:.1f} s, one critical line; {stored} of 8760 hours stored with "
        "matching aggregates, bookmark not moved; the re-run completes",
    )
