"""Ecowatt v5 signals: parse RTE's answer, and find the periods in each day.

RTE sends ``{"signals": [{"GenerationFichier", "jour", "dvalue", "message",
"values": [{"pas", "hvalue"}]}]}`` for today and the next three days. Days come
in no particular order; ``jour`` is local midnight with its offset; ``pas`` is
the hour index from that midnight, so a DST day has 23 or 25 values (or fewer,
when RTE has not published them all). ``hvalue``: 0 decarbonised production,
1 normal, 2 tense (orange), 3 very tense (red).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from framework import VendorDown

PARIS = ZoneInfo("Europe/Paris")
TENSE = 2
DECARBONISED = 0


@dataclass(frozen=True)
class Day:
    midnight: datetime
    dvalue: int
    message: str
    generated_at: str
    hours: dict[int, int]
    """hvalue by ``pas``."""

    @property
    def date(self) -> date:
        return self.midnight.date()


def parse(payload: Any) -> list[Day]:
    """The days of an answer, sorted; a missing or malformed field is a clear ``VendorDown``."""
    try:
        signals = payload["signals"]
        days = [_day(signal) for signal in signals]
    except (KeyError, TypeError, ValueError) as exc:
        raise VendorDown(f"RTE Ecowatt sent signals in an unexpected shape ({type(exc).__name__}: {exc})") from None
    return sorted(days, key=lambda day: day.midnight)


def _day(signal: dict[str, Any]) -> Day:
    midnight = datetime.fromisoformat(signal["jour"])
    if midnight.utcoffset() is None:
        midnight = midnight.replace(tzinfo=PARIS)
    hours = {int(value["pas"]): int(value["hvalue"]) for value in signal["values"]}
    if any(not 0 <= level <= 3 for level in hours.values()) or not 1 <= int(signal["dvalue"]) <= 3:
        raise ValueError(f"level out of range on {signal['jour']}")
    return Day(midnight, int(signal["dvalue"]), str(signal.get("message", "")), str(signal["GenerationFichier"]), hours)


def hour_start(day: Day, pas: int) -> datetime:
    """Local start of hour ``pas``: counted in real hours from midnight, so DST days come out right."""
    return (day.midnight + timedelta(hours=pas)).astimezone(PARIS)


def day_document(day: Day) -> dict[str, Any]:
    return {
        "_id": day.date.isoformat(),
        "date": day.date.isoformat(),
        "dvalue": day.dvalue,
        "message": day.message,
        "generated_at": day.generated_at,
        "values": [
            {"pas": pas, "hvalue": day.hours[pas], "start": hour_start(day, pas).isoformat()}
            for pas in sorted(day.hours)
        ],
    }


def periods(day: Day) -> list[dict[str, Any]]:
    """Contiguous runs of tense hours (orange/red, level = the worst) and of decarbonised hours."""
    found = []
    for kind, inside in (("tension", lambda v: v >= TENSE), ("decarbonised", lambda v: v == DECARBONISED)):
        run: list[int] = []
        for pas in [*sorted(day.hours), None]:
            if pas is not None and inside(day.hours[pas]) and (not run or pas == run[-1] + 1):
                run.append(pas)
                continue
            if run:
                found.append(_period(day, kind, run))
            run = [pas] if pas is not None and inside(day.hours[pas]) else []
    return found


def _period(day: Day, kind: str, run: list[int]) -> dict[str, Any]:
    start, end = hour_start(day, run[0]), hour_start(day, run[-1]) + timedelta(hours=1)
    return {
        "_id": f"{day.date.isoformat()}/{kind}/{start.strftime('%H:%M%z')}",
        "date": day.date.isoformat(),
        "kind": kind,
        "level": max(day.hours[pas] for pas in run),
        "start": start.isoformat(),
        "end": end.astimezone(PARIS).isoformat(),
        "hours": len(run),
    }
