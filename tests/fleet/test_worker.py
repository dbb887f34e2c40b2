"""Real Celery workers (processes) on a real redis-server run jobs against the CouchDB store."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from framework.fleet.worker import wait_for
from framework.store import CouchBackend, DocumentStore, Writer
from framework.testing.runner import run_cli

DAYS = "io.example.probe.day"
DOCTYPES = (DAYS, "io.example.probe.month", "io.example.probe.year", "io.cozy.accounts")


def test_a_job_runs_and_stores(fleet, db_prefix):
    account = f"{db_prefix}one"
    fleet.account(account)
    fleet.worker()
    queued = fleet.cli("enqueue", "probe", "--account", account)
    assert queued.status == 0, queued.stderr
    job_id = queued.stdout.strip()
    assert wait_for(lambda: fleet.finished(job_id), 60)
    job = fleet.jobs.get(job_id)
    assert job["state"] == "done" and job["error"] is None and job["manual"] is True
    days = [doc["_id"] for doc in fleet.store.id_range(DAYS)]
    assert days == ["2024-01-01", "2024-01-02", "2024-01-03"]
    state = fleet.jobs.trigger("probe", account)["current_state"]
    assert state["last_successful_job_id"] == job_id and state["last_manual_job_id"] == job_id
    listed = fleet.cli("jobs")
    assert job_id in listed.stdout and "done" in listed.stdout


def test_two_jobs_of_one_account_never_overlap(fleet, db_prefix):
    account = f"{db_prefix}busy"
    fleet.account(account)
    fleet.env["COZY_PARAMETERS"] = json.dumps({"days": 6, "pause": 0.3})
    ids = [fleet.cli("enqueue", "probe", "--account", account).stdout.strip() for _ in range(2)]
    fleet.worker(concurrency=2)  # both jobs are queued when the workers start: they are taken at once
    fleet.worker(concurrency=1)
    assert wait_for(lambda: all(fleet.finished(i) for i in ids), 90)
    first, second = sorted((fleet.jobs.get(i) for i in ids), key=lambda job: job["started_at"])
    assert first["state"] == second["state"] == "done"
    assert first["finished_at"] < second["started_at"]  # one after the other, never alongside
    assert first.get("deferred", 0) + second.get("deferred", 0) >= 1  # the second found the account busy


def test_a_worker_killed_mid_job_loses_nothing(fleet, db_prefix, couchdb_url):
    account = f"{db_prefix}killed"
    fleet.account(account)
    fleet.env["COZY_PARAMETERS"] = json.dumps({"days": 8, "pause": 0.4})
    doomed = fleet.worker()
    job_id = fleet.cli("enqueue", "probe", "--account", account).stdout.strip()
    assert wait_for(lambda: fleet.jobs.get(job_id)["state"] == "running", 30)
    time.sleep(1.0)  # its process is fetching (8 days × 0.4 s), nothing is written yet
    fleet.kill(doomed)
    assert fleet.jobs.get(job_id)["state"] == "running"
    assert len(list(fleet.store.id_range(DAYS))) < 8
    fleet.worker()
    assert wait_for(lambda: fleet.finished(job_id), 60)
    assert fleet.jobs.get(job_id)["state"] == "done"

    clean_backend = CouchBackend(couchdb_url, f"{db_prefix}clean-")
    clean = DocumentStore(clean_backend, Writer(app="tests"))
    fleet.account(account, store=clean)
    env = {**fleet.env, "COZY_FIELDS": json.dumps({"konnector": "probe", "account": account})}
    env["KONNECTOR_DB_PREFIX"] = f"{db_prefix}clean-"
    assert run_cli("run", "probe", env=env).status == 0
    for doctype in DOCTYPES:
        assert comparable(fleet.store, doctype) == comparable(clean, doctype), doctype
    clean_backend.close()


def comparable(store: DocumentStore, doctype: str) -> list[dict]:
    """The documents without what differs between two equal runs (revisions, write times, sealed secrets)."""
    noise = {"_rev", "cozyMetadata", "secrets_encrypted"}
    docs = [{k: v for k, v in doc.items() if k not in noise} for doc in store.id_range(doctype)]
    for doc in docs:
        doc.get("data", {}).get("last_run", {}).pop("at", None)  # when the run ended
    return docs


def test_login_failed_stops_automatic_runs_until_a_manual_one(fleet, db_prefix):
    account = f"{db_prefix}refused"
    fleet.account(account, mode="fail")
    fleet.worker()
    refused = fleet.automatic(account)
    assert wait_for(lambda: fleet.finished(refused), 60)
    job = fleet.jobs.get(refused)
    assert job["state"] == "errored" and job["error"] == "LOGIN_FAILED" and job["attempt"] == 1  # never retried
    assert fleet.jobs.trigger("probe", account)["current_state"]["last_error"] == "LOGIN_FAILED"

    fleet.account(account, mode="ok")  # the person fixed the password, but no one ran the konnector yet
    skipped = fleet.automatic(account)
    assert wait_for(lambda: fleet.finished(skipped), 60)
    assert "LOGIN_FAILED" in fleet.jobs.get(skipped)["skipped"]
    assert not list(fleet.store.id_range(DAYS))

    manual = fleet.cli("enqueue", "probe", "--account", account).stdout.strip()
    assert wait_for(lambda: fleet.finished(manual), 60)
    assert fleet.jobs.get(manual)["state"] == "done"
    resumed = fleet.automatic(account)
    assert wait_for(lambda: fleet.finished(resumed), 60)
    assert "skipped" not in fleet.jobs.get(resumed) and fleet.jobs.get(resumed)["state"] == "done"


def test_vendor_down_is_retried_with_a_bounded_backoff(fleet, db_prefix):
    account = f"{db_prefix}down"
    fleet.account(account, mode="down")
    fleet.worker()
    job_id = fleet.automatic(account)
    assert wait_for(lambda: fleet.jobs.get(job_id)["attempt"] == 3 and fleet.finished(job_id), 60)
    job = fleet.jobs.get(job_id)
    assert job["state"] == "errored" and job["error"] == "VENDOR_DOWN"
    assert fleet.jobs.trigger("probe", account)["current_state"]["last_error"] == "VENDOR_DOWN"


def test_a_worker_warns_when_the_visibility_timeout_is_shorter_than_the_longest_job(fleet):
    worker = subprocess.Popen(
        [sys.executable, "-m", "framework", "worker"],
        env=fleet.env,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    fleet.workers.append(worker)  # stopped with its pool processes at the end
    try:
        first = worker.stderr.readline()  # the tests' 4 s against COZY_TIME_LIMIT=60
        assert "KONNECTOR_VISIBILITY_TIMEOUT (4 s) is not longer than the longest job (60 s)" in first
    finally:
        fleet.kill(worker)
