"""``konnector worker``, ``enqueue``, ``jobs`` and ``schedule``: fleet mode's commands.

Plugged into the CLI through the ``konnector.commands`` entry-point group; the
settings come from the environment (framework/fleet/settings.py).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from datetime import UTC, datetime

import click

from .. import logs, runner
from ..redact import Redactor
from ..registry import Registry
from .settings import Settings


@click.command()
@click.option("--concurrency", type=click.IntRange(1, 256), default=1, show_default=True, help="Jobs run at once.")
def worker(concurrency: int) -> None:
    """Run queued konnector jobs, each as a `konnector run` process (fleet mode; KONNECTOR_JOB_PROCESS)."""
    from .app import QUEUE, longest_job, make_app

    settings = Settings.from_environment()
    log = logs.configure("human", Redactor(), logging.INFO)
    if settings.broker_url.startswith("redis") and settings.visibility_timeout <= longest_job(settings):
        log.warning(
            f"KONNECTOR_VISIBILITY_TIMEOUT ({settings.visibility_timeout:.0f} s) is not longer than the longest job "
            f"({longest_job(settings):.0f} s): running jobs will be delivered again (their account's lease defers "
            "the copies)"
        )
    if settings.job_process == "fork":
        from .jobprocess import preload

        preload()  # before Celery forks its pool: every pool process, and every job forked from it, has it
    app = make_app(settings)
    name = f"konnector-{socket.gethostname()}-{os.getpid()}@%h"
    options = [f"--concurrency={concurrency}", "--loglevel=WARNING", f"--queues={QUEUE}", f"--hostname={name}"]
    app.worker_main(["worker", *options, "--without-gossip", "--without-mingle", "--without-heartbeat"])


@click.command()
@click.argument("slug")
@click.option("--account", "account", required=True, help="The io.cozy.accounts id.")
def enqueue(slug: str, account: str) -> None:
    """Queue a manual run of SLUG for one account; print the job id."""
    from .app import enqueue as send
    from .app import make_app
    from .worker import job_store

    Registry.discover().get(slug)
    settings = Settings.from_environment()
    job = job_store(settings.couchdb_url, settings.prefix).create(slug, account, manual=True)
    send(make_app(settings), job["_id"])
    click.echo(job["_id"])


@click.command()
@click.option("--state", type=click.Choice(["queued", "running", "done", "errored"]), help="Only jobs in this state.")
@click.option("--limit", type=click.IntRange(1, 10000), default=100, show_default=True)
@click.option("--purge", is_flag=True, help="Delete the jobs finished longer ago than the retention, instead.")
@click.option("--older-than", "retention", help="With --purge: e.g. 2W, 3D, 12h (default KONNECTOR_JOBS_RETENTION).")
def jobs(state: str | None, limit: int, purge: bool, retention: str | None) -> None:
    """List io.cozy.jobs: konnector, account, state, error code, times (or purge the old finished ones)."""
    from .worker import job_store

    settings = Settings.from_environment()
    if purge:
        before, count = _purge(settings, retention)
        click.echo(f"purged {count} job(s) finished before {before.isoformat()}")
        return
    if retention:
        raise click.UsageError("--older-than goes with --purge")
    rows = job_store(settings.couchdb_url, settings.prefix).list(state, limit)
    click.echo(f"{'job':32}  {'konnector':20}  {'account':20}  {'state':8}  {'error':34}  finished")
    for job in rows:
        message = job.get("message", {})
        error = job.get("error") or (job.get("skipped") or "")[:34]
        click.echo(
            f"{job['_id']:32}  {message.get('konnector', ''):20}  {message.get('account', ''):20}  "
            f"{job.get('state', ''):8}  {error:34}  {job.get('finished_at') or ''}"
        )


@click.command()
@click.option("--plan", "show_plan", is_flag=True, help="Print calls needed vs each application's quota; warn.")
@click.option("--loop", "every", type=click.FloatRange(1), help="Run a pass every this many seconds, until stopped.")
@click.option(
    "--resync",
    type=click.FloatRange(1),
    default=3600,
    show_default=True,
    help="With --loop: read every account and trigger again (new accounts get their trigger) and purge old jobs "
    "this often.",
)
def schedule(show_plan: bool, every: float | None, resync: float) -> None:
    """Make a trigger per account (stable random time) and enqueue the due ones (KONNECTOR_NOW fixes now).

    Due times are kept in Redis: a pass reads the due triggers only; every account and trigger is
    read when the scheduler starts and every --resync seconds. Several schedulers may run: each
    due trigger is claimed by one.
    """
    from .worker import job_store

    settings = Settings.from_environment()
    jobs = job_store(settings.couchdb_url, settings.prefix)
    manifests = {manifest.slug: manifest for manifest in Registry.discover()}
    if show_plan:
        from .plan import plan, render

        lines = plan(jobs.store.id_range("io.cozy.accounts"), manifests)
        for text in render(lines):
            click.echo(text)
        return
    synced_at = None
    while True:
        if synced_at is None or time.monotonic() - synced_at >= resync:
            created, synced_at = _load(settings, jobs, manifests), time.monotonic()
            if every is not None:  # a long-running scheduler keeps io.cozy.jobs bounded
                before, count = _purge(settings, None)
                click.echo(f"purged {count} job(s) finished before {before.isoformat()}")
        else:
            created = 0
        _schedule_pass(settings, jobs, manifests, created)
        if every is None:
            return
        time.sleep(every)


def _purge(settings: Settings, retention: str | None) -> tuple[datetime, int]:
    """Delete the jobs finished before now minus the retention (cozy-stack keeps two weeks)."""
    from datetime import timedelta

    from .jobs import retention_seconds
    from .worker import job_store

    seconds = retention_seconds(retention) if retention else settings.jobs_retention
    before = _now() - timedelta(seconds=seconds)
    return before, job_store(settings.couchdb_url, settings.prefix).purge(before)


def _now() -> datetime:
    return runner.fixed_now(dict(os.environ)) or datetime.now(UTC)


def _load(settings: Settings, jobs, manifests) -> int:
    from .limiter import client
    from .schedule import due_key, load_due

    return load_due(client(settings.redis_url), due_key(settings.prefix), jobs, jobs.store, manifests, _now())


def _schedule_pass(settings: Settings, jobs, manifests, created: int) -> None:
    """One pass: claim the due triggers (Redis), enqueue their jobs."""
    from .app import enqueue as send
    from .app import make_app
    from .limiter import client
    from .schedule import due_key, run_pass

    app = make_app(settings)
    key = due_key(settings.prefix)
    done = run_pass(client(settings.redis_url), key, jobs, manifests, _now(), lambda job_id: send(app, job_id))
    click.echo(f"triggers created: {created}; jobs enqueued: {done.enqueued}; waiting for a person: {done.waiting}")
