"""Enedis metering answers to Ecolyo documents (pure)."""

from __future__ import annotations

from datetime import date

import pytest

from framework import VendorDown
from konnectors.enedis_dataconnect import metering


def answer(readings, **reading_type):
    return {"meter_reading": {"usage_point_id": "1", "reading_type": reading_type, "interval_reading": readings}}


def test_daily_wh_strings_become_kwh():
    [doc] = metering.daily(answer([{"value": "12540", "date": "2024-05-06"}])).documents
    assert (doc["_id"], doc["load"], doc["unit"]) == ("2024-05-06", 12.54, "kWh")


def test_curve_reading_is_the_energy_of_the_interval_ending_at_its_date():
    [doc] = metering.load_curve(
        answer([{"value": "1200", "date": "2024-05-06 00:30:00", "interval_length": "PT30M"}])
    ).documents
    assert doc["_id"] == "2024-05-06T00:00+0200" and doc["load"] == 0.6 and doc["interval"] == 30


def test_ten_minute_steps_use_their_real_length():
    [doc] = metering.load_curve(
        answer([{"value": "600", "date": "2024-05-06 10:10:00", "interval_length": "PT10M"}])
    ).documents
    assert doc["_id"] == "2024-05-06T10:00+0200" and doc["load"] == 0.1


def test_repeated_local_time_on_the_autumn_change_is_the_later_instant():
    ends = ("02:00:00", "02:30:00", "02:00:00", "02:30:00", "03:00:00")  # 00:00Z to 02:00Z
    readings = [{"value": "1000", "date": f"2024-10-27 {end}", "interval_length": "PT30M"} for end in ends]
    ids = [doc["_id"] for doc in metering.load_curve(answer(readings)).documents]
    assert ids == [
        "2024-10-27T01:30+0200",
        "2024-10-27T02:00+0200",
        "2024-10-27T02:30+0200",
        "2024-10-27T02:00+0100",
        "2024-10-27T02:30+0100",
    ]


def test_max_power_keeps_the_time():
    [doc] = metering.max_power(answer([{"value": "6120", "date": "2024-05-06 19:24:10"}])).documents
    assert (doc["load"], doc["unit"], doc["time"]) == (6.12, "kVA", "19:24:10")


@pytest.mark.parametrize("payload", [{}, {"meter_reading": []}, {"meter_reading": {"interval_reading": "x"}}])
def test_unexpected_answer_shapes_are_vendor_down(payload):
    with pytest.raises(VendorDown):
        metering.daily(payload)


@pytest.mark.parametrize(
    ("reading", "field", "reason"),
    [
        ({"value": "x", "date": "2024-05-07"}, "value", "is not a number"),
        ({"value": "NaN", "date": "2024-05-07"}, "value", "is not a finite number"),
        ({"value": "Infinity", "date": "2024-05-07"}, "value", "is not a finite number"),
        ({"value": None, "date": "2024-05-07"}, "value", "is missing or null"),
        ({"value": "-5", "date": "2024-05-07"}, "value", "is outside"),
        ({"value": "1", "date": "7 mai"}, "date", "is not a date"),
        ({"value": "1"}, "date", "is not a date"),
    ],
)
def test_a_bad_reading_is_skipped_and_named_the_others_kept(reading, field, reason):
    good = {"value": "12540", "date": "2024-05-06"}
    parsed = metering.daily(answer([good, reading, {**good, "date": "2024-05-08"}]))
    assert [d["_id"] for d in parsed.documents] == ["2024-05-06", "2024-05-08"]
    [skipped] = parsed.skipped
    assert (skipped.field, skipped.value) == (field, reading.get(field)) and reason in skipped.reason
    assert parsed.last_day() == date(2024, 5, 8)


def test_a_bad_curve_reading_is_skipped_and_the_day_goes_on():
    readings = [
        {"value": "1000", "date": "2024-05-06 00:30:00", "interval_length": "PT30M"},
        {"value": "NaN", "date": "2024-05-06 01:00:00", "interval_length": "PT30M"},
        {"value": "1000", "date": "2024-05-06 01:30:00", "interval_length": "P1D"},
        {"value": "1000", "date": "2024-05-06 02:00:00", "interval_length": "PT30M"},
    ]
    parsed = metering.load_curve(answer(readings))
    assert [d["_id"] for d in parsed.documents] == ["2024-05-06T00:00+0200", "2024-05-06T01:30+0200"]
    assert [(s.when, s.field) for s in parsed.skipped] == [
        ("2024-05-06 01:00:00", "value"),
        ("2024-05-06 01:30:00", "interval_length"),
    ]
