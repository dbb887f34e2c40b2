"""Per-record checks and the warnings naming what was skipped."""

from __future__ import annotations

import logging

import pytest

from framework.records import WARNED_AT_MOST, BadRecord, Skipped, level, number, warn_skipped


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "is missing or null"),
        ("abc", "is not a number"),
        (True, "is not a number"),
        ([1], "is not a number"),
        ("NaN", "is not a finite number"),
        (float("inf"), "is not a finite number"),
        (-1, "is outside 0..None"),
    ],
)
def test_number_refuses_what_cannot_be_stored(value, reason):
    with pytest.raises(BadRecord) as refused:
        number({"v": value}, "v", low=0)
    assert refused.value.reason == reason and refused.value.field == "v" and refused.value.value == value


def test_number_accepts_numbers_and_numeric_strings():
    assert number({"v": "12.5"}, "v") == 12.5 and number({"v": 3}, "v", low=0, high=3) == 3.0


@pytest.mark.parametrize("value", [0, 4, 1.5, "x", None])
def test_level_accepts_only_the_documented_levels(value):
    with pytest.raises(BadRecord):
        level({"dvalue": value}, "dvalue", (1, 2, 3))
    assert level({"dvalue": "2"}, "dvalue", (1, 2, 3)) == 2


def test_warnings_name_each_record_then_count_the_rest(caplog):
    skipped = [Skipped(f"2024-01-{n:02d}", "value", "x", "is not a number") for n in range(1, 16)]
    with caplog.at_level(logging.WARNING):
        warn_skipped(logging.getLogger("t"), "Provider daily", skipped)
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "Provider daily: record skipped, 2024-01-01: value='x' is not a number"
    assert len(messages) == WARNED_AT_MOST + 1 and messages[-1] == "Provider daily: 5 more record(s) skipped"
