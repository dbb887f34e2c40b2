"""Bookmarks that follow the data delivered, with a bounded catch-up."""

from __future__ import annotations

import logging
from datetime import date

from framework.marks import StreamMark

FLOOR = date(2024, 1, 1)


def test_a_new_stream_starts_at_the_floor():
    assert StreamMark().resume_from(FLOOR, 2, 14) == FLOOR


def test_the_mark_follows_the_last_day_delivered_not_the_window():
    mark = StreamMark()
    mark.delivered(date(2024, 6, 6), date(2024, 6, 10))
    mark.delivered(None, date(2024, 6, 12))  # an answer with nothing usable: the data mark stays
    assert mark.dump() == {"data_until": "2024-06-07", "asked_until": "2024-06-12"}
    assert mark.resume_from(FLOOR, 2, 14) == date(2024, 6, 5)
    mark.delivered(date(2024, 5, 1), date(2024, 6, 12))  # an older answer never moves it back
    assert mark.data_until == date(2024, 6, 7)


def test_days_asked_longer_than_the_patience_are_given_up_with_a_warning(caplog):
    mark = StreamMark(date(2024, 6, 7), date(2024, 7, 10))
    with caplog.at_level(logging.WARNING):
        start = mark.resume_from(FLOOR, 2, 14, logging.getLogger("t"), "Provider curve")
    assert start == date(2024, 6, 24)
    assert "published nothing from 2024-06-07 to 2024-06-25" in caplog.records[0].getMessage()


def test_an_older_bookmark_of_one_date_reads_as_both_marks():
    assert StreamMark.load("2024-06-10") == StreamMark(date(2024, 6, 10), date(2024, 6, 10))
    assert StreamMark.load(None) == StreamMark()
    assert StreamMark.load(StreamMark(date(2024, 6, 1), None).dump()) == StreamMark(date(2024, 6, 1), None)
