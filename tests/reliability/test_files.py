"""Files that hold secrets are private, and a key that is exposed or lost is never used silently."""

from __future__ import annotations

import os
import stat

from framework.testing.runner import run_cli
from tests.conftest import PATH_KONNECTORS, write_json
from tests.reliability.conftest import embedded_snapshot

ENV = {"KONNECTOR_PATH": str(PATH_KONNECTORS)}
PASSWORD = "hunter22-secret"


def _run(tmp_path, *extra: str, fmt: str = "json"):
    write_json(tmp_path / "dev.json", {"fields": {"login": "bob", "password": PASSWORD}})
    return run_cli("run", "probe", "--config", "dev.json", "--log-format", fmt, *extra, cwd=tmp_path, env=ENV)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_store_key_and_data_dir_are_private(tmp_path, reliability):
    os.umask(0o022)
    assert _run(tmp_path).status == 0
    data = tmp_path / "konnector-data"
    assert _mode(data / "store.sqlite3") == 0o600
    assert _mode(data / "secret.key") == 0o600
    assert _mode(data) & 0o077 == 0
    for extra in data.glob("store.sqlite3-*"):
        assert _mode(extra) & 0o077 == 0, extra
    reliability.record("secrets", "files of the embedded store", "umask 022", "store, WAL, key 0600; data dir 0700")


def test_a_key_file_others_can_read_is_refused(tmp_path, reliability):
    assert _run(tmp_path).status == 0
    key = tmp_path / "konnector-data" / "secret.key"
    key.chmod(0o644)
    result = _run(tmp_path)
    assert result.status == 1 and result.error_code == "UNKNOWN_ERROR"
    assert "may be read by other users (mode 0644)" in result.lines[-2]["message"]
    assert "Traceback" not in result.output
    reliability.record("secrets", "key file readable by others", "chmod 644 secret.key", "refused, says chmod 600")


def test_a_lost_key_is_never_silently_replaced(tmp_path, reliability):
    assert _run(tmp_path).status == 0
    key = tmp_path / "konnector-data" / "secret.key"
    key.unlink()
    result = _run(tmp_path)
    assert result.status == 1 and not key.exists()
    message = result.lines[-2]["message"]
    assert "is missing, but the store already holds account secrets" in message and "--config" in message
    key.write_text(run_cli("keygen").stdout)  # the recovery the message gives
    key.chmod(0o600)
    recovered = _run(tmp_path)
    assert recovered.status == 0, recovered.output
    assert "cannot be read with this key: they are replaced" in recovered.output
    assert len(embedded_snapshot(tmp_path / "konnector-data")["io-example-probe-day"]) == 6  # bookmark kept
    reliability.record(
        "secrets",
        "key file deleted",
        "rm secret.key, run again",
        "refused with the recovery steps; after them the credentials are re-entered",
    )


def test_a_couchdb_password_with_url_characters_never_shows(tmp_path, reliability):
    password = "p/w#frag?q=1"
    result = _run(tmp_path, "--couchdb", f"http://admin:{password}@127.0.0.1:9")
    assert result.status == 1 and "Traceback" not in result.output
    assert "127.0.0.1:9 is unreachable" in result.output
    for piece in (password, "p/w", "frag?q"):
        assert piece not in result.output
    reliability.record("secrets", "CouchDB password with / # ? unencoded", "--couchdb URL", "never shown, host right")
