"""ESPI's encoded DST rules (DstRuleType, espi.xsd) decoded and checked against the IANA database."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from konnectors.greenbutton.localtime import BadRule, DstRule, from_fields


@pytest.mark.parametrize(
    ("rule", "year", "day", "seconds"),
    [
        ("360E2000", 2019, date(2019, 3, 10), 7200),  # US start: second Sunday of March, 02:00
        ("B40E2000", 2019, date(2019, 11, 3), 7200),  # US end: first Sunday of November, 02:00
        ("3E0E2000", 2025, date(2025, 3, 30), 7200),  # EU start: last Sunday of March
        ("A40E2000", 2025, date(2025, 10, 5), 7200),  # Sydney start: first Sunday of October
        ("3010000F", 2025, date(2025, 3, 1), 15),  # operator 0: the 1st of March, 00:00:15
        ("3292A000", 2024, date(2024, 3, 11), 36000),  # operator 1: first Monday on or after the 9th, 10:00
        ("30000000", 2024, None, 0),  # operator 0 without a day of the month
    ],
)
def test_rules_decode_to_their_day(rule, year, day, seconds):
    if day is None:
        with pytest.raises(BadRule):
            DstRule.decode(rule)
        return
    decoded = DstRule.decode(rule)
    assert decoded.day(year) == day and decoded.seconds == seconds


@pytest.mark.parametrize("rule", ["B60E", "xyz", "123456789", "F00E2000", "360F8000"])
def test_undecodable_rules_are_reported_and_ignored(rule):
    local = from_fields({"tzOffset": "-28800", "dstOffset": "3600", "dstStartRule": rule, "dstEndRule": "B40E2000"})
    assert not local.has_dst and "DST rule" in local.problem
    assert local.offset_at(1_560_000_000) == -28800


def test_ffffffff_disables_dst():
    local = from_fields({"tzOffset": "3600", "dstOffset": "3600", "dstStartRule": "FFFFFFFF", "dstEndRule": "FFFFFFFF"})
    assert not local.has_dst and local.problem is None


@pytest.mark.parametrize(
    ("zone", "tz_offset", "start", "end"),
    [
        ("America/Los_Angeles", -28800, "360E2000", "B40E2000"),
        ("Europe/Paris", 3600, "3E0E2000", "AE0E3000"),
        ("Australia/Sydney", 36000, "A40E2000", "440E3000"),
    ],
)
def test_offsets_match_the_iana_zone_every_quarter_hour_of_three_years(zone, tz_offset, start, end):
    local = from_fields({"tzOffset": str(tz_offset), "dstOffset": "3600", "dstStartRule": start, "dstEndRule": end})
    first = int(datetime(2019, 1, 1, tzinfo=UTC).timestamp())
    wrong = [
        instant
        for instant in range(first, first + 3 * 365 * 86400, 900)
        if local.offset_at(instant) != datetime.fromtimestamp(instant, ZoneInfo(zone)).utcoffset().total_seconds()
    ]
    assert wrong == []


def test_offsets_beyond_18_hours_are_refused():
    with pytest.raises(ValueError, match="tzOffset"):
        from_fields({"tzOffset": "12abc"})
    with pytest.raises(ValueError, match="beyond"):
        from_fields({"tzOffset": "360000"})
