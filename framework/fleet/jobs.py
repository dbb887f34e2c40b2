"""``io.cozy.jobs`` and ``io.cozy.triggers`` documents, in cozy-stack's shape, and its retry rules.

A job: ``worker`` (``konnector``), ``trigger_id``, ``message`` (``konnector``,
``account``), ``manual``, ``state`` (``queued``, ``running``, ``done``,
``errored``), ``queued_at``, ``started_at``, ``finished_at``, ``error`` (the Cozy
code), plus ``attempt``. A trigger: ``type`` (``@cron``), ``arguments`` (cozy's
six-field crontab, seconds first), ``worker``, ``message`` and ``current_state``
with cozy-stack's ``TriggerState`` fields (``status``, ``last_success``,
``last_successful_job_id``, ``last_execution``, ``last_executed_job_id``,
``last_failure``, ``last_failed_job_id``, ``last_error``,
``last_manual_execution``, ``last_manual_job_id``).

Retry rules, as cozy-stack's konnector worker: ``VENDOR_DOWN`` is retried with a
bounded exponential backoff, and so is ``UNKNOWN_ERROR.STORE_UNREACHABLE`` (our store, not the
provider, was down: as transient, and the job resumes from its bookmark); ``LOGIN_FAILED*`` and ``USER_ACTION_NEEDED*``
(except ``.CGU_FORM``) are never retried, and automatic runs of the account are
skipped until a run started by a person succeeds.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from ..errors import ConfigurationError
from ..store import Doc, DocumentStore

JOBS = "io.cozy.jobs"
TRIGGERS = "io.cozy.triggers"
STATES = ("queued", "running", "done", "errored")
RETRIED = ("VENDOR_DOWN", "UNKNOWN_ERROR.STORE_UNREACHABLE")
MAX_ATTEMPTS = 3
RETENTION = "2W"
"""Finished jobs are kept two weeks: cozy-stack's ``jobs.defaultDurationToKeep`` default."""
UNITS = {"s": 1, "m": 60, "h": 3600, "H": 3600, "d": 86400, "D": 86400, "w": 7 * 86400, "W": 7 * 86400, "M": 30 * 86400}


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def blocks_automatic_runs(code: str | None) -> bool:
    """Codes after which only a person can make the account work again (cozy-stack's rule)."""
    if not code:
        return False
    if code.startswith("LOGIN_FAILED"):
        return True
    return code.startswith("USER_ACTION_NEEDED") and code != "USER_ACTION_NEEDED.CGU_FORM"


def retry_delay(code: str | None, attempt: int, base: float) -> float | None:
    """Seconds before the next try of a failed job, or None when it is not retried."""
    if code not in RETRIED or attempt >= MAX_ATTEMPTS:
        return None
    return min(base * 2 ** (attempt - 1), base * 2 ** (MAX_ATTEMPTS - 1))


def retention_seconds(text: str) -> float:
    """``2W``, ``3D``, ``2M`` (months of 30 days), as cozy-stack writes them, or ``12h``, ``30m``, ``90s``, seconds."""
    value = text.strip()
    unit = UNITS.get(value[-1:]) if value[-1:].isalpha() else 1
    number = value[:-1] if value[-1:].isalpha() else value
    try:
        seconds = float(number) * unit if unit else -1
    except ValueError:
        seconds = -1
    if seconds <= 0:
        raise ConfigurationError(f"a job retention is a positive duration such as 2W, 3D, 12h or 3600: {text!r}")
    return seconds


def trigger_id(slug: str, account: str) -> str:
    """One trigger per konnector and account: its id says which."""
    return f"{slug}:{account}"


class Jobs:
    """Jobs and triggers in the store the fleet is given."""

    def __init__(self, store: DocumentStore) -> None:
        self.store = store

    # jobs

    def create(self, slug: str, account: str, *, manual: bool, trigger: str | None = None) -> Doc:
        job = {
            "_id": uuid.uuid4().hex,
            "worker": "konnector",
            "trigger_id": trigger or trigger_id(slug, account),
            "message": {"konnector": slug, "account": account},
            "manual": manual,
            "state": "queued",
            "queued_at": now_iso(),
            "attempt": 1,
        }
        return self.store.save(JOBS, [job])[0]

    def get(self, job_id: str) -> Doc | None:
        return self.store.get(JOBS, job_id)

    def update(self, job: Doc, **changes: Any) -> Doc:
        """Write ``changes``; if another worker wrote the job meanwhile, only these fields replace its."""
        return self.store.save(JOBS, [{**job, **changes}], merge=lambda stored, _: {**stored, **changes})[0]

    def list(self, state: str | None = None, limit: int = 100) -> list[Doc]:
        selector: Doc = {"state": state} if state else {"worker": "konnector"}
        jobs = self.store.find(JOBS, selector, limit=limit)
        return sorted(jobs, key=lambda job: job.get("queued_at", ""))

    def purge(self, before: datetime, batch: int = 1000) -> int:
        """Delete the jobs that finished (done or errored) before ``before``; return how many.

        As cozy-stack's ``jobs purge-old-jobs``, with the difference that queued and running
        jobs are never deleted however old (a job still running is not history yet). A
        trigger's ``current_state`` keeps the outcome of its account's last job anyway.
        """
        cutoff = before.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        selector = {"state": {"$in": ["done", "errored"]}, "finished_at": {"$lt": cutoff}}
        purged = 0
        while old := self.store.find(JOBS, selector, limit=batch):
            self.store.delete(JOBS, old)
            purged += len(old)
            if len(old) < batch:
                break
        return purged

    # triggers

    def trigger(self, slug: str, account: str) -> Doc | None:
        return self.store.get(TRIGGERS, trigger_id(slug, account))

    def triggers(self) -> list[Doc]:
        return list(self.store.id_range(TRIGGERS))

    def save_trigger(self, trigger: Doc) -> Doc:
        """Write the trigger; if the scheduler moved it meanwhile, keep its fields and put our state."""
        return self.store.save(TRIGGERS, [trigger], merge=_our_state)[0]

    def record(self, job: Doc, code: str | None) -> None:
        """Put the job's outcome in its trigger's ``current_state`` (created if the account has none)."""
        message = job["message"]
        trigger = self.trigger(message["konnector"], message["account"]) or new_trigger(
            message["konnector"], message["account"], None
        )
        state = dict(trigger.get("current_state") or {})
        when = job.get("finished_at") or now_iso()
        state.update(trigger_id=trigger["_id"], status="errored" if code else "done")
        state.update(last_execution=when, last_executed_job_id=job["_id"])
        if job.get("manual"):
            state.update(last_manual_execution=when, last_manual_job_id=job["_id"])
        if code:
            state.update(last_failure=when, last_failed_job_id=job["_id"], last_error=code)
        else:
            state.update(last_success=when, last_successful_job_id=job["_id"])
            state.pop("last_error", None)
        self.save_trigger({**trigger, "current_state": state})

    def skip_reason(self, job: Doc) -> str | None:
        """Why an automatic job must not run (its account waits for a person), or None."""
        if job.get("manual"):
            return None
        message = job["message"]
        trigger = self.trigger(message["konnector"], message["account"]) or {}
        code = (trigger.get("current_state") or {}).get("last_error")
        if blocks_automatic_runs(code):
            return f"skipped: the last run ended with {code}; automatic runs wait for a manual one"
        return None


def _our_state(stored: Doc, ours: Doc) -> Doc:
    return {**stored, "current_state": ours["current_state"], "_rev": stored["_rev"]}


def new_trigger(slug: str, account: str, arguments: str | None) -> Doc:
    return {
        "_id": trigger_id(slug, account),
        "type": "@cron",
        "arguments": arguments,
        "worker": "konnector",
        "message": {"konnector": slug, "account": account},
        "current_state": {"trigger_id": trigger_id(slug, account), "status": "done"},
    }
