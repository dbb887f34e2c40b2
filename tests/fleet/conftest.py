"""A fleet for tests: CouchDB store, accounts of the probe konnector, worker processes, the CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from framework.accounts import Account, AccountStore
from framework.crypto import SecretBox, new_key
from framework.fleet.app import enqueue, make_app
from framework.fleet.jobs import Jobs
from framework.fleet.settings import Settings
from framework.registry import Registry
from framework.store import CouchBackend, DocumentStore, Writer
from framework.testing.runner import run_cli
from tests.conftest import PATH_KONNECTORS

FAST = {
    "KONNECTOR_VISIBILITY_TIMEOUT": "4",  # a dead worker's job comes back after 4 s
    "KONNECTOR_LEASE_SECONDS": "2",
    "KONNECTOR_RETRY_SECONDS": "0.5",
    "COZY_TIME_LIMIT": "60",
}


@dataclass
class Fleet:
    env: dict[str, str]
    store: DocumentStore
    key: str
    workers: list[subprocess.Popen] = field(default_factory=list)

    @property
    def jobs(self) -> Jobs:
        return Jobs(self.store)

    def account(self, account_id: str, mode: str = "ok", store: DocumentStore | None = None) -> None:
        manifest = Registry.discover([PATH_KONNECTORS]).get("probe")
        accounts = AccountStore(store or self.store, SecretBox(self.key))
        account = accounts.find(account_id) or Account(account_id, "probe")
        account.auth = {"login": "ada", "password": "pw-" + account_id, "mode": mode}
        accounts.save(account, manifest.secret_fields())

    def worker(self, concurrency: int = 1) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-m", "framework", "worker", "--concurrency", str(concurrency)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # SIGKILL of its group: the machine it ran on is gone
        )
        self.workers.append(process)
        return process

    def kill(self, process: subprocess.Popen) -> None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def automatic(self, account_id: str) -> str:
        """Queue a job as the scheduler does (not manual); its id."""
        job = self.jobs.create("probe", account_id, manual=False)
        enqueue(make_app(Settings.from_environment(self.env)), job["_id"])
        return job["_id"]

    def finished(self, job_id: str) -> bool:
        job = self.jobs.get(job_id)
        return job is not None and job["state"] in ("done", "errored")

    def cli(self, *args: str, env: dict[str, str] | None = None, timeout: float = 60):
        return run_cli(*args, env={**self.env, **(env or {})}, timeout=timeout)

    def stop(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.workers:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture
def fleet(redis_url, couchdb_url, db_prefix) -> Iterator[Fleet]:
    key = new_key()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KONNECTOR_", "COZY_"))}
    env |= FAST | {
        "KONNECTOR_FLEET_REDIS": redis_url,
        "KONNECTOR_BROKER_URL": redis_url.rsplit("/", 1)[0] + "/1",
        "COUCHDB_URL": couchdb_url,
        "KONNECTOR_DB_PREFIX": db_prefix,
        "KONNECTOR_SECRET_KEY": key,
        "KONNECTOR_PATH": str(PATH_KONNECTORS),
    }
    import redis

    redis.Redis.from_url(env["KONNECTOR_BROKER_URL"]).flushdb()  # no job of an earlier test is left queued
    backend = CouchBackend(couchdb_url, db_prefix)
    fleet = Fleet(env, DocumentStore(backend, Writer(app="tests")), key)
    try:
        yield fleet
    finally:
        fleet.stop()
        backend.close()
