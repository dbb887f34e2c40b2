"""The two hooks fleet mode plugs into a job: the limiter (per application) and the write fence."""

from __future__ import annotations

import pytest

from framework.errors import KonnectorError
from framework.http import RateLimiter, set_limiter_hook
from framework.registry import Registry
from framework.store import SqliteBackend
from framework.testing.inprocess import make_context

FIELDS = {"client_id": "app-42", "client_secret": "s3cret", "base_url": "http://127.0.0.1:1"}


def refuse() -> None:
    raise KonnectorError("this job lost its account's lease")


@pytest.fixture
def context(tmp_path):
    backend = SqliteBackend(tmp_path / "store.sqlite3")
    yield lambda: make_context(backend, Registry.discover().get("enedis-dataconnect"), FIELDS)
    backend.close()


def test_every_limiter_goes_through_the_hook_with_provider_and_application(context):
    seen = []
    set_limiter_hook(lambda provider, application, limiter: seen.append((provider, application)) or limiter)
    try:
        ctx = context()
        ctx.http("enedis", limiter=RateLimiter(5, capacity=1))
        ctx.http("unlimited")
        ctx.rate_limit("signals", 1, 900)
    finally:
        set_limiter_hook(None)
    assert seen == [("enedis", "app-42"), ("enedis-dataconnect.signals", "app-42")]


def test_the_fence_named_by_the_environment_stops_state_writes(context, monkeypatch):
    ctx = context()
    ctx.state["bookmark"] = "before"
    ctx.save_state()
    monkeypatch.setenv("KONNECTOR_FENCE_HOOK", f"{__name__}:refuse")
    fenced = context()
    fenced.state["bookmark"] = "after"
    with pytest.raises(KonnectorError, match="lost its account's lease"):
        fenced.save_state()
    assert fenced.accounts.load(fenced.account.id).state["bookmark"] == "before"


def test_fleet_commands_without_their_settings_say_what_is_missing_in_one_line(tmp_path):
    from framework.testing.runner import run_cli

    for command in (["worker"], ["schedule"], ["jobs"], ["enqueue", "probe", "--account", "a"]):
        done = run_cli(*command, env={"KONNECTOR_FLEET_REDIS": "", "COUCHDB_URL": ""}, cwd=tmp_path)
        assert done.status == 1 and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "KONNECTOR_FLEET_REDIS" in run_cli("worker", env={"KONNECTOR_FLEET_REDIS": ""}, cwd=tmp_path).stderr
