"""Triggers per account from the manifest's ``frequency``, at a random but stable time per account.

cozy-stack draws a konnector's crontab from a generator seeded with the slug
alone: every instance runs a konnector at the same second, and the provider
sees all of a deployment's accounts at once. Here the seed is the slug *and*
the account, so N accounts of one konnector spread evenly over the period
(the manifest's ``time_interval`` [start hour, end hour) narrows the hours of
daily, weekly and monthly runs, as in cozy-stack). A trigger is an
``io.cozy.triggers`` document (``@cron``, cozy's six-field crontab); the
scheduler's pass enqueues each trigger whose last occurrence it has not
enqueued yet, skipping accounts that wait for a person (jobs.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ..manifest import Manifest
from ..store import Doc, DocumentStore
from .jobs import Jobs, blocks_automatic_runs, new_trigger

PERIODS = {"hourly": 3600, "daily": 86400, "weekly": 7 * 86400}
DEFAULT_FREQUENCY = "weekly"
"""A konnector whose manifest says no frequency runs once a week (our default)."""
MONDAY = datetime(1970, 1, 5, tzinfo=UTC)


@dataclass(frozen=True)
class Slot:
    """Where in its period an account's runs fall."""

    frequency: str
    second: int
    """Seconds from the start of the period (hour, day, Monday 00:00 UTC, or the month's day ``day``)."""
    day: int = 1
    """Monthly: the day of the month (1-28, so every month has it)."""

    def crontab(self) -> str:
        """cozy-stack's six fields: second minute hour day-of-month month day-of-week."""
        s, m, h = self.second % 60, self.second // 60 % 60, self.second // 3600 % 24
        if self.frequency == "hourly":
            return f"{s} {m} * * * *"
        if self.frequency == "daily":
            return f"{s} {m} {h} * * *"
        if self.frequency == "weekly":
            return f"{s} {m} {h} * * {(self.second // 86400 + 1) % 7}"
        return f"{s} {m} {h} {self.day} * *"

    def last_occurrence(self, now: datetime) -> datetime:
        """The latest run time at or before ``now``."""
        if self.frequency in PERIODS:
            period = PERIODS[self.frequency]
            since = (now - MONDAY).total_seconds() - self.second
            return MONDAY + timedelta(seconds=since // period * period + self.second)
        this_month = datetime(now.year, now.month, self.day, tzinfo=UTC) + timedelta(seconds=self.second)
        if this_month <= now:
            return this_month
        year, month = (now.year, now.month - 1) if now.month > 1 else (now.year - 1, 12)
        return datetime(year, month, self.day, tzinfo=UTC) + timedelta(seconds=self.second)


def slot(manifest: Manifest, account: str) -> Slot:
    """The account's stable place in its konnector's period: a hash of slug and account."""
    frequency = manifest.data.get("frequency") or DEFAULT_FREQUENCY
    draw = int.from_bytes(hashlib.sha256(f"{manifest.slug}\0{account}".encode()).digest()[:8], "big")
    if frequency == "hourly":
        return Slot(frequency, draw % 3600)
    start, end = manifest.data.get("time_interval") or (0, 24)
    hours = max(1, end - start) * 3600
    in_day = start * 3600 + draw % hours
    if frequency == "daily":
        return Slot(frequency, in_day)
    if frequency == "weekly":
        return Slot(frequency, (draw // hours) % 7 * 86400 + in_day)
    return Slot(frequency, in_day, day=1 + (draw // hours) % 28)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Pass:
    """What one scheduler pass did."""

    created: int = 0
    enqueued: int = 0
    waiting: int = 0
    """Due triggers not enqueued: their account waits for a manual run (LOGIN_FAILED…)."""


def sync_triggers(jobs: Jobs, store: DocumentStore, manifests: dict[str, Manifest], now: datetime) -> int:
    """A trigger for every account of a known konnector that has none; return how many were made."""
    existing = {t["_id"] for t in jobs.triggers()}
    made: list[Doc] = []
    for account in store.id_range("io.cozy.accounts"):
        manifest = manifests.get(account.get("account_type", ""))
        if manifest is None:
            continue
        place = slot(manifest, account["_id"])
        trigger = new_trigger(manifest.slug, account["_id"], place.crontab())
        if trigger["_id"] in existing:
            continue
        trigger["last_scheduled"] = iso(place.last_occurrence(now))  # the first run is the next occurrence
        made.append(trigger)
    if made:
        store.save("io.cozy.triggers", made)
    return len(made)


def run_pass(
    jobs: Jobs, store: DocumentStore, manifests: dict[str, Manifest], now: datetime, send: Callable[[str], None]
) -> Pass:
    """Make missing triggers, then enqueue each trigger whose latest occurrence was not enqueued yet.

    A job is sent before its trigger records the occurrence: a crash between the
    two sends it twice at worst, and the account's lease keeps the copies apart.
    """
    result = Pass(created=sync_triggers(jobs, store, manifests, now))
    moved: list[Doc] = []
    for trigger in jobs.triggers():
        message = trigger.get("message") or {}
        manifest = manifests.get(message.get("konnector", ""))
        if manifest is None:
            continue
        occurrence = iso(slot(manifest, message["account"]).last_occurrence(now))
        if occurrence <= trigger.get("last_scheduled", ""):
            continue
        if blocks_automatic_runs((trigger.get("current_state") or {}).get("last_error")):
            result.waiting += 1
        else:
            send(jobs.create(manifest.slug, message["account"], manual=False, trigger=trigger["_id"])["_id"])
            result.enqueued += 1
        moved.append({**trigger, "last_scheduled": occurrence})
    if moved:
        store.save("io.cozy.triggers", moved, merge=_keep_state)
    return result


def _keep_state(stored: Doc, ours: Doc) -> Doc:
    """A worker recorded an outcome meanwhile: keep its ``current_state``, move only ``last_scheduled``."""
    latest = max(stored.get("last_scheduled", ""), ours["last_scheduled"])
    return {**stored, "last_scheduled": latest, "_rev": stored["_rev"]}
