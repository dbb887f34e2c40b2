"""Crash consistency: a run killed with SIGKILL at many points, then run again, ends with the
store of one clean run — same documents, same values, no duplicates, exact aggregates."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from framework.store import CouchBackend, DocumentStore
from konnectors.enedis_dataconnect.sandbox import EnedisSandbox
from konnectors.meteofrance_obs.sandbox import MeteoFranceSandbox
from tests.conftest import write_json
from tests.konnectors.greenbutton.test_espi import SAMPLES
from tests.reliability.conftest import embedded_snapshot, kill_after_requests, kill_after_seconds, konnector

TODAY = date(2024, 11, 5)
FULL_YEAR = SAMPLES / "gba_coastal_multi_family_hourly_2011_full_year.xml"
ENEDIS_LEVELS = ("day", "minute", "hour", "month", "year", "maxpower")

Target = Callable[[Path], tuple[list[str], dict[str, str]]]
"""For a work directory: the store arguments and environment of its runs."""


def embedded(env: dict[str, str]) -> tuple[Target, Callable[[Path], dict]]:
    return (lambda work: ([], env)), (lambda work: embedded_snapshot(work / "konnector-data"))


def couchdb(url: str, env: dict[str, str]) -> tuple[Target, Callable[[Path], dict]]:
    """Each work directory gets its own database prefix on the shared CouchDB-compatible server."""
    prefixes: dict[Path, str] = {}

    def target(work: Path) -> tuple[list[str], dict[str, str]]:
        prefix = prefixes.setdefault(work, f"k{uuid.uuid4().hex[:8]}-")
        return ["--couchdb", url], {**env, "KONNECTOR_DB_PREFIX": prefix}

    def snapshot(work: Path) -> dict:
        store = DocumentStore(CouchBackend(url, prefixes[work]))
        return {
            level: {
                d["_id"]: {k: v for k, v in d.items() if k not in ("_rev", "cozyMetadata")}
                for d in store.id_range(f"com.grandlyon.enedis.{level}")
            }
            for level in ENEDIS_LEVELS
        }

    return target, snapshot


def _run(slug: str, work: Path, target: Target):
    args, env = target(work)
    return konnector("run", slug, "--config", "dev.json", *args, cwd=work, env=env)


def clean_then_crashed(tmp_path: Path, slug: str, setup, store, kills: list[tuple[str, float]]):
    """The clean store, then for each kill point: killed run, re-run, and the store it ended with.

    A kill point is ``("request", n)``: when the sandbox receives the n-th request, or
    ``("moment", f)``: at the fraction f of the clean run's duration. ``setup()`` gives a context
    manager yielding ``(sandbox or None, dev-config)``; each run gets a fresh sandbox with the same
    seed (the same data), so one run's calls never count against the provider quota of the next.
    """
    target, snapshot = store
    clean = tmp_path / "clean"
    clean.mkdir()
    with setup() as (_, config):
        write_json(clean / "dev.json", config)
        started = time.monotonic()
        assert _run(slug, clean, target).wait(120) == 0
        duration = time.monotonic() - started
    expected = snapshot(clean)
    results = []
    for number, (kind, value) in enumerate(kills):
        work = tmp_path / f"kill{number}"
        work.mkdir()
        with setup() as (sandbox, config):
            write_json(work / "dev.json", config)
            process = _run(slug, work, target)
            if kind == "request":
                kill_after_requests(sandbox, process, int(value))
            else:
                kill_after_seconds(process, value * duration)
            process.wait(120)
            if sandbox is not None:
                sandbox.on_request = None
            rerun = _run(slug, work, target)
            assert rerun.wait(120) == 0, rerun.stderr.read()
        results.append((kind, value, process.returncode, snapshot(work)))
    return expected, results


def sandboxed(sandbox_class, seed: int, today: date | None = None, **parameters):
    @contextlib.contextmanager
    def setup():
        with sandbox_class(seed=seed) as sandbox:
            if today is not None:
                sandbox.today = today
            yield sandbox, {**sandbox.dev_config(), "parameters": parameters}

    return setup


def check(expected, results, reliability, name: str, minimum: int = 20) -> None:
    killed = [r for r in results if r[2] != 0]
    for kind, value, _, snapshot in results:
        assert snapshot.keys() == expected.keys(), (kind, value)
        for db, docs in expected.items():
            assert snapshot[db] == docs, f"{db} differs after a kill at {kind} {value}"
    assert len(results) >= minimum and len(killed) >= len(results) // 2
    reliability.record(
        "crash consistency",
        f"{name}: SIGKILL then re-run equals one clean run",
        f"{len(results)} kill points ({len(killed)} killed mid-run)",
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
    expected, results = clean_then_crashed(tmp_path, "enedis-dataconnect", setup, couchdb(url, ENEDIS_ENV), kills)
    assert len(expected["minute"]) == 7 * 48
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
            assert _run("enedis-dataconnect", tmp_path / name, target).wait(120) == 0
        processes = [_run("enedis-dataconnect", tmp_path / "both", target) for _ in range(runs)]
        statuses = [p.wait(120) for p in processes]
    assert statuses == [0] * runs, [p.stderr.read() for p in processes]
    assert snapshot(tmp_path / "both") == snapshot(tmp_path / "clean")
    reliability.record(
        "concurrency",
        "two runs of the same account at once (after a first run)",
        f"{runs} simultaneous runs",
        "same store as one run, both exit 0",
    )
