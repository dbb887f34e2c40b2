"""Enedis metering data: the ``meter_reading`` answer, turned into Ecolyo documents (pure).

All numbers come as strings. Daily readings are energy in Wh, dated by day.
Load-curve readings are average power in W over ``interval_length`` (PT10M,
PT15M, PT30M or PT60M, not always 30), dated at the **end** of the interval in
Paris local time; during the autumn DST change the same local time comes
twice, in order, and the second one is the later instant. Max power readings
are in VA. Missing days are simply absent.

A reading whose value is null, not a number, ``NaN``/``Infinity`` or negative, or whose
date or ``interval_length`` cannot be read, is skipped (and named in a warning); the other
readings of the answer are kept. Enedis removes bad data later, as it corrects it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from framework import Rollup, Series, VendorDown, point
from framework.records import BadRecord, Skipped, number
from framework.store.timeseries import in_order

PARIS = ZoneInfo("Europe/Paris")
PREFIX = "com.grandlyon.enedis"
SUM = {"load": ("sum", "load")}
SERIES = Series(PREFIX, (Rollup("minute", "hour", SUM), Rollup("day", "month", SUM), Rollup("month", "year", SUM)))
DAY, MINUTE, MAX_POWER = SERIES.doctype("day"), SERIES.doctype("minute"), f"{PREFIX}.maxpower"
_LENGTH = re.compile(r"^PT(\d+)M$")


@dataclass
class Parsed:
    """The documents of one answer and the readings left out (each named in a warning)."""

    documents: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def last_day(self) -> date | None:
        """The last local day a stored document is for: how far this answer really delivered."""
        return max((date(d["year"], d["month"], d["day"]) for d in self.documents), default=None)


def readings(payload: Any) -> tuple[dict[str, Any], list[Any]]:
    """The reading type and readings of an answer; a changed shape of the answer is a clear ``VendorDown``.

    Single readings are not checked here: each parser skips the bad ones.
    """
    try:
        meter_reading = payload["meter_reading"]
        found = meter_reading.get("interval_reading") or []
        reading_type = meter_reading.get("reading_type") or {}
        if not isinstance(found, list) or not isinstance(reading_type, dict):
            raise ValueError("interval_reading must be a list")
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise VendorDown(f"Enedis sent metering data in an unexpected shape ({exc})") from None
    return reading_type, found


def daily(payload: Any) -> Parsed:
    _, found = readings(payload)
    parsed = Parsed()
    for reading in found:
        try:
            day = _day(reading)
            parsed.documents.append(point("day", day, load=_number(reading) / 1000, unit="kWh"))
        except BadRecord as error:
            parsed.skipped.append(Skipped.of(_when(reading), error))
    return parsed


def max_power(payload: Any) -> Parsed:
    _, found = readings(payload)
    parsed = Parsed()
    for reading in found:
        try:
            doc = point("day", _day(reading), load=_number(reading) / 1000, unit="kVA")
        except BadRecord as error:
            parsed.skipped.append(Skipped.of(_when(reading), error))
            continue
        if len(reading["date"]) > 10:
            doc["time"] = reading["date"][11:19]
        parsed.documents.append(doc)
    return parsed


def load_curve(payload: Any) -> Parsed:
    """Each reading as the energy (kWh) of its interval, placed at the interval's local start."""
    reading_type, found = readings(payload)
    default_length = reading_type.get("interval_length")
    parsed = Parsed()
    dated = []
    for reading in found:
        try:
            dated.append((reading, _stamp(reading)))
        except BadRecord as error:
            parsed.skipped.append(Skipped.of(_when(reading), error))
    ends = in_order((stamp for _, stamp in dated), PARIS)
    for (reading, _), end in zip(dated, ends, strict=True):
        try:
            minutes = _minutes(reading.get("interval_length") or default_length or "PT30M")
            energy = _number(reading) * minutes / 60 / 1000
        except BadRecord as error:
            parsed.skipped.append(Skipped.of(_when(reading), error))
            continue
        start = (end.astimezone(ZoneInfo("UTC")) - timedelta(minutes=minutes)).astimezone(PARIS)
        parsed.documents.append(point("minute", start, load=round(energy, 9), unit="kWh", interval=minutes))
    return parsed


def _when(reading: Any) -> str:
    return str(reading.get("date", "?")) if isinstance(reading, dict) else "?"


def _day(reading: Any) -> date:
    try:
        return date.fromisoformat(str(reading["date"])[:10])
    except (KeyError, TypeError, ValueError):
        raise BadRecord("date", _date_field(reading), "is not a date") from None


def _stamp(reading: Any) -> datetime:
    try:
        return datetime.fromisoformat(str(reading["date"]))
    except (KeyError, TypeError, ValueError):
        raise BadRecord("date", _date_field(reading), "is not a date-time") from None


def _date_field(reading: Any) -> Any:
    return reading.get("date") if isinstance(reading, dict) else reading


def _number(reading: dict[str, Any]) -> float:
    """The reading's value: a finite, non-negative number (energy and power are never negative)."""
    return number(reading, "value", low=0)


def _minutes(length: Any) -> int:
    match = _LENGTH.match(str(length))
    if not match or int(match.group(1)) == 0:
        raise BadRecord("interval_length", length, "is not PT<minutes>M")
    return int(match.group(1))
