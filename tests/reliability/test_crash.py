"""Crash consistency: a run killed with SIGKILL at many points, then run again, ends with the
store of one clean run — same documents, same values, no duplicates, exact aggregates."""

from __future__ import annotations

import contextlib
from datetime import UTC, date, datetime, timedelta

import pytest

from framework.testing.reliability import assert_converged, clean_then_crashed, couchdb, embedded, start_run
from konnectors.enedis_dataconnect.sandbox import EnedisSandbox
from konnectors.meteofrance_obs.sandbox import MeteoFranceSandbox
from tests.conftest import write_json
from tests.konnectors.greenbutton.test_espi import SAMPLES

TODAY = date(2024, 11, 5)
FULL_YEAR = SAMPLES / "gba_coastal_multi_family_hourly_2011_full_year.xml"
ENEDIS_DOCTYPES = [f"com.grandlyon.enedis.{level}" for level in ("day", "minute", "hour", "month", "year", "maxpower")]


def sandboxed(sandbox_class, seed: int, today: date | None = None, **parameters):
    @contextlib.contextmanager
    def setup():
        with sandbox_class(seed=seed) as sandbox:
            if today is not None:
                sandbox.today = today
            yield sandbox, {**sandbox.dev_config(), "parameters": parameters}

    return setup


def check(expected, results, reliability, name: str, minimum: int = 20) -> None:
    killed = assert_converged(expected, results)
    assert len(results) >= minimum and killed >= len(results) // 2
    reliability.record(
        "crash consistency",
        f"{name}: SIGKILL then re-run equals one clean run",
        f"{len(results)} kill points ({killed} killed mid-run)",
        "all converged",
    )


ENEDIS_ENV = {"KONNECTOR_NOW": f"{TODAY}T12:00:00+01:00"}


def test_enedis_dataconnect_survives_kills_at_every_request_and_in_between(tmp_path, reliability):
    setup = sandboxed(EnedisSandbox, 5, TODAY, curve_history_days=14)
    kills = [("request", n) for n in range(1, 9)] + [("moment", 0.25 + 0.06 * n) for n in range(12)]
    expected, results = clean_then_crashed(tmp_path, "enedis-dataconnect", setup, embedded(ENEDIS_ENV), kills)
    assert len(expected["com-grandlyon-enedis-minute"]) == 14 * 48 + 2  # with the 25-hour 27 October
    check(expected, results, reliability, "enedis-dataconnect (embedded store)")


COUCH_KILLS = {
    "memory": [("request", n) for n in range(1, 8)] + [("moment", 0.25 + 0.05 * n) for n in range(13)],
    # on disk, a subset (every request, five moments) keeps CI time down; same code paths
    "disk": [("request", n) for n in range(1, 8)] + [("moment", 0.3 + 0.12 * n) for n in range(5)],
}


@pytest.mark.parametrize("mode", ["memory", "disk"])
def test_enedis_dataconnect_on_couchdb_survives_kills(tmp_path, reliability, request, mode):
    url = request.getfixturevalue("couchdb_disk_url" if mode == "disk" else "couchdb_url")
    setup = sandboxed(EnedisSandbox, 5, TODAY, curve_history_days=7)
    kills = COUCH_KILLS[mode]
    store = couchdb(url, ENEDIS_DOCTYPES, ENEDIS_ENV)
    expected, results = clean_then_crashed(tmp_path, "enedis-dataconnect", setup, store, kills)
    assert len(expected["com.grandlyon.enedis.minute"]) == 7 * 48
    check(expected, results, reliability, f"enedis-dataconnect (CouchDB, pouchdb-server {mode})", len(kills))


def test_meteofrance_obs_survives_kills_at_every_request(tmp_path, reliability):
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    kills = [("request", n) for n in range(1, 25)]
    store = embedded({"KONNECTOR_NOW": now.isoformat()})
    expected, results = clean_then_crashed(tmp_path, "meteofrance-obs", sandboxed(MeteoFranceSandbox, 2), store, kills)
    check(expected, results, reliability, "meteofrance-obs (embedded store)")


def test_greenbutton_file_survives_kills_at_any_moment(tmp_path, reliability):
    @contextlib.contextmanager
    def setup():
        yield None, {"fields": {"path": str(FULL_YEAR), "timezone": "America/Los_Angeles"}}

    kills = [("moment", 0.2 + 0.04 * n) for n in range(20)]
    expected, results = clean_then_crashed(tmp_path, "greenbutton-file", setup, embedded({}), kills)
    check(expected, results, reliability, "greenbutton-file (embedded store)")


@pytest.mark.parametrize("runs", [2])
def test_concurrent_runs_of_one_account_end_like_one_run(tmp_path, reliability, runs):
    with EnedisSandbox(seed=5) as sandbox:
        sandbox.today = TODAY
        config = {**sandbox.dev_config(), "parameters": {"curve_history_days": 14}}
        target, snapshot = embedded(ENEDIS_ENV)
        for name in ("clean", "both"):
            (tmp_path / name).mkdir()
            write_json(tmp_path / name / "dev.json", config)
            assert start_run("enedis-dataconnect", tmp_path / name, target).wait(120) == 0
        processes = [start_run("enedis-dataconnect", tmp_path / "both", target) for _ in range(runs)]
        statuses = [p.wait(120) for p in processes]
    assert statuses == [0] * runs, [p.stderr.read() for p in processes]
    assert snapshot(tmp_path / "both") == snapshot(tmp_path / "clean")
    reliability.record(
        "concurrency",
        "two runs of the same account at once (after a first run)",
        f"{runs} simultaneous runs",
        "same store as one run, both exit 0",
    )


def test_two_first_runs_at_once_end_like_one_run(tmp_path, reliability):
    """No store, no key, no account yet: both runs create them at the same moment, so the account
    creation, the key file and every document really conflict."""
    with EnedisSandbox(seed=5) as sandbox:
        sandbox.today = TODAY
        config = {**sandbox.dev_config(), "parameters": {"curve_history_days": 14}}
        target, snapshot = embedded(ENEDIS_ENV)
        for name in ("clean", "both"):
            (tmp_path / name).mkdir()
            write_json(tmp_path / name / "dev.json", config)
        assert start_run("enedis-dataconnect", tmp_path / "clean", target).wait(120) == 0
        processes = [start_run("enedis-dataconnect", tmp_path / "both", target) for _ in range(2)]
        statuses = [p.wait(120) for p in processes]
    assert statuses == [0, 0], [p.stderr.read() for p in processes]
    assert snapshot(tmp_path / "both") == snapshot(tmp_path / "clean")
    reliability.record(
        "concurrency",
        "two FIRST runs of the same account at once",
        "2 simultaneous runs on an empty data dir",
        "same store as one run, both exit 0",
    )
