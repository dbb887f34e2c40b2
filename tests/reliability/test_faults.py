"""Provider and store faults, hostile input, permissions: each ends in success after retries or
in the right error code with a message a user can act on, and never in half-written data."""

from __future__ import annotations

from datetime import date

import pytest

from framework.errors import StoreError
from framework.safexml import UnsafeXml, parse
from framework.store import db_name
from framework.testing.runner import run_cli
from konnectors.enedis_dataconnect.sandbox import EnedisSandbox
from konnectors.grdf_adict import ndjson
from tests.conftest import PATH_KONNECTORS, write_json
from tests.reliability.conftest import embedded_snapshot

TODAY = date(2024, 11, 5)
ENV = {"KONNECTOR_NOW": f"{TODAY}T12:00:00+01:00", "KONNECTOR_PATH": str(PATH_KONNECTORS)}
CURVE = "consumption_load_curve"

PROVIDER_FAULTS = [
    ("5xx burst (3 × 503)", dict(status=503, body=b"", times=3), 0, None),
    ("429 with Retry-After", dict(status=429, body={"error": "Quota Q3"}, headers={"Retry-After": "1"}), 0, None),
    ("429 without Retry-After", dict(status=429, body={"error": "Quota Q3"}, times=2), 0, None),
    ("token expired mid-run (401)", dict(status=401, body={"error": "invalid_token"}), 0, None),
    (
        "malformed JSON",
        dict(status=200, body=b"{not json", headers={"Content-Type": "application/json"}),
        1,
        "VENDOR_DOWN",
    ),
    (
        "truncated body",
        dict(
            status=200,
            body=b'{"meter_reading": {"interval_reading": [{"val',
            headers={"Content-Type": "application/json"},
        ),
        1,
        "VENDOR_DOWN",
    ),
    (
        "schema change (missing field)",
        dict(status=200, body={"meter_reading": {"interval_reading": [{"value": "1"}]}}),
        1,
        "UNKNOWN_ERROR.PARTIAL_SYNC",  # each reading is checked alone: none usable in the window asked
    ),
    (
        "schema change (no meter_reading)",
        dict(status=200, body={"reading": []}),
        1,
        "VENDOR_DOWN",
    ),
    ("5xx that does not end", dict(status=502, body=b"", times=99), 1, "VENDOR_DOWN"),
]


@pytest.mark.parametrize(("name", "fault", "status", "code"), PROVIDER_FAULTS, ids=[f[0] for f in PROVIDER_FAULTS])
def test_provider_faults(tmp_path, reliability, name, fault, status, code):
    with EnedisSandbox(seed=1) as sandbox:
        sandbox.today = TODAY
        config = sandbox.dev_config()
        config["parameters"] = {"curve_history_days": 7}
        write_json(tmp_path / "dev.json", config)
        fault = dict(fault)
        sandbox.inject(fault.pop("status"), fault.pop("body"), path=CURVE, **fault)
        result = run_cli(
            "run",
            "enedis-dataconnect",
            "--config",
            "dev.json",
            "--log-format",
            "json",
            cwd=tmp_path,
            env=ENV,
            timeout=300,
        )
    assert result.status == status, result.output
    assert result.error_code == code
    snapshot = embedded_snapshot(tmp_path / "konnector-data")
    curve = snapshot.get("com-grandlyon-enedis-minute", {})
    assert len(curve) == (7 * 48 if status == 0 else 0)
    assert len(snapshot["com-grandlyon-enedis-day"]) == 3 * 365  # what came before the fault is kept whole
    outcome = "success after retries" if status == 0 else f"{code} with a message; curve not half-written"
    reliability.record("provider faults", f"enedis-dataconnect: {name}", "sandbox fault switch", outcome)


def test_couchdb_unreachable_at_start_is_a_clear_error(tmp_path, reliability):
    write_json(tmp_path / "dev.json", {"fields": {"login": "bob", "password": "hunter22"}})
    result = run_cli(
        "run",
        "probe",
        "--config",
        "dev.json",
        "--couchdb",
        "http://admin:pw@127.0.0.1:9",
        "--log-format",
        "json",
        cwd=tmp_path,
        env=ENV,
    )
    assert result.status == 1 and result.error_code == "UNKNOWN_ERROR.STORE_UNREACHABLE"
    message = result.lines[-2]["message"]
    assert "CouchDB at http://127.0.0.1:9 is unreachable" in message and "5: ConnectionError" in message
    assert len([line for line in result.lines if line["type"] == "error"]) == 1
    assert "pw@" not in result.output and "Traceback" not in result.output
    reliability.record(
        "store faults",
        "CouchDB unreachable at start",
        "closed port",
        "UNKNOWN_ERROR.STORE_UNREACHABLE after 5 tries, one line, says which server, no credentials shown",
    )


HOSTILE_XML = {
    "XXE": b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
    "billion laughs": b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><l>&b;</l>',
}


@pytest.mark.parametrize("kind", list(HOSTILE_XML))
def test_hostile_xml_is_refused(reliability, kind):
    with pytest.raises(UnsafeXml, match="DTD"):
        parse(HOSTILE_XML[kind], name=kind)
    reliability.record("hostile input", f"{kind} XML", "safe XML parser (every XML konnector)", "refused: DTD")


def test_oversized_bodies_and_ndjson_bombs_are_refused(reliability, monkeypatch):
    with pytest.raises(UnsafeXml, match="limit"):
        parse(b"<a>" + b"x" * 2000 + b"</a>", max_bytes=1000)
    monkeypatch.setattr(ndjson, "MAX_BYTES", 1000)
    with pytest.raises(Exception, match="larger than"):
        list(ndjson.objects(b'{"a": 1}\n' * 500))
    reliability.record("hostile input", "oversized XML, NDJSON bomb", "size limits before parsing", "refused")


@pytest.mark.parametrize("doctype", ["io.x?rev=1", "io.x#y", "IO.X", "io.x\n", "../_users"])
def test_db_name_injection_is_refused(reliability, doctype):
    with pytest.raises(StoreError, match="CouchDB refuses"):
        db_name("", doctype)
    if doctype == "../_users":
        reliability.record(
            "hostile input",
            "database name injection through a doctype",
            "5 crafted doctypes",
            "refused before any request",
        )


def test_control_characters_in_fields_are_refused_before_any_request(tmp_path, reliability):
    write_json(tmp_path / "dev.json", {"fields": {"login": "bob", "password": "pw\r\nX-Injected: 1"}})
    result = run_cli("run", "probe", "--config", "dev.json", "--log-format", "json", cwd=tmp_path, env=ENV)
    assert result.error_code == "LOGIN_FAILED"
    assert "field 'password' is malformed: got (hidden)" in result.lines[-2]["message"]
    reliability.record(
        "hostile input",
        "account field with control characters",
        "CR LF in a password",
        "LOGIN_FAILED naming the field, value not shown",
    )


def test_manifest_tricks_are_refused(tmp_path, reliability):
    bad = {
        "name": "x",
        "slug": "../../etc",
        "type": "konnector",
        "version": "1.0.0",
        "entrypoint": "os:system",
        "permissions": {"a": {"type": "io.a.b"}},
    }
    path = write_json(tmp_path / "evil.json", bad)
    result = run_cli("validate", str(path), cwd=tmp_path)
    assert result.status == 1 and "$.slug" in result.stderr
    (tmp_path / "extra").mkdir()
    write_json(tmp_path / "extra" / "evil.json", {**bad, "slug": "evil"})
    listed = run_cli("list", cwd=tmp_path, env={"KONNECTOR_PATH": str(tmp_path / "extra")})
    assert listed.status == 1 and "is not a module of" in listed.stderr
    reliability.record(
        "hostile input",
        "manifest with a path slug, entrypoint outside its package",
        "validate and discovery",
        "refused with file, JSON path and rule",
    )


def test_permission_outside_the_manifest_is_refused(tmp_path, reliability):
    write_json(tmp_path / "dev.json", {"fields": {"login": "bob", "password": "hunter22", "mode": "intrude"}})
    result = run_cli("run", "probe", "--config", "dev.json", "--log-format", "json", cwd=tmp_path, env=ENV)
    assert result.error_code == "UNKNOWN_ERROR" and "may not write doctype 'io.cozy.files'" in result.output
    assert "io-cozy-files" not in embedded_snapshot(tmp_path / "konnector-data")
    reliability.record(
        "permissions", "writing a doctype the manifest does not grant", "probe konnector", "refused, nothing written"
    )
