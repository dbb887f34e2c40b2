"""A job is a process of its own, forked from the worker (the default) or a fresh interpreter."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from framework.accounts import Account, AccountStore
from framework.crypto import SecretBox
from framework.fleet.worker import wait_for

KONNECTORS = Path(__file__).parent / "isolated"  # a second KONNECTOR_PATH directory (one may hold several)


@pytest.mark.parametrize("mode", ["fork", "subprocess"])
def test_each_job_is_a_process_of_its_own_and_a_crash_stays_in_it(fleet, db_prefix, mode):
    fleet.env["KONNECTOR_PATH"] += os.pathsep + str(KONNECTORS)
    fleet.env["KONNECTOR_JOB_PROCESS"] = mode
    accounts = AccountStore(fleet.store, SecretBox(fleet.key))
    for name, behaviour in (("first", "leak"), ("crash", "abort"), ("second", "leak")):
        accounts.save(Account(f"{db_prefix}{name}", "isolated", auth={"mode": behaviour}), frozenset())
    worker = fleet.worker(concurrency=1)
    ids = [fleet.cli("enqueue", "isolated", "--account", f"{db_prefix}{n}").stdout.strip() for n in ("first", "crash")]
    assert wait_for(lambda: all(fleet.finished(i) for i in ids), 60)
    ids.append(fleet.cli("enqueue", "isolated", "--account", f"{db_prefix}second").stdout.strip())
    assert wait_for(lambda: fleet.finished(ids[2]), 60)

    first, crashed, second = (fleet.jobs.get(i) for i in ids)
    assert crashed["state"] == "errored" and crashed["error"] == "UNKNOWN_ERROR"  # died of SIGABRT, no report
    assert first["state"] == second["state"] == "done"  # the worker outlived the crash and ran the next job
    assert worker.poll() is None
    runs = {run["_id"]: run for run in fleet.store.id_range("io.example.run")}
    one, two = runs[ids[0]], runs[ids[2]]
    assert one["pid"] != two["pid"] and one["pid"] != one["ppid"]
    assert one["ppid"] == two["ppid"]  # both children of the one pool process
    assert one["inherited"] == two["inherited"] == []  # nothing the first job did is in the second
