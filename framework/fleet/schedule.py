"""Triggers per account from the manifest's ``frequency``, at a random but stable time per account.

cozy-stack draws a konnector's crontab from a generator seeded with the slug
alone: every instance runs a konnector at the same second, and the provider
sees all of a deployment's accounts at once. Here the seed is the slug *and*
the account, so N accounts of one konnector spread evenly over the period
(the manifest's ``time_interval`` [start hour, end hour) narrows the hours of
daily, weekly and monthly runs, as in cozy-stack). A trigger is an
``io.cozy.triggers`` document (``@cron``, cozy's six-field crontab).

Due times live in a Redis sorted set (member: trigger id, score: its next
occurrence, epoch seconds), as cozy-stack's Redis scheduler keeps its triggers:
a pass reads ``ZRANGEBYSCORE -inf now`` and the due triggers' documents only,
never every trigger. The set is rebuilt from ``io.cozy.triggers`` when a
scheduler starts (:func:`load_due`; ``ZADD GT`` never moves a trigger back).
A due trigger is claimed by a compare-and-set script (its score still the one
read → moved to its next occurrence), so of two schedulers reading the same
due trigger one claims it and the other skips it: each occurrence is enqueued
once. A scheduler that dies between its claim and the job's enqueue loses that
occurrence (the account's next one comes; its bookmarks catch up), never
enqueues it twice. Accounts that wait for a person are skipped (jobs.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import redis

from ..manifest import Manifest
from ..store import Doc, DocumentStore
from .jobs import TRIGGERS, Jobs, blocks_automatic_runs, new_trigger

PERIODS = {"hourly": 3600, "daily": 86400, "weekly": 7 * 86400}
DEFAULT_FREQUENCY = "weekly"
"""A konnector whose manifest says no frequency runs once a week (our default)."""
MONDAY = datetime(1970, 1, 5, tzinfo=UTC)
DUE_KEY = "konnector:due"
BATCH = 500
"""Due triggers claimed and read at a time."""

_CLAIM = """
local claimed = {}
for i = 1, #ARGV, 3 do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) == tonumber(ARGV[i + 1]) then
    redis.call('ZADD', KEYS[1], ARGV[i + 2], ARGV[i])
    claimed[#claimed + 1] = ARGV[i]
  end
end
return claimed
"""
"""KEYS: the due set. ARGV: (trigger id, score read, next score)…; returns the ids this caller claimed."""


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

    def next_occurrence(self, after: datetime) -> datetime:
        """The earliest run time strictly after ``after``."""
        if self.frequency in PERIODS:
            return self.last_occurrence(after) + timedelta(seconds=PERIODS[self.frequency])
        year, month = after.year, after.month
        while True:
            moment = datetime(year, month, self.day, tzinfo=UTC) + timedelta(seconds=self.second)
            if moment > after:
                return moment
            year, month = (year, month + 1) if month < 12 else (year + 1, 1)


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


def due_key(prefix: str) -> str:
    """The due set of one fleet (its store's database prefix): fleets may share a Redis."""
    return f"{DUE_KEY}:{prefix}"


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _slot_of(trigger_id: str, manifests: dict[str, Manifest]) -> tuple[Manifest, str] | None:
    slug, _, account = trigger_id.partition(":")
    manifest = manifests.get(slug)
    return (manifest, account) if manifest is not None and account else None


def load_due(
    client: redis.Redis, key: str, jobs: Jobs, store: DocumentStore, manifests: dict[str, Manifest], now: datetime
) -> int:
    """Make missing triggers, then put every trigger's next due time in the set; return triggers made.

    Reads every account and trigger: done when a scheduler starts (and every
    ``--resync``), not at each pass.
    """
    created = sync_triggers(jobs, store, manifests, now)
    with client.pipeline(transaction=False) as pipe:
        for n, trigger in enumerate(jobs.triggers(), 1):
            found = _slot_of(trigger["_id"], manifests)
            if found is None:
                continue
            manifest, account = found
            place = slot(manifest, account)
            last = trigger.get("last_scheduled")
            since = datetime.fromisoformat(last.replace("Z", "+00:00")) if last else place.last_occurrence(now)
            pipe.zadd(key, {trigger["_id"]: _epoch(place.next_occurrence(since))}, gt=True)
            if n % BATCH == 0:
                pipe.execute()
        pipe.execute()
    return created


def run_pass(
    client: redis.Redis,
    key: str,
    jobs: Jobs,
    manifests: dict[str, Manifest],
    now: datetime,
    send: Callable[[str], None],
) -> Pass:
    """Claim the triggers due at ``now`` (a read of Redis), read their documents only, enqueue their jobs."""
    result = Pass()
    claim = client.register_script(_CLAIM)
    while due := client.zrangebyscore(key, "-inf", _epoch(now), start=0, num=BATCH, withscores=True):
        arguments: list[str | int] = []
        for member, score in due:
            trigger_id = member.decode()
            found = _slot_of(trigger_id, manifests)
            following = slot(*found).next_occurrence(now) if found else now + timedelta(days=1)
            arguments += [trigger_id, int(score), _epoch(following)]
        claimed = [member.decode() for member in claim(keys=[key], args=arguments)]
        _enqueue(client, key, jobs, manifests, now, claimed, send, result)
        if len(due) < BATCH:
            break
    return result


def _enqueue(
    client: redis.Redis,
    key: str,
    jobs: Jobs,
    manifests: dict[str, Manifest],
    now: datetime,
    claimed: list[str],
    send: Callable[[str], None],
    result: Pass,
) -> None:
    """The claimed triggers' jobs; their documents record the occurrence (what a rebuild starts from)."""
    if not claimed:
        return
    triggers = jobs.store.get_many(TRIGGERS, list(claimed))
    moved: list[Doc] = []
    for trigger_id in claimed:
        trigger, found = triggers.get(trigger_id), _slot_of(trigger_id, manifests)
        if trigger is None or found is None:
            client.zrem(key, trigger_id)  # deleted trigger, or a konnector no longer installed
            continue
        manifest, account = found
        if blocks_automatic_runs((trigger.get("current_state") or {}).get("last_error")):
            result.waiting += 1
        else:
            send(jobs.create(manifest.slug, account, manual=False, trigger=trigger_id)["_id"])
            result.enqueued += 1
        moved.append({**trigger, "last_scheduled": iso(slot(manifest, account).last_occurrence(now))})
    if moved:
        jobs.store.save(TRIGGERS, moved, merge=_keep_state)


def _keep_state(stored: Doc, ours: Doc) -> Doc:
    """A worker recorded an outcome meanwhile: keep its ``current_state``, move only ``last_scheduled``."""
    latest = max(stored.get("last_scheduled", ""), ours["last_scheduled"])
    return {**stored, "last_scheduled": latest, "_rev": stored["_rev"]}
