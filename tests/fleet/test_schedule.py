"""Triggers at a stable time per account, the scheduler's passes, and the capacity plan."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from framework.fleet.schedule import slot
from framework.fleet.worker import wait_for
from framework.manifest import Manifest
from framework.registry import Registry
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
    monthly = slot(manifest("monthly"), "account")
    last = monthly.last_occurrence(T0)
    assert last <= T0 and last.day == monthly.day and (T0 - last).days < 31


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
