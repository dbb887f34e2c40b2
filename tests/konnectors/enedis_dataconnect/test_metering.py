"""Enedis metering answers to Ecolyo documents (pure)."""

from __future__ import annotations

import pytest

from framework import VendorDown
from konnectors.enedis_dataconnect import metering


def answer(readings, **reading_type):
    return {"meter_reading": {"usage_point_id": "1", "reading_type": reading_type, "interval_reading": readings}}


def test_daily_wh_strings_become_kwh():
    [doc] = metering.daily(answer([{"value": "12540", "date": "2024-05-06"}]))
    assert (doc["_id"], doc["load"], doc["unit"]) == ("2024-05-06", 12.54, "kWh")


def test_curve_reading_is_the_energy_of_the_interval_ending_at_its_date():
    [doc] = metering.load_curve(answer([{"value": "1200", "date": "2024-05-06 00:30:00", "interval_length": "PT30M"}]))
    assert doc["_id"] == "2024-05-06T00:00+0200" and doc["load"] == 0.6 and doc["interval"] == 30


def test_ten_minute_steps_use_their_real_length():
    [doc] = metering.load_curve(answer([{"value": "600", "date": "2024-05-06 10:10:00", "interval_length": "PT10M"}]))
    assert doc["_id"] == "2024-05-06T10:00+0200" and doc["load"] == 0.1


def test_repeated_local_time_on_the_autumn_change_is_the_later_instant():
    ends = ("02:00:00", "02:30:00", "02:00:00", "02:30:00", "03:00:00")  # 00:00Z to 02:00Z
    readings = [{"value": "1000", "date": f"2024-10-27 {end}", "interval_length": "PT30M"} for end in ends]
    ids = [doc["_id"] for doc in metering.load_curve(answer(readings))]
    assert ids == [
        "2024-10-27T01:30+0200",
        "2024-10-27T02:00+0200",
        "2024-10-27T02:30+0200",
        "2024-10-27T02:00+0100",
        "2024-10-27T02:30+0100",
    ]


def test_max_power_keeps_the_time():
    [doc] = metering.max_power(answer([{"value": "6120", "date": "2024-05-06 19:24:10"}]))
    assert (doc["load"], doc["unit"], doc["time"]) == (6.12, "kVA", "19:24:10")


@pytest.mark.parametrize(
    "payload",
    [{}, {"meter_reading": {"interval_reading": [{"value": "1"}]}}, answer([{"value": "x", "date": "2024-05-06"}])],
)
def test_unexpected_shapes_are_vendor_down(payload):
    with pytest.raises(VendorDown):
        metering.daily(payload)


def test_unknown_interval_length_is_vendor_down():
    with pytest.raises(VendorDown, match="interval_length"):
        metering.load_curve(answer([{"value": "1", "date": "2024-05-06 00:30:00", "interval_length": "P1D"}]))
