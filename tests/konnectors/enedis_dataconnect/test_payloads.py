"""``enedis-dataconnect`` on payloads a real Enedis sends: bad readings and late publication.

Each case runs the CLI against the sandbox over a real socket and checks what was stored,
what was skipped and the warning naming it.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from datetime import date, timedelta

import pytest

from konnectors.enedis_dataconnect.sandbox import EnedisSandbox
from tests.konnectors.enedis_dataconnect.test_konnector import P, store
from tests.konnectors.enedis_dataconnect.test_konnector import run as run_enedis

TODAY = date(2024, 6, 10)
HISTORY = 40


def run(cli, tmp_path, sandbox, today: date, curve_days: int):
    """A run with a short history (40 days of daily data and max power), to keep the tests fast."""
    parameters = {"curve_history_days": curve_days, "daily_history_days": HISTORY, "max_power_history_days": HISTORY}
    return run_enedis(cli, tmp_path, sandbox, today, parameters=parameters)


@pytest.fixture
def enedis():
    with EnedisSandbox(seed=7) as sandbox:
        yield sandbox


def warnings(result) -> list[str]:
    return [line["message"] for line in result.lines if line["type"] == "warning"]


@pytest.mark.parametrize("bad", ["abc", "NaN", "Infinity", None])
def test_a_bad_reading_is_skipped_with_a_warning_and_everything_else_is_stored(cli, tmp_path, enedis, bad):
    bad_day = TODAY - timedelta(3)
    enedis.bad_values[bad_day] = bad
    result = run(cli, tmp_path, enedis, TODAY, curve_days=7)
    assert result.status == 0, result.output
    days = {d["_id"]: d["load"] for d in store(tmp_path).id_range(f"{P}.day")}
    assert str(bad_day) not in days and len(days) == HISTORY - 1
    assert all(math.isfinite(v) for v in days.values())
    june = store(tmp_path).get(f"{P}.month", "2024-06")
    assert june["load"] == round(math.fsum(v for k, v in days.items() if k.startswith("2024-06")), 9)
    assert june["partial"] is True
    assert str(bad_day) not in {d["_id"] for d in store(tmp_path).id_range(f"{P}.maxpower")}
    hours = Counter(h["_id"][:10] for h in store(tmp_path).id_range(f"{P}.hour"))
    assert str(bad_day) not in hours and hours[str(bad_day - timedelta(1))] == 24
    said = warnings(result)
    assert f"Enedis daily: record skipped, {bad_day}: value={bad!r}" in " ".join(said)
    assert f"Enedis max_power: record skipped, {bad_day}" in " ".join(said)
    assert any(m.startswith("Enedis curve: 38 more record(s) skipped") for m in said)  # 48 readings, 10 named
    again = run(cli, tmp_path, enedis, TODAY, curve_days=7)
    assert again.status == 0 and "nothing new to write" in again.lines[-1]["message"]


def test_a_window_with_nothing_usable_ends_partial_after_storing_the_rest(cli, tmp_path, enedis):
    enedis.bad_values[TODAY - timedelta(1)] = "n/a"
    result = run(cli, tmp_path, enedis, TODAY, curve_days=1)
    assert result.status == 1 and result.error_code == "UNKNOWN_ERROR.PARTIAL_SYNC"
    yesterday = TODAY - timedelta(1)
    assert f"no usable reading for curve {yesterday} to {yesterday}" in result.lines[-2]["message"]
    assert len(list(store(tmp_path).id_range(f"{P}.day"))) == HISTORY - 1
    assert list(store(tmp_path).id_range(f"{P}.minute")) == []


def test_days_published_late_are_fetched_by_a_later_run(cli, tmp_path, enedis):
    enedis.publication_delay_days = 3
    first = run(cli, tmp_path, enedis, TODAY, curve_days=10)
    assert first.status == 0, first.output
    curve_days = sorted({m["_id"][:10] for m in store(tmp_path).id_range(f"{P}.minute")})
    assert curve_days[-1] == str(TODAY - timedelta(4))
    bookmark = _bookmark(tmp_path)
    assert bookmark["curve"] == {"data_until": str(TODAY - timedelta(3)), "asked_until": str(TODAY)}
    later = TODAY + timedelta(4)  # still three days late: days up to TODAY - 1 are out now
    asked_before = len(enedis.requests_to("consumption_load_curve"))
    second = run(cli, tmp_path, enedis, later, curve_days=10)
    assert second.status == 0, second.output
    hours = Counter(h["_id"][:10] for h in store(tmp_path).id_range(f"{P}.hour"))
    for n in range(4, 0, -1):
        assert hours[str(TODAY - timedelta(n))] == 24, f"{TODAY - timedelta(n)} missing"
    days = {d["_id"] for d in store(tmp_path).id_range(f"{P}.day")}
    assert {str(TODAY - timedelta(n)) for n in range(1, 4)} <= days
    asked = enedis.requests_to("consumption_load_curve")[asked_before:]
    assert min(r.query["start"] for r in asked) == str(TODAY - timedelta(3 + 2))  # data end minus the 2-day look-back


def test_days_never_published_are_given_up_after_the_patience(cli, tmp_path, enedis):
    assert run(cli, tmp_path, enedis, TODAY, curve_days=7).status == 0
    enedis.publication_delay_days = 100  # the meter stopped sending
    later = TODAY + timedelta(30)
    asked_before = len(enedis.requests_to("consumption_load_curve"))
    assert run(cli, tmp_path, enedis, later, curve_days=60).status == 0  # asks from the data, 30 days back
    asked = enedis.requests_to("consumption_load_curve")[asked_before:]
    assert min(r.query["start"] for r in asked) == str(TODAY - timedelta(2))
    asked_before = len(enedis.requests_to("consumption_load_curve"))
    result = run(cli, tmp_path, enedis, later + timedelta(1), curve_days=60)
    assert result.status == 0, result.output
    asked = enedis.requests_to("consumption_load_curve")[asked_before:]
    assert min(r.query["start"] for r in asked) == str(later - timedelta(14 + 2))  # asked up to `later` last time
    assert any("published nothing from" in m for m in warnings(result))


def _bookmark(tmp_path) -> dict:
    from framework.store import DocumentStore, SqliteBackend

    accounts = DocumentStore(SqliteBackend(tmp_path / "konnector-data" / "store.sqlite3"))
    [account] = list(accounts.id_range("io.cozy.accounts"))
    return json.loads(json.dumps(account["data"]))["bookmark"]
