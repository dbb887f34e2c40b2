"""Enedis metering data: the ``meter_reading`` answer, turned into Ecolyo documents (pure).

All numbers come as strings. Daily readings are energy in Wh, dated by day.
Load-curve readings are average power in W over ``interval_length`` (PT10M,
PT15M, PT30M or PT60M, not always 30), dated at the **end** of the interval in
Paris local time; during the autumn DST change the same local time comes
twice, in order, and the second one is the later instant. Max power readings
are in VA. Missing days are simply absent.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from framework import Rollup, Series, VendorDown, point
from framework.store.timeseries import in_order

PARIS = ZoneInfo("Europe/Paris")
PREFIX = "com.grandlyon.enedis"
SUM = {"load": ("sum", "load")}
SERIES = Series(PREFIX, (Rollup("minute", "hour", SUM), Rollup("day", "month", SUM), Rollup("month", "year", SUM)))
DAY, MINUTE, MAX_POWER = SERIES.doctype("day"), SERIES.doctype("minute"), f"{PREFIX}.maxpower"
_LENGTH = re.compile(r"^PT(\d+)M$")


def readings(payload: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The reading type and readings of an answer; a changed shape is a clear ``VendorDown``."""
    try:
        meter_reading = payload["meter_reading"]
        found = meter_reading.get("interval_reading") or []
        reading_type = meter_reading.get("reading_type") or {}
        if not isinstance(found, list) or any("value" not in r or "date" not in r for r in found):
            raise ValueError("interval_reading items need value and date")
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise VendorDown(f"Enedis sent metering data in an unexpected shape ({exc})") from None
    return reading_type, found


def daily(payload: Any) -> list[dict[str, Any]]:
    _, found = readings(payload)
    return [point("day", date.fromisoformat(r["date"][:10]), load=_number(r) / 1000, unit="kWh") for r in found]


def max_power(payload: Any) -> list[dict[str, Any]]:
    _, found = readings(payload)
    documents = []
    for reading in found:
        day = date.fromisoformat(reading["date"][:10])
        doc = point("day", day, load=_number(reading) / 1000, unit="kVA")
        if len(reading["date"]) > 10:
            doc["time"] = reading["date"][11:19]
        documents.append(doc)
    return documents


def load_curve(payload: Any) -> list[dict[str, Any]]:
    """Each reading as the energy (kWh) of its interval, placed at the interval's local start."""
    reading_type, found = readings(payload)
    default_length = reading_type.get("interval_length")
    documents = []
    ends = in_order((datetime.fromisoformat(r["date"]) for r in found), PARIS)
    for reading, end in zip(found, ends, strict=True):
        minutes = _minutes(reading.get("interval_length") or default_length or "PT30M")
        start = (end.astimezone(ZoneInfo("UTC")) - timedelta(minutes=minutes)).astimezone(PARIS)
        energy = _number(reading) * minutes / 60 / 1000
        documents.append(point("minute", start, load=round(energy, 9), unit="kWh", interval=minutes))
    return documents


def _number(reading: dict[str, Any]) -> float:
    try:
        return float(reading["value"])
    except (TypeError, ValueError):
        raise VendorDown(f"Enedis sent a reading whose value is not a number: {reading!r}") from None


def _minutes(length: str) -> int:
    match = _LENGTH.match(str(length))
    if not match:
        raise VendorDown(f"Enedis sent an unknown interval_length: {length!r}")
    return int(match.group(1))
