"""Ecowatt v5 signals: parse RTE's answer, and find the periods in each day.

RTE sends ``{"signals": [{"GenerationFichier", "jour", "dvalue", "message",
"values": [{"pas", "hvalue"}]}]}`` for today and the next three days. Days come
in no particular order; ``jour`` is local midnight with its offset; ``pas`` is
the hour index from that midnight, so a DST day has 23 or 25 values (or fewer,
when RTE has not published them all). ``hvalue``: 0 decarbonised production,
1 normal, 2 tense (orange), 3 very tense (red).

A value outside those ranges, or unreadable, is skipped with a warning naming it: the whole
day for ``jour``/``dvalue``, the hour alone for ``pas``/``hvalue``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from framework import VendorDown
from framework.records import BadRecord, Skipped, level

PARIS = ZoneInfo("Europe/Paris")
TENSE = 2
DECARBONISED = 0
DVALUES = (1, 2, 3)
"""``dvalue``: 1 no alert (green), 2 tense (orange), 3 very tense (red)."""
HVALUES = (0, 1, 2, 3)


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


@dataclass
class Parsed:
    """The usable days of an answer, and what was left out (each named in a warning)."""

    days: list[Day]
    skipped: list[Skipped]
    signals: int
    """How many day signals the answer held."""


def parse(payload: Any) -> Parsed:
    """The usable days of an answer, sorted; an answer without a ``signals`` list is ``VendorDown``.

    A day whose ``jour`` or ``dvalue`` is unreadable or out of range (``dvalue`` 1–3) is skipped;
    an hour whose ``pas`` or ``hvalue`` (0–3) is, is left out of its day.
    """
    found = payload.get("signals") if isinstance(payload, dict) else None
    if not isinstance(found, list):
        raise VendorDown("RTE Ecowatt sent signals in an unexpected shape (no 'signals' list)")
    days, skipped = [], []
    for signal in found:
        try:
            days.append(_day(signal, skipped))
        except BadRecord as error:
            jour = signal.get("jour", "?") if isinstance(signal, dict) else "?"
            skipped.append(Skipped.of(str(jour)[:10], error))
    return Parsed(sorted(days, key=lambda day: day.midnight), skipped, len(found))


def _day(signal: Any, skipped: list[Skipped]) -> Day:
    if not isinstance(signal, dict):
        raise BadRecord("signal", signal, "is not an object")
    try:
        midnight = datetime.fromisoformat(str(signal.get("jour")))
    except ValueError:
        raise BadRecord("jour", signal.get("jour"), "is not a date-time") from None
    if midnight.utcoffset() is None:
        midnight = midnight.replace(tzinfo=PARIS)
    dvalue = level(signal, "dvalue", DVALUES)
    values = signal.get("values")
    if not isinstance(values, list):
        raise BadRecord("values", values, "is not a list")
    hours = {}
    for value in values:
        try:
            pas = level(value, "pas", range(25))
            hours[pas] = level(value, "hvalue", HVALUES)
        except BadRecord as error:
            when = f"{midnight.date()} pas {value.get('pas', '?') if isinstance(value, dict) else '?'}"
            skipped.append(Skipped.of(when, error))
    message, generated = str(signal.get("message") or ""), str(signal.get("GenerationFichier") or "")
    return Day(midnight, dvalue, message, generated, hours)


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
