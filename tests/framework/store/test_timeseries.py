"""Time series and aggregation, on both backends: exact, idempotent, crash-safe."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from framework.store import DocumentStore, Writer
from framework.store.timeseries import Rollup, Series, energy_series, parent_id, period_id, point, write_points

PARIS = ZoneInfo("Europe/Paris")
DAILY = energy_series("com.example.energy", finest="day")


@pytest.fixture
def store(backend) -> DocumentStore:
    return DocumentStore(backend, Writer(app="ts"))


def days(start: date, count: int, load=lambda n: 1.0 + n / 10):
    return [point("day", start + timedelta(n), load=load(n)) for n in range(count)]


def loads(store, level, series=DAILY):
    return {d["_id"]: d.get("load") for d in store.id_range(series.doctype(level))}


def test_points_have_ecolyo_fields_and_sortable_ids():
    assert point("day", date(2024, 3, 5), load=2.5) == {
        "_id": "2024-03-05",
        "load": 2.5,
        "year": 2024,
        "month": 3,
        "day": 5,
        "hour": 0,
        "minute": 0,
    }
    month = point("month", date(2024, 3, 1), load=1, meter="pdl")
    assert month["_id"] == "pdl/2024-03" and (month["day"], month["meter"]) == (0, "pdl")
    assert point("year", date(2024, 3, 1))["month"] == 1
    stamp = datetime(2024, 3, 5, 14, 30, tzinfo=PARIS)
    assert period_id("minute", stamp) == "2024-03-05T14:30+0100"
    assert parent_id("m/2024-03-05T14:30+0100", "hour") == "m/2024-03-05T14+0100"
    assert parent_id("m/2024-03-05T14+0100", "day") == "m/2024-03-05"
    with pytest.raises(ValueError, match="timezone-aware"):
        period_id("hour", datetime(2024, 1, 1, 3))


def test_month_and_year_are_exact_sums(store):
    counts = write_points(store, DAILY, "day", days(date(2024, 1, 1), 31 + 29 + 5))
    assert counts == {"com.example.energy.day": 65, "com.example.energy.month": 3, "com.example.energy.year": 1}
    expected_january = round(sum(1.0 + n / 10 for n in range(31)), 9)
    months = {d["_id"]: d for d in store.id_range(DAILY.doctype("month"))}
    assert months["2024-01"]["load"] == expected_january
    assert "partial" not in months["2024-01"] and "partial" not in months["2024-02"]
    assert months["2024-03"]["partial"] is True
    [year] = store.id_range(DAILY.doctype("year"))
    assert year["load"] == round(sum(1.0 + n / 10 for n in range(65)), 9) and year["partial"] is True


def test_rerun_writes_nothing_and_keeps_revisions(store):
    points = days(date(2024, 1, 1), 40)
    write_points(store, DAILY, "day", points)
    before = {
        lvl: {d["_id"]: d["_rev"] for d in store.id_range(DAILY.doctype(lvl))} for lvl in ("day", "month", "year")
    }
    assert write_points(store, DAILY, "day", points) == {}
    after = {lvl: {d["_id"]: d["_rev"] for d in store.id_range(DAILY.doctype(lvl))} for lvl in ("day", "month", "year")}
    assert after == before


def test_overlapping_fetch_with_correction_never_double_counts(store):
    write_points(store, DAILY, "day", days(date(2024, 1, 1), 20))
    corrected = days(date(2024, 1, 15), 17, load=lambda n: 5.0)
    counts = write_points(store, DAILY, "day", corrected)
    assert counts["com.example.energy.day"] == 17
    expected = sum(1.0 + n / 10 for n in range(14)) + 17 * 5.0
    assert loads(store, "month")["2024-01"] == round(expected, 9)
    assert loads(store, "year")["2024"] == round(expected, 9)


def test_crash_between_points_and_aggregates_is_repaired_by_the_rerun(store):
    points = days(date(2024, 1, 1), 31)
    store.save(DAILY.doctype("day"), points)
    assert loads(store, "month") == {}
    write_points(store, DAILY, "day", points)
    assert loads(store, "month")["2024-01"] == round(sum(1.0 + n / 10 for n in range(31)), 9)
    assert loads(store, "year")["2024"] == loads(store, "month")["2024-01"]


def test_partial_first_month_never_overwrites_a_complete_older_total(store):
    store.save(DAILY.doctype("month"), [point("month", date(2023, 12, 1), load=900.0)])
    write_points(store, DAILY, "day", days(date(2023, 12, 20), 15))
    months = {d["_id"]: d for d in store.id_range(DAILY.doctype("month"))}
    assert months["2023-12"]["load"] == 900.0 and "partial" not in months["2023-12"]
    assert months["2024-01"]["partial"] is True


def test_completed_month_replaces_its_partial_total(store):
    write_points(store, DAILY, "day", days(date(2024, 2, 1), 10))
    assert next(store.id_range(DAILY.doctype("month")))["partial"] is True
    write_points(store, DAILY, "day", days(date(2024, 2, 11), 19, load=lambda n: 2.0))
    month = next(store.id_range(DAILY.doctype("month")))
    assert "partial" not in month
    assert month["load"] == round(sum(1.0 + n / 10 for n in range(10)) + 19 * 2.0, 9)


def test_dst_fall_back_keeps_both_half_hours_and_a_25_hour_day(store):
    series = energy_series("com.example.curve", finest="minute")
    start = datetime(2024, 10, 26, 22, 0, tzinfo=ZoneInfo("UTC"))
    points = [point("minute", (start + timedelta(minutes=30 * n)).astimezone(PARIS), load=0.5) for n in range(50)]
    write_points(store, series, "minute", points)
    minutes = list(store.id_range(series.doctype("minute")))
    assert len(minutes) == 50
    assert {m["_id"] for m in minutes} >= {"2024-10-27T02:30+0200", "2024-10-27T02:30+0100"}
    hours = loads(store, "hour", series)
    assert len(hours) == 25 and set(hours.values()) == {1.0}
    assert loads(store, "day", series) == {"2024-10-27": 25.0}


def test_power_uses_max_and_meters_stay_apart(store):
    power = Series("com.example.power", (Rollup("day", "month", {"load": ("max", "load")}),))
    for meter, peak in (("a", 6.0), ("b", 9.0)):
        pts = [point("day", date(2024, 5, d), meter=meter, load=float(d % 5)) for d in range(1, 10)]
        pts.append(point("day", date(2024, 5, 20), meter=meter, load=peak))
        write_points(store, power, "day", pts)
    assert loads(store, "month", power) == {"a/2024-05": 6.0, "b/2024-05": 9.0}


def test_temperature_mean_min_max(store):
    rules = {"t": ("mean", "t"), "t_min": ("min", "t"), "t_max": ("max", "t")}
    weather = Series("com.example.weather", (Rollup("hour", "day", rules),))
    base = datetime(2024, 7, 1, tzinfo=PARIS)
    write_points(store, weather, "hour", [point("hour", base + timedelta(hours=h), t=20.0 + h) for h in range(24)])
    [day] = store.id_range(weather.doctype("day"))
    assert (day["t"], day["t_min"], day["t_max"]) == (31.5, 20.0, 43.0)
