"""Ecowatt signal parsing and period finding (pure functions)."""

from __future__ import annotations

import pytest

from framework import VendorDown
from konnectors.rte_ecowatt import signals


def signal(jour: str, levels: list[int], dvalue: int = 1) -> dict:
    values = [{"pas": pas, "hvalue": level} for pas, level in enumerate(levels)]
    return {
        "GenerationFichier": "2024-01-14T17:00:00+01:00",
        "jour": jour,
        "dvalue": dvalue,
        "message": "m",
        "values": list(reversed(values)),
    }


def test_days_are_sorted_and_hours_keyed_by_pas():
    days = signals.parse(
        {"signals": [signal("2024-01-16T00:00:00+01:00", [1] * 24), signal("2024-01-15T00:00:00+01:00", [0] * 24)]}
    ).days
    assert [d.date.isoformat() for d in days] == ["2024-01-15", "2024-01-16"]
    assert days[0].hours[23] == 0


def test_periods_are_maximal_runs_with_the_worst_level():
    levels = [0, 0, 0, 1, 1, 2, 3, 2, 1, 2, 1] + [1] * 12 + [0]
    [day] = signals.parse({"signals": [signal("2024-01-15T00:00:00+01:00", levels, 3)]}).days
    found = [(p["kind"], p["start"][11:16], p["end"][11:16], p["level"], p["hours"]) for p in signals.periods(day)]
    assert found == [
        ("tension", "05:00", "08:00", 3, 3),
        ("tension", "09:00", "10:00", 2, 1),
        ("decarbonised", "00:00", "03:00", 0, 3),
        ("decarbonised", "23:00", "00:00", 0, 1),
    ]


def test_spring_dst_day_has_23_hours_placed_on_real_time():
    [day] = signals.parse({"signals": [signal("2024-03-31T00:00:00+01:00", [1, 1, 0, 0] + [1] * 19)]}).days
    [period] = signals.periods(day)
    assert (period["start"], period["end"]) == ("2024-03-31T03:00:00+02:00", "2024-03-31T05:00:00+02:00")
    assert signals.day_document(day)["values"][-1]["start"] == "2024-03-31T23:00:00+02:00"


@pytest.mark.parametrize("payload", [{}, [], {"signals": {}}])
def test_an_answer_without_signals_is_vendor_down(payload):
    with pytest.raises(VendorDown, match="unexpected shape"):
        signals.parse(payload)


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"dvalue": 0}, "dvalue"),
        ({"dvalue": 4}, "dvalue"),
        ({"dvalue": None}, "dvalue"),
        ({"dvalue": "orange"}, "dvalue"),
        ({"jour": "lundi"}, "jour"),
        ({"values": None}, "values"),
    ],
)
def test_a_bad_day_is_skipped_and_named_the_others_kept(bad, field):
    good = signal("2024-01-15T00:00:00+01:00", [1] * 24)
    parsed = signals.parse({"signals": [good, {**signal("2024-01-16T00:00:00+01:00", [1] * 24), **bad}]})
    assert [d.date.isoformat() for d in parsed.days] == ["2024-01-15"]
    [skipped] = parsed.skipped
    assert skipped.field == field and skipped.value == bad[field]


def test_a_bad_hour_is_left_out_of_its_day():
    day_signal = signal("2024-01-15T00:00:00+01:00", [1, 7, 1] + [1] * 21)
    day_signal["values"].append({"pas": "x", "hvalue": 1})
    parsed = signals.parse({"signals": [day_signal]})
    [day] = parsed.days
    assert 1 not in day.hours and len(day.hours) == 23
    assert [(s.when, s.field, s.value) for s in parsed.skipped] == [
        ("2024-01-15 pas 1", "hvalue", 7),
        ("2024-01-15 pas x", "pas", "x"),
    ]
