"""SGE measures (as zeep serialises them) to Ecolyo documents (pure).

v3 dates are "yyyy-MM-dd HH:mm:ss" in Paris local time; a load-curve point is dated
at the end of its step (C5 meters), so each one is placed at its local start, and
a repeated local time (autumn DST change) is the later instant. v2 dates carry
their offset. Energies come in Wh, curve powers as average W, max powers in VA.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from framework import Rollup, Series, VendorDown, point
from framework.store.timeseries import in_order

PARIS = ZoneInfo("Europe/Paris")
PREFIX = "com.grandlyon.enedis"
SUM = {"load": ("sum", "load")}
SERIES = Series(PREFIX, (Rollup("minute", "hour", SUM), Rollup("day", "month", SUM), Rollup("month", "year", SUM)))
DAY, MINUTE, MAX_POWER = SERIES.doctype("day"), SERIES.doctype("minute"), f"{PREFIX}.maxpower"
STEP_MINUTES = 30


def values(answer: Any) -> list[tuple[datetime, float]]:
    """(aware local datetime, value) of every measure of an answer, v2 or v3."""
    measures = [m for grandeur in _grandeurs(answer) for m in grandeur.get("points") or grandeur.get("mesure") or []]
    try:
        numbers = [float(m["v"]) for m in measures]
        stamps = [m["d"] for m in measures]
    except (KeyError, TypeError, ValueError):
        raise VendorDown(f"SGE sent a measure in an unexpected shape: {measures!r:.200}") from None
    if all(isinstance(d, datetime) for d in stamps):  # v2: dateTime with its offset
        return [
            (d.astimezone(PARIS) if d.tzinfo else d.replace(tzinfo=PARIS), v)
            for d, v in zip(stamps, numbers, strict=True)
        ]
    try:
        local = [datetime.strptime(str(d), "%Y-%m-%d %H:%M:%S") for d in stamps]  # v3: local wall clock
    except ValueError:
        raise VendorDown(f"SGE sent a measure date in an unexpected shape: {stamps[:3]!r}") from None
    return list(zip(in_order(local, PARIS), numbers, strict=True))


def _grandeurs(answer: Any) -> list[Any]:
    """zeep hands back the list itself when ``grandeur`` is the answer's only child (v2)."""
    return answer if isinstance(answer, list) else (answer or {}).get("grandeur") or []


def daily(answer: Any) -> list[dict[str, Any]]:
    return [point("day", when.date(), load=value / 1000, unit="kWh") for when, value in values(answer)]


def curve(answer: Any) -> list[dict[str, Any]]:
    documents = []
    for end, watts in values(answer):
        start = (end.astimezone(UTC) - timedelta(minutes=STEP_MINUTES)).astimezone(PARIS)
        documents.append(point("minute", start, load=round(watts * STEP_MINUTES / 60 / 1000, 9), unit="kWh"))
    return documents


def max_power(answer: Any) -> list[dict[str, Any]]:
    documents = []
    for when, volt_amperes in values(answer):
        doc = point("day", date(when.year, when.month, when.day), load=volt_amperes / 1000, unit="kVA")
        documents.append(doc)
    return documents
