"""Triggers at a stable time per account, the scheduler's passes, and the capacity plan."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import redis

from framework.fleet.jobs import JOBS, TRIGGERS, Jobs, new_trigger
from framework.fleet.schedule import due_key, iso, load_due, run_pass, slot
from framework.fleet.worker import wait_for
from framework.manifest import Manifest
from framework.registry import Registry
from framework.store import CouchBackend, DocumentStore, Writer
from tests.conftest import PATH_KONNECTORS

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def manifest(frequency: str, **extra) -> Manifest:
    probe = Registry.discover([PATH_KONNECTORS]).get("probe")
    return Manifest({**probe.data, "frequency": frequency, **extra}, probe.source)


def test_each_account_has_its_own_stable_time_spread_over_the_period():
    daily = manifest("daily")
    slots = [slot(daily, f"account-{n}") for n in range(2000)]
    assert slots == [slot(daily, f"account-{n}") for n in range(2000)]  # stable: same account, same second
    assert len({s.second for s in slots}) > 1900  # not one second for everyone, as a slug-only seed gives
    per_hour = Counter(s.second // 3600 for s in slots)
    assert len(per_hour) == 24 and max(per_hour.values()) < 2 * 2000 / 24


def test_time_interval_and_crontabs_follow_the_frequency():
    night = manifest("daily", time_interval=[0, 5])
    assert all(slot(night, f"a{n}").second < 5 * 3600 for n in range(500))
    assert slot(manifest("hourly"), "a").crontab().split()[2:] == ["*"] * 4
    assert len(slot(manifest("weekly"), "a").crontab().split()) == 6
    monthly = slot(manifest("monthly"), "a")
    assert 1 <= monthly.day <= 28 and monthly.crontab().split()[3] == str(monthly.day)


def test_last_occurrence_is_the_latest_run_time_not_after_now():
    for frequency, period in (("hourly", 3600), ("daily", 86400), ("weekly", 7 * 86400)):
        place = slot(manifest(frequency), "account")
        last = place.last_occurrence(T0)
        assert last <= T0 < last + timedelta(seconds=period)
        assert place.last_occurrence(last) == last and place.last_occurrence(last + timedelta(seconds=period)) > last
        assert place.next_occurrence(T0) == last + timedelta(seconds=period) == place.next_occurrence(last)
    monthly = slot(manifest("monthly"), "account")
    last = monthly.last_occurrence(T0)
    assert last <= T0 and last.day == monthly.day and (T0 - last).days < 31
    following = monthly.next_occurrence(T0)
    assert following > T0 and following.day == monthly.day and monthly.last_occurrence(following) == following
    assert monthly.next_occurrence(datetime(2025, 12, 31, tzinfo=UTC)).month == 1  # over the year's end


def test_the_scheduler_enqueues_each_account_once_per_period_and_skips_accounts_waiting_for_a_person(fleet, db_prefix):
    accounts = [f"{db_prefix}s{n}" for n in range(3)]
    for account in accounts[:2]:
        fleet.account(account)
    fleet.account(accounts[2], mode="fail")
    now = {"KONNECTOR_NOW": T0.isoformat()}
    first = fleet.cli("schedule", env=now)
    assert "triggers created: 3; jobs enqueued: 0" in first.stdout, first.stderr
    trigger = fleet.jobs.trigger("probe", accounts[0])
    assert trigger["type"] == "@cron" and len(trigger["arguments"].split()) == 6
    assert trigger["message"] == {"konnector": "probe", "account": accounts[0]}

    tomorrow = {"KONNECTOR_NOW": (T0 + timedelta(days=1)).isoformat()}
    assert "jobs enqueued: 3" in fleet.cli("schedule", env=tomorrow).stdout
    assert "jobs enqueued: 0" in fleet.cli("schedule", env=tomorrow).stdout  # that occurrence is done
    fleet.worker(concurrency=2)
    assert wait_for(lambda: len([j for j in fleet.jobs.list() if j["state"] in ("done", "errored")]) == 3, 90)
    assert sorted(j["error"] or "-" for j in fleet.jobs.list()) == ["-", "-", "LOGIN_FAILED"]
    assert all(not j["manual"] for j in fleet.jobs.list())

    later = {"KONNECTOR_NOW": (T0 + timedelta(days=2)).isoformat()}
    assert "jobs enqueued: 2; waiting for a person: 1" in fleet.cli("schedule", env=later).stdout
    listed = fleet.cli("jobs", "--state", "errored").stdout
    assert "LOGIN_FAILED" in listed and accounts[2] in listed


def test_the_plan_warns_when_the_accounts_do_not_fit_the_quota(fleet, db_prefix):
    for n in range(3):
        fleet.account(f"{db_prefix}p{n}")
    fits = fleet.cli("schedule", "--plan")
    assert fits.status == 0 and "WARNING" not in fits.stdout
    assert "probe" in fits.stdout and "90%" in fits.stdout  # 3 accounts × 1 run × 3 calls of 10 a day
    fleet.account(f"{db_prefix}p3")
    full = fleet.cli("schedule", "--plan")
    assert "WARNING probe" in full.stdout and "12 calls a day" in full.stdout and "at most 3 accounts" in full.stdout


def test_the_plan_of_the_built_in_enedis_manifest_matches_docs_scaling():
    from framework.fleet.plan import plan

    manifests = {m.slug: m for m in Registry.discover()}
    accounts = [{"account_type": "enedis-dataconnect", "auth": {"client_id": "app"}}] * 70_000
    (line,) = plan(accounts, manifests)
    assert line.max_accounts == 60_000 and line.fits is False  # 10,000 calls/h, 4 calls a daily run


class CountingBackend:
    """The real backend, counting the documents its reads return: what a scheduler pass costs the store."""

    def __init__(self, backend) -> None:
        self.backend, self.read = backend, 0

    def __getattr__(self, name):
        return getattr(self.backend, name)

    def get(self, doctype, doc_id):
        doc = self.backend.get(doctype, doc_id)
        self.read += doc is not None
        return doc

    def get_many(self, doctype, ids):
        found = self.backend.get_many(doctype, ids)
        self.read += len(found)
        return found

    def id_range(self, doctype, start, end):
        for doc in self.backend.id_range(doctype, start, end):
            self.read += 1
            yield doc

    def find(self, doctype, selector, limit, sort=()):
        docs = self.backend.find(doctype, selector, limit, sort)
        self.read += len(docs)
        return docs


def triggers_at_t0(store, accounts: list[str], daily: Manifest) -> None:
    """Triggers as the scheduler makes them at T0: their next run is their next occurrence."""
    docs = []
    for account in accounts:
        trigger = new_trigger("probe", account, slot(daily, account).crontab())
        trigger["last_scheduled"] = iso(slot(daily, account).last_occurrence(T0))
        docs.append(trigger)
    store.save(TRIGGERS, docs)


def test_a_pass_reads_the_due_triggers_only(redis_url, couchdb_url, db_prefix):
    daily = manifest("daily")
    accounts = [f"a{n:03d}" for n in range(300)]
    backend = CountingBackend(CouchBackend(couchdb_url, db_prefix))
    jobs = Jobs(DocumentStore(backend, Writer(app="tests")))
    triggers_at_t0(jobs.store, accounts, daily)
    client, key = redis.Redis.from_url(redis_url), due_key(db_prefix)
    assert load_due(client, key, jobs, jobs.store, {"probe": daily}, T0) == 0  # no account: no trigger made
    assert client.zcard(key) == 300

    an_hour_later = T0 + timedelta(hours=1)
    due = {a for a in accounts if T0 < slot(daily, a).next_occurrence(T0) <= an_hour_later}
    assert 3 < len(due) < 40  # ~300/24 of them
    backend.read, sent = 0, []
    done = run_pass(client, key, jobs, {"probe": daily}, an_hour_later, sent.append)
    assert done.enqueued == len(due) and backend.read == len(due)  # their triggers, not the 300
    assert {jobs.get(job_id)["message"]["account"] for job_id in sent} == due

    backend.read = 0
    assert run_pass(client, key, jobs, {"probe": daily}, an_hour_later, sent.append).enqueued == 0
    assert backend.read == 0  # nothing due: not one document read
    backend.backend.close()


def test_two_schedulers_at_once_enqueue_each_due_trigger_once(redis_url, couchdb_url, db_prefix):
    daily = manifest("daily")
    accounts = [f"b{n:03d}" for n in range(400)]
    setup = CouchBackend(couchdb_url, db_prefix)
    triggers_at_t0(DocumentStore(setup, Writer(app="tests")), accounts, daily)
    key, tomorrow = due_key(db_prefix), T0 + timedelta(days=1)  # every trigger is due
    sent: dict[int, list[str]] = {0: [], 1: []}
    start = threading.Barrier(2)

    def scheduler(n: int) -> None:
        backend = CouchBackend(couchdb_url, db_prefix)
        jobs, client = Jobs(DocumentStore(backend, Writer(app="tests"))), redis.Redis.from_url(redis_url)
        load_due(client, key, jobs, jobs.store, {"probe": daily}, tomorrow)  # both start, and rebuild, at once
        start.wait()
        run_pass(client, key, jobs, {"probe": daily}, tomorrow, sent[n].append)
        backend.close()

    threads = [threading.Thread(target=scheduler, args=(n,)) for n in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    store = DocumentStore(setup, Writer(app="tests"))
    per_trigger = Counter(job["trigger_id"] for job in store.id_range(JOBS))
    assert len(per_trigger) == 400 and set(per_trigger.values()) == {1}  # every trigger once, none twice
    assert len(sent[0]) + len(sent[1]) == 400
    setup.close()
