"""Crash consistency: a run killed with SIGKILL at many points, then run again, ends with the
store of one clean run — same documents, same values, no duplicates, exact aggregates."""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, date, datetime, timedelta

import pytest

from konnectors.enedis_dataconnect.sandbox import EnedisSandbox
from konnectors.meteofrance_obs.sandbox import MeteoFranceSandbox
from tests.conftest import write_json
from tests.konnectors.greenbutton.test_espi import SAMPLES
from tests.reliability.conftest import embedded_snapshot, kill_after_requests, kill_after_seconds, konnector

TODAY = date(2024, 11, 5)
FULL_YEAR = SAMPLES / "gba_coastal_multi_family_hourly_2011_full_year.xml"


def clean_then_crashed(tmp_path, slug: str, setup, env: dict, kills: list[tuple[str, float]]):
    """The clean store, then for each kill point: killed run, re-run, and the store it ended with.

    A kill point is ``("request", n)``: when the sandbox receives the n-th request, or
    ``("moment", f)``: at the fraction f of the clean run's duration.

    ``setup()`` gives a context manager yielding ``(sandbox or None, dev-config)``; each run gets a
    fresh sandbox with the same seed (the same data), so one run's calls never count against the
    provider quota of the next, as they would not across real days.
    """
    expected, duration = _run_to_completion(tmp_path / "clean", slug, setup, env)
    results = []
    for number, (kind, value) in enumerate(kills):
        work = tmp_path / f"kill{number}"
        work.mkdir()
        with setup() as (sandbox, config):
            write_json(work / "dev.json", config)
            process = konnector("run", slug, "--config", "dev.json", cwd=work, env=env)
            if kind == "request":
                kill_after_requests(sandbox, process, int(value))
            else:
                kill_after_seconds(process, value * duration)
            process.wait(120)
            if sandbox is not None:
                sandbox.on_request = None
            rerun = konnector("run", slug, "--config", "dev.json", cwd=work, env=env)
            assert rerun.wait(120) == 0, rerun.stderr.read()
        results.append((kind, value, process.returncode, embedded_snapshot(work / "konnector-data")))
    return expected, results


def _run_to_completion(work, slug: str, setup, env: dict):
    work.mkdir()
    with setup() as (_, config):
        write_json(work / "dev.json", config)
        started = time.monotonic()
        assert konnector("run", slug, "--config", "dev.json", cwd=work, env=env).wait(120) == 0
        duration = time.monotonic() - started
    return embedded_snapshot(work / "konnector-data"), duration


def sandboxed(sandbox_class, seed: int, today: date | None = None, **parameters):
    @contextlib.contextmanager
    def setup():
        with sandbox_class(seed=seed) as sandbox:
            if today is not None:
                sandbox.today = today
            yield sandbox, {**sandbox.dev_config(), "parameters": parameters}

    return setup


def check(expected, results, reliability, name: str) -> None:
    killed = [r for r in results if r[2] != 0]
    for kind, value, _, snapshot in results:
        assert snapshot.keys() == expected.keys(), (kind, value)
        for db, docs in expected.items():
            assert snapshot[db] == docs, f"{db} differs after a kill at {kind} {value}"
    assert len(results) >= 20 and len(killed) >= len(results) // 2
    reliability.record(
        "crash consistency",
        f"{name}: SIGKILL then re-run equals one clean run",
        f"{len(results)} kill points ({len(killed)} killed mid-run)",
        "all converged",
    )


def test_enedis_dataconnect_survives_kills_at_every_request_and_in_between(tmp_path, reliability):
    setup = sandboxed(EnedisSandbox, 5, TODAY, curve_history_days=14)
    env = {"KONNECTOR_NOW": f"{TODAY}T12:00:00+01:00"}
    kills = [("request", n) for n in range(1, 9)] + [("moment", 0.25 + 0.06 * n) for n in range(12)]
    expected, results = clean_then_crashed(tmp_path, "enedis-dataconnect", setup, env, kills)
    assert len(expected["com-grandlyon-enedis-minute"]) == 14 * 48 + 2  # with the 25-hour 27 October
    check(expected, results, reliability, "enedis-dataconnect (embedded store)")


def test_meteofrance_obs_survives_kills_at_every_request(tmp_path, reliability):
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    env = {"KONNECTOR_NOW": now.isoformat()}
    kills = [("request", n) for n in range(1, 25)]
    expected, results = clean_then_crashed(tmp_path, "meteofrance-obs", sandboxed(MeteoFranceSandbox, 2), env, kills)
    check(expected, results, reliability, "meteofrance-obs (embedded store)")


def test_greenbutton_file_survives_kills_at_any_moment(tmp_path, reliability):
    @contextlib.contextmanager
    def setup():
        yield None, {"fields": {"path": str(FULL_YEAR), "timezone": "America/Los_Angeles"}}

    kills = [("moment", 0.2 + 0.04 * n) for n in range(20)]
    expected, results = clean_then_crashed(tmp_path, "greenbutton-file", setup, {}, kills)
    check(expected, results, reliability, "greenbutton-file (embedded store)")


@pytest.mark.parametrize("runs", [2])
def test_concurrent_runs_of_one_account_end_like_one_run(tmp_path, reliability, runs):
    with EnedisSandbox(seed=5) as sandbox:
        sandbox.today = TODAY
        config = sandbox.dev_config()
        config["parameters"] = {"curve_history_days": 14}
        env = {"KONNECTOR_NOW": f"{TODAY}T12:00:00+01:00"}
        clean = tmp_path / "clean"
        clean.mkdir()
        write_json(clean / "dev.json", config)
        assert konnector("run", "enedis-dataconnect", "--config", "dev.json", cwd=clean, env=env).wait(120) == 0
        both = tmp_path / "both"
        both.mkdir()
        write_json(both / "dev.json", config)
        konnector("run", "enedis-dataconnect", "--config", "dev.json", cwd=both, env=env).wait(120)
        processes = [
            konnector("run", "enedis-dataconnect", "--config", "dev.json", cwd=both, env=env) for _ in range(runs)
        ]
        statuses = [p.wait(120) for p in processes]
    assert statuses == [0] * runs, [p.stderr.read() for p in processes]
    assert embedded_snapshot(both / "konnector-data") == embedded_snapshot(clean / "konnector-data")
    reliability.record(
        "concurrency",
        "two runs of the same account at once (after a first run)",
        f"{runs} simultaneous runs",
        "same store as one run, both exit 0",
    )
