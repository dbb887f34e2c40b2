"""io.cozy.jobs does not grow for ever: finished jobs older than the retention are purged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from framework.errors import ConfigurationError
from framework.fleet.jobs import JOBS, retention_seconds

NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)


def stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def seed(fleet, db_prefix) -> None:
    """Jobs of every state, finished (or queued) 20, 10 and 1 days before NOW."""
    jobs = []
    for days in (20, 10, 1):
        for state in ("done", "errored", "running", "queued"):
            finished = stamp(NOW - timedelta(days=days)) if state in ("done", "errored") else None
            jobs.append(
                {
                    "_id": f"{state}-{days}",
                    "worker": "konnector",
                    "message": {"konnector": "probe", "account": f"{db_prefix}x"},
                    "state": state,
                    "queued_at": stamp(NOW - timedelta(days=days, minutes=5)),
                    "finished_at": finished,
                }
            )
    fleet.store.save(JOBS, jobs)


def remaining(fleet) -> set[str]:
    return {job["_id"] for job in fleet.store.id_range(JOBS)}


def test_finished_jobs_older_than_the_retention_are_purged_never_running_ones(fleet, db_prefix):
    seed(fleet, db_prefix)
    now = {"KONNECTOR_NOW": NOW.isoformat()}
    default = fleet.cli("jobs", "--purge", env=now)  # cozy-stack's default: two weeks
    assert default.status == 0 and "purged 2 job(s)" in default.stdout, default.stderr
    assert remaining(fleet) == {f"{s}-{d}" for d in (20, 10, 1) for s in ("running", "queued")} | {
        "done-10",
        "errored-10",
        "done-1",
        "errored-1",
    }
    shorter = fleet.cli("jobs", "--purge", "--older-than", "3D", env=now)
    assert "purged 2 job(s)" in shorter.stdout
    configured = fleet.cli("jobs", "--purge", env=now | {"KONNECTOR_JOBS_RETENTION": "12h"})
    assert "purged 2 job(s)" in configured.stdout
    assert remaining(fleet) == {f"{s}-{d}" for d in (20, 10, 1) for s in ("running", "queued")}


def test_a_bad_retention_is_one_clear_line(fleet):
    bad = fleet.cli("jobs", "--purge", "--older-than", "soon")
    assert bad.status == 1 and "positive duration such as 2W" in bad.stderr and "Traceback" not in bad.stderr


def test_retention_durations_read_as_cozy_stack_writes_them():
    assert retention_seconds("2W") == 14 * 86400 and retention_seconds("3D") == 3 * 86400
    assert retention_seconds("2M") == 60 * 86400 and retention_seconds("30m") == 1800
    assert retention_seconds("3600") == 3600
    for bad in ("", "0D", "-1h", "2Y", "W"):
        with pytest.raises(ConfigurationError):
            retention_seconds(bad)
