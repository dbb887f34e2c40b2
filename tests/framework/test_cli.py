"""The ``konnector`` command as a platform and a developer use it: a real subprocess,
real stores (embedded file, pouchdb-server), the probe konnector found through KONNECTOR_PATH."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from framework.accounts import DOCTYPE as ACCOUNTS
from framework.accounts import Account, AccountStore
from framework.crypto import SecretBox, new_key
from framework.store import CouchBackend, DocumentStore, SqliteBackend
from tests.conftest import write_json

REPO = Path(__file__).resolve().parents[2]
SECRET = "S3cr3t-pa55word"
FIELDS = {"login": "alice", "password": SECRET}
DAY = "io.example.probe.day"


@pytest.fixture
def ping_server():
    """A loopback server counting the requests it receives."""
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/ping", hits
    server.shutdown()


def test_list_shows_builtin_and_path_konnectors(cli):
    result = cli("list")
    assert result.status == 0
    assert "greenbutton-file" in result.stdout and "konnectors/manifests/greenbutton-file.json" in result.stdout
    assert "probe" in result.stdout and "path_konnectors/probe.json" in result.stdout


def test_every_builtin_manifest_validates(cli):
    result = cli("validate", *map(str, sorted((REPO / "konnectors" / "manifests").glob("*.json"))))
    assert result.status == 0, result.output
    assert result.stdout.count(": ok (") == len(list((REPO / "konnectors" / "manifests").glob("*.json")))


def test_broken_manifest_names_file_path_and_rule(cli, tmp_path):
    broken = json.loads((REPO / "konnectors" / "manifests" / "greenbutton-file.json").read_text())
    broken["slug"] = "Bad/Slug"
    broken["fields"]["path"]["type"] = "textarea"
    del broken["entrypoint"]
    path = write_json(tmp_path / "broken.json", broken)
    result = cli("validate", str(path))
    assert result.status == 1
    assert f"{path}: $.slug:" in result.stderr and "rule 'pattern'" in result.stderr
    assert f"{path}: $.fields.path.type:" in result.stderr and "rule 'enum'" in result.stderr
    assert "'entrypoint' is a required property (rule 'required')" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "args",
    [("bogus",), ("run",), ("run", "no-such-konnector"), ("run", "probe", "--config", "missing.json"), ("info",)],
)
def test_bad_arguments_give_one_line_and_no_traceback(cli, args):
    result = cli(*args)
    assert result.status != 0
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, result.output


def test_standalone_run_is_incremental_and_idempotent(cli, tmp_path):
    config = write_json(tmp_path / "dev.json", {"fields": FIELDS, "parameters": {"days": 3}})
    first = cli("run", "probe", "--config", str(config), "--data-dir", "data")
    assert first.status == 0, first.output
    assert "wrote 3 io.example.probe.day" in first.stderr
    store = DocumentStore(SqliteBackend(tmp_path / "data" / "store.sqlite3"))
    assert [d["_id"] for d in store.id_range(DAY)] == ["2024-01-01", "2024-01-02", "2024-01-03"]
    second = cli("run", "probe", "--config", str(config), "--data-dir", "data")
    assert second.status == 0
    assert [d["_id"] for d in store.id_range(DAY)][-1] == "2024-01-06"
    assert store.get("io.example.probe.month", "2024-01")["load"] == sum(range(1, 7))


def test_missing_or_malformed_field_fails_before_any_request(cli, tmp_path, ping_server):
    url, hits = ping_server
    config = write_json(tmp_path / "dev.json", {"fields": {"login": "Al1ce"}, "parameters": {"ping": url}})
    result = cli("run", "probe", "--config", str(config), "--log-format", "json")
    assert result.status == 1
    messages = [line["message"] for line in result.lines]
    assert messages[-1] == "LOGIN_FAILED"
    expected = "a non-empty string without control characters matching ^[a-z]+$"
    assert f"field 'login' is malformed: got 'Al1ce', expected {expected}" in messages[-2]
    assert "field 'password' is missing" in messages[-2]
    assert hits == []


@pytest.fixture
def platform(couchdb_url, db_prefix):
    """A CouchDB holding one probe account, and the environment a platform would set."""
    key = new_key()
    store = DocumentStore(CouchBackend(couchdb_url, db_prefix))
    accounts = AccountStore(store, SecretBox(key))
    accounts.save(Account("acc-1", "probe", auth=dict(FIELDS)), frozenset({"password"}))
    env = {
        "COZY_FIELDS": json.dumps({"account": "acc-1", "konnector": "probe"}),
        "COZY_PARAMETERS": json.dumps({"days": 2}),
        "COZY_JOB_ID": "job-1",
        "COUCHDB_URL": couchdb_url,
        "KONNECTOR_DB_PREFIX": db_prefix,
        "KONNECTOR_SECRET_KEY": key,
    }
    return env, store, accounts


def set_mode(accounts: AccountStore, mode: str) -> None:
    account = accounts.load("acc-1")
    account.auth["mode"] = mode
    accounts.save(account, frozenset({"password"}))


def test_platform_run_prints_only_json_lines_and_stores_in_couchdb(cli, platform):
    env, store, accounts = platform
    result = cli("run", env=env)
    assert result.status == 0, result.output
    lines = result.lines
    assert all(set(line) <= {"time", "type", "namespace", "message", "no_retry"} for line in lines)
    assert {line["type"] for line in lines} <= {"debug", "info", "warning", "error", "critical"}
    assert not [line for line in lines if line["type"] == "critical"]
    assert [d["_id"] for d in store.id_range(DAY)] == ["2024-01-01", "2024-01-02"]
    assert accounts.load("acc-1").state["bookmark"] == "2024-01-03"


@pytest.mark.parametrize(
    ("mode", "code", "message"),
    [
        ("fail", "LOGIN_FAILED", "the provider refused login alice"),
        ("crash", "UNKNOWN_ERROR", "RuntimeError: boom with password ***"),
        ("intrude", "UNKNOWN_ERROR", "may not write doctype 'io.cozy.files'"),
    ],
)
def test_failing_job_ends_with_one_critical_line_and_exit_1(cli, platform, mode, code, message):
    env, store, accounts = platform
    set_mode(accounts, mode)
    result = cli("run", env=env)
    assert result.status == 1
    lines = result.lines
    critical = [line for line in lines if line["type"] == "critical"]
    assert critical == [lines[-1]] and critical[0]["message"] == code
    assert any(message in line["message"] for line in lines if line["type"] == "error")
    assert list(store.id_range("io.cozy.files")) == []


def test_secrets_appear_in_no_output_and_not_in_clear_in_store(cli, platform, couchdb_url, db_prefix):
    env, store, accounts = platform
    for mode in ("ok", "crash"):
        set_mode(accounts, mode)
        result = cli("run", "--debug", env=env)
        assert "fields are" in result.stdout and "got token" in result.stdout
        assert SECRET not in result.output and SECRET[::-1] not in result.output
    raw = json.dumps(store.get(ACCOUNTS, "acc-1"))
    assert SECRET not in raw and SECRET[::-1] not in raw
    assert accounts.load("acc-1").secrets["token"] == "tok-" + SECRET[::-1]


def test_deadline_stops_cleanly_with_partial_sync_then_resumes(cli, platform):
    env, store, accounts = platform
    slow = {**env, "COZY_TIME_LIMIT": "1", "COZY_PARAMETERS": json.dumps({"days": 30, "pause": 0.2})}
    result = cli("run", env=slow)
    assert result.status == 1 and result.lines[-1]["message"] == "UNKNOWN_ERROR.PARTIAL_SYNC"
    stored = [d["_id"] for d in store.id_range(DAY)]
    assert 1 <= len(stored) < 30
    assert accounts.load("acc-1").state["bookmark"] > stored[-1]
    resumed = cli("run", env={**env, "COZY_PARAMETERS": json.dumps({"days": 2})})
    assert resumed.status == 0
    assert len(list(store.id_range(DAY))) == len(stored) + 2


def test_platform_deletion_runs_hook_on_the_deleted_account(cli, platform):
    env, store, _accounts = platform
    assert cli("run", env=env).status == 0
    doc = store.get(ACCOUNTS, "acc-1")
    store.delete(ACCOUNTS, [doc])
    cozy_fields = {"account": "acc-1", "konnector": "probe", "account_deleted": True, "account_rev": doc["_rev"]}
    result = cli("run", env={**env, "COZY_FIELDS": json.dumps(cozy_fields)})
    assert result.status == 0, result.output
    assert any("revoking consent of alice (bookmark 2024-01-03)" in line["message"] for line in result.lines)


def test_standalone_delete_account_revokes_then_removes(cli, tmp_path):
    config = write_json(tmp_path / "dev.json", {"fields": FIELDS})
    assert cli("run", "probe", "--config", str(config)).status == 0
    result = cli("delete-account", "probe", "--account", "probe-dev")
    assert result.status == 0, result.output
    assert "revoking consent of alice (bookmark 2024-01-04)" in result.stderr
    store = DocumentStore(SqliteBackend(tmp_path / "konnector-data" / "store.sqlite3"))
    assert store.get(ACCOUNTS, "probe-dev") is None


def test_delete_account_error_is_reported_like_a_job_error(cli, tmp_path):
    result = cli("delete-account", "probe", "--account", "nobody", "--log-format", "json")
    assert result.status == 1
    assert result.lines[-1] == {**result.lines[-1], "type": "critical", "message": "UNKNOWN_ERROR"}
    assert "no account 'nobody' to use" in result.lines[-2]["message"]


@pytest.mark.parametrize("command", ["list", "info", "validate", "run", "delete-account", "keygen"])
def test_every_command_has_help(cli, command):
    result = cli(command, "--help")
    assert result.status == 0 and result.stdout.startswith("Usage: konnector " + command)


def test_info_shows_fields_and_permissions(cli):
    result = cli("info", "probe")
    assert result.status == 0
    assert "login: text, required" in result.stdout and "mode: dropdown, optional" in result.stdout
    assert "io.example.probe.day (ALL)" in result.stdout


def test_manual_and_scheduled_runs_are_told_apart(cli, platform):
    env, _, _ = platform
    scheduled = cli("run", env=env)
    manual = cli("run", env={**env, "COZY_JOB_MANUAL_EXECUTION": "true"})
    assert any(line["message"] == "scheduled run for account acc-1" for line in scheduled.lines)
    assert any(line["message"] == "manual run for account acc-1" for line in manual.lines)


def test_standalone_key_file_is_private_and_secrets_sealed(cli, tmp_path):
    config = write_json(tmp_path / "dev.json", {"fields": FIELDS})
    assert cli("run", "probe", "--config", str(config)).status == 0
    key_file = tmp_path / "konnector-data" / "secret.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert SECRET.encode() not in (tmp_path / "konnector-data" / "store.sqlite3").read_bytes()


def test_terminal_shows_a_progress_line(tmp_path):
    import os
    import pty
    import subprocess
    import sys

    from tests.conftest import PATH_KONNECTORS

    config = write_json(tmp_path / "dev.json", {"fields": FIELDS, "parameters": {"days": 4}})
    controller, terminal = pty.openpty()
    env = {**os.environ, "KONNECTOR_PATH": str(PATH_KONNECTORS)}
    env.pop("COZY_FIELDS", None)
    done = subprocess.run(
        [sys.executable, "-m", "framework", "run", "probe", "--config", str(config)],
        stderr=terminal,
        stdout=subprocess.DEVNULL,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    assert done.returncode == 0
    assert b"\r\x1b[K  6 documents written: 4 day, 1 month, 1 year" in shown
