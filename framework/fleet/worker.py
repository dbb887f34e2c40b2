"""Run one queued job: skip, defer or run it as a ``konnector run`` process, then record its outcome.

Each job is a separate process in platform mode (``COZY_FIELDS``…, as cozy-stack
isolates konnectors) — forked from the worker, which imported everything once,
or a fresh interpreter (jobprocess.py) — against the worker's CouchDB store, with fleet mode on:
its limiters take their tokens from Redis and its state writes check the
account's lease (framework/fleet/limiter.py, lease.py).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from functools import cache

from ..errors import CODES
from ..registry import Registry
from ..store import DocumentStore, Writer, open_backend
from . import jobprocess
from .jobs import Jobs, now_iso, retry_delay
from .lease import Lease
from .limiter import REDIS_ENV, client
from .settings import Settings

log = logging.getLogger("konnector.fleet")
KILL_GRACE = 30.0
"""Seconds past its time limit before a job's process is killed (it stops itself before the limit)."""


@cache
def job_store(couchdb_url: str, prefix: str) -> Jobs:
    return Jobs(DocumentStore(open_backend(couchdb_url, None, prefix), Writer(app="konnector-fleet")))


def execute(settings: Settings, job_id: str, requeue: Callable[[float], None]) -> None:
    jobs = job_store(settings.couchdb_url, settings.prefix)
    job = jobs.get(job_id)
    if job is None or job["state"] in ("done", "errored"):
        return  # a copy delivered again after the job ended
    slug, account = job["message"]["konnector"], job["message"]["account"]
    if reason := jobs.skip_reason(job):
        jobs.update(job, state="done", skipped=reason, finished_at=now_iso())
        log.info(f"job {job_id} {slug}/{account}: {reason}")
        return
    lease = Lease(client(settings.redis_url), slug, account, settings.lease_seconds)
    if not lease.acquire():
        delay = lease.remaining() + 0.2
        jobs.update(job, deferred=job.get("deferred", 0) + 1)
        log.info(f"job {job_id} {slug}/{account}: another job runs this account; deferred {delay:.1f} s")
        requeue(delay)
        return
    try:
        job = jobs.update(job, state="running", started_at=now_iso(), finished_at=None, error=None)
        code, lost = _run(settings, job, lease)
        if lost:
            log.warning(f"job {job_id} {slug}/{account}: lost the account's lease; its outcome is not recorded")
            return
        _finish(settings, jobs, job, code, requeue)
    finally:
        lease.release()


def _finish(settings: Settings, jobs: Jobs, job: dict, code: str | None, requeue: Callable[[float], None]) -> None:
    outcome = {"state": "errored" if code else "done", "error": code, "finished_at": now_iso()}
    jobs.record({**job, **outcome}, code)  # the trigger first: a finished job's outcome is already in its trigger
    job = jobs.update(job, **outcome)
    message = job["message"]
    log.info(f"job {job['_id']} {message['konnector']}/{message['account']}: {code or 'done'}")
    delay = retry_delay(code, job.get("attempt", 1), settings.retry_seconds)
    if delay is not None:
        jobs.update(job, state="queued", attempt=job.get("attempt", 1) + 1, queued_at=now_iso())
        requeue(delay)


def time_limit(settings: Settings, slug: str) -> float:
    manifest = Registry.discover().get(slug)
    return float(manifest.data.get("time_limit") or settings.time_limit)


def _run(settings: Settings, job: dict, lease: Lease) -> tuple[str | None, bool]:
    """Run the job's process; ``(error code or None, lease lost)``."""
    slug, account = job["message"]["konnector"], job["message"]["account"]
    limit = time_limit(settings, slug)
    env = {
        **os.environ,
        "COZY_FIELDS": json.dumps({"konnector": slug, "account": account}),
        "COZY_JOB_ID": job["_id"],
        "COZY_TRIGGER_ID": job.get("trigger_id", ""),
        "COZY_JOB_MANUAL_EXECUTION": "true" if job.get("manual") else "false",
        "COZY_TIME_LIMIT": str(limit),
        "COUCHDB_URL": settings.couchdb_url,
        "KONNECTOR_DB_PREFIX": settings.prefix,
        REDIS_ENV: settings.redis_url,
        "KONNECTOR_LIMITER_HOOK": "framework.fleet.limiter:shared",
        **lease.environment(),
    }
    lost = threading.Event()
    with tempfile.TemporaryFile() as output:
        process = jobprocess.start(settings.job_process, ["run", slug], env, output)
        done = threading.Event()
        keeper = threading.Thread(target=_keep, args=(lease, process, done, lost), daemon=True)
        keeper.start()
        try:
            status = process.wait(limit + KILL_GRACE)
        except subprocess.TimeoutExpired:
            process.kill()
            status = process.wait()
        finally:
            done.set()
            keeper.join()
        output.seek(0)
        code = None if status == 0 else _code(output)
    return code, lost.is_set()


def _keep(lease: Lease, process: jobprocess.JobProcess, done: threading.Event, lost: threading.Event) -> None:
    """Renew the lease while the job runs; kill the job if the lease was lost."""
    while not done.wait(lease.ttl_ms / 3000):
        if not lease.renew():
            lost.set()
            process.kill()
            return


def _code(output) -> str:
    """The Cozy error code of a failed job: the message of its ``critical`` line (its last error line logged)."""
    code, error = "UNKNOWN_ERROR", None
    for raw in output:
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(line, dict):
            continue
        if line.get("type") == "error":
            error = line.get("message")
        if line.get("type") == "critical" and line.get("message") in CODES:
            code = line["message"]
    if error:
        log.warning(f"job failed with {code}: {str(error)[:500]}")  # already redacted by the job
    return code


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Poll ``predicate`` until true or ``timeout`` seconds passed (tests, benchmarks, CLI)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
