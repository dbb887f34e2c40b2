"""Account saves are a merge on the latest revision: an edit the platform makes to the account
while a job runs (a new password, refreshed tokens, a label) survives the job's saves."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from framework.accounts import Account, AccountStore
from framework.crypto import SecretBox, new_key
from framework.store import DocumentStore, SqliteBackend
from framework.testing.runner import run_cli
from konnectors.enedis_dataconnect.sandbox import EnedisSandbox
from tests.conftest import write_json

TODAY = date(2024, 11, 5)
ENV = {"KONNECTOR_NOW": f"{TODAY}T12:00:00+01:00"}
ACCOUNT = "enedis-dataconnect-dev"


def _accounts(work: Path) -> tuple[AccountStore, SqliteBackend]:
    data = work / "konnector-data"
    backend = SqliteBackend(data / "store.sqlite3")
    return AccountStore(DocumentStore(backend), SecretBox((data / "secret.key").read_text().strip())), backend


def platform_edit(work: Path) -> None:
    """What a platform does while the job runs: the user types a new secret, tokens are refreshed,
    the account is renamed, and a platform note is put in the account's data."""
    accounts, backend = _accounts(work)
    try:
        account = accounts.load(ACCOUNT)
        account.auth["client_secret"] = "rotated-by-the-user"
        account.oauth = {"access_token": "platform-access", "refresh_token": "platform-refresh"}
        account.extra["label"] = "Maison"
        account.state["platform_note"] = "kept"
        accounts.save(account, frozenset({"client_secret"}))
    finally:
        backend.close()


def test_a_platform_edit_during_the_job_survives_its_saves(tmp_path, reliability):
    with EnedisSandbox(seed=3) as sandbox:
        sandbox.today = TODAY
        write_json(tmp_path / "dev.json", {**sandbox.dev_config(), "parameters": {"curve_history_days": 7}})
        edited = []

        def edit_once(request) -> None:
            if "metering_data" in request.path and not edited:
                edited.append(request.path)
                platform_edit(tmp_path)

        sandbox.on_request = edit_once
        result = run_cli("run", "enedis-dataconnect", "--config", "dev.json", cwd=tmp_path, env=ENV, timeout=300)
    assert result.status == 0, result.output
    assert edited, "the sandbox saw no data request"
    accounts, backend = _accounts(tmp_path)
    try:
        account = accounts.load(ACCOUNT)
    finally:
        backend.close()
    assert account.auth["client_secret"] == "rotated-by-the-user"
    assert account.oauth == {"access_token": "platform-access", "refresh_token": "platform-refresh"}
    assert account.extra["label"] == "Maison"
    assert account.state["platform_note"] == "kept"
    assert account.state, "the job's own state (bookmarks) is written too"
    assert set(account.state) - {"platform_note"}, account.state
    reliability.record(
        "accounts",
        "platform edits the account mid-run (secret, tokens, label, data)",
        "edit from the sandbox's request hook during an enedis-dataconnect run",
        "every platform edit survives; the job's state is merged in",
    )


def test_fields_the_job_did_not_change_are_never_written_back(tmp_path):
    backend = SqliteBackend(tmp_path / "store.sqlite3")
    box = SecretBox(new_key())
    job, platform = AccountStore(DocumentStore(backend), box), AccountStore(DocumentStore(backend), box)
    try:
        platform.save(Account("a", "x", auth={"login": "bob", "password": "old"}, state={"n": 1}), frozenset())
        mine = job.load("a")
        theirs = platform.load("a")
        theirs.auth.update(login="robert", password="new")
        theirs.state.update(n=5, cursor="p")
        platform.save(theirs, frozenset())
        mine.auth["login"] = "bobby"  # both changed: the platform's wins in auth
        mine.state["n"] = 2  # both changed: the job's wins in state
        mine.secrets["token"] = "t"
        job.save(mine, frozenset())
        stored = platform.load("a")
        assert stored.auth == {"login": "robert", "password": "new"}
        assert stored.state == {"n": 2, "cursor": "p"}
        assert stored.secrets == {"token": "t"}
        assert mine.auth == stored.auth and mine.rev == stored.rev  # the job goes on with the merged account
    finally:
        backend.close()
