"""``meteofrance-obs`` on payloads a real feed sends, and what days, months and years say about them.

Each case runs the CLI against the sandbox over a real socket.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from konnectors.meteofrance_obs.observations import hours_in_day
from tests.konnectors.meteofrance_obs.test_konnector import DAYS, HOURS, last_hour, meteo, store  # noqa: F401

STATION = "69029001"


def test_days_say_how_many_hours_they_hold_and_years_exist(cli, tmp_path, meteo):  # noqa: F811
    gap = last_hour() - timedelta(hours=6)
    meteo.missing.add(gap)
    result = cli("run", "meteofrance-obs", "--config", "dev.json")
    assert result.status == 0, result.output
    hours = Counter(h["_id"][: len(STATION) + 11] for h in store(tmp_path).id_range(HOURS))
    days = {d["_id"]: d for d in store(tmp_path).id_range(DAYS)}
    assert set(days) == set(hours) and sum(hours.values()) == 23
    for day_id, day in days.items():
        assert day["hours"] == hours[day_id]
        assert day.get("partial", False) is (hours[day_id] < hours_in_day(day_id))
    assert any(day.get("partial") for day in days.values())  # 23 of the last 24 hours cannot fill every day
    years = list(store(tmp_path).id_range("fr.meteofrance.observation.year"))
    assert years and all(y["partial"] is True and "temperature" in y for y in years)
    months = {m["_id"]: m for m in store(tmp_path).id_range("fr.meteofrance.observation.month")}
    for year in years:
        of_year = [m["temperature"] for k, m in months.items() if k.startswith(year["_id"])]
        assert year["temperature"] == round(sum(of_year) / len(of_year), 9)


def test_hours_of_24_23_and_25_for_dst_days():
    assert hours_in_day(f"{STATION}/2024-07-01") == 24
    assert hours_in_day(f"{STATION}/2024-03-31") == 23
    assert hours_in_day("2024-10-27") == 25


def test_bad_values_are_left_out_with_a_warning_and_the_rest_stored(cli, tmp_path, meteo):  # noqa: F811
    as_text, not_a_number, undated = (last_hour() - timedelta(hours=n) for n in (3, 4, 5))
    meteo.overrides[as_text] = {"t": "chaud"}
    meteo.overrides[not_a_number] = {"pres": float("nan")}
    meteo.overrides[undated] = {"validity_time": None}
    result = cli("run", "meteofrance-obs", "--config", "dev.json", "--log-format", "json")
    assert result.status == 0, result.output
    hours = {h["validity_time"]: h for h in store(tmp_path).id_range(HOURS)}
    assert len(hours) == 23
    stamp = f"{as_text:%Y-%m-%dT%H:%M:%S}Z"
    assert "temperature" not in hours[stamp] and "humidity" in hours[stamp]
    other = hours[f"{not_a_number:%Y-%m-%dT%H:%M:%S}Z"]
    assert "pressure" not in other and "temperature" in other
    warnings = [line["message"] for line in result.lines if line["type"] == "warning"]
    prefix = f"Météo-France station {STATION}: record skipped"
    assert f"{prefix}, {stamp}: t='chaud' is not a number" in warnings
    assert f"{prefix}, {not_a_number:%Y-%m-%dT%H:%M:%S}Z: pres=nan is not a finite number" in warnings
    assert f"{prefix}, None: validity_time=None is not a date-time" in warnings
