"""Readings → Ecolyo-shaped documents on the meter's local clock, and a guard against silent overwrites.

Each reading becomes one document at the level its duration fits (minute, hour, day), placed
in the local period of its start instant; a reading longer than a day (a billing period) is
spread evenly over the local days it covers, so day, month and year totals stay exact.

Two readings of one file that land on the same document id would overwrite each other in the
store: :class:`Identities` notices it, with memory proportional to the gaps in the series (runs
of consecutive periods), not to its length.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from framework import Documents, energy_series, point

from . import espi

DAY = 86400
KINDS = ("electricity", "gas", "electricity.export", "gas.export")
SERIES = tuple(energy_series(f"org.greenbutton.{kind}", finest="minute") for kind in KINDS)


class Clock(Protocol):
    """Where an instant falls on the meter's clock: the file's LocalTimeParameters or a user's zone."""

    def localize(self, instant: int) -> datetime: ...

    def describe(self) -> str: ...


def series_prefix(reading_type: espi.ReadingType) -> str:
    export = ".export" if reading_type.flow_direction == espi.RECEIVED else ""
    return f"org.greenbutton.{reading_type.kind}{export}"


def level_of(duration: int) -> str:
    if duration < 3600:
        return "minute"
    if duration == 3600:
        return "hour"
    return "day"


def placements(reading: espi.Reading, clock: Clock) -> Iterator[tuple[str, date | datetime, float]]:
    """(level, local period, share of the reading) for each document the reading gives."""
    start = clock.localize(reading.start)
    if reading.duration <= DAY + 3600:
        level = level_of(reading.duration)
        yield level, (start.date() if level == "day" else start), 1.0
        return
    end = clock.localize(reading.start + reading.duration)
    count = max(1, (end.date() - start.date()).days)
    for n in range(count):
        yield "day", start.date() + timedelta(n), 1.0 / count


def documents(readings: Iterable[espi.Reading], clock: Clock) -> Documents:
    """The documents of ``readings``, by doctype."""
    out: Documents = {}
    for reading in readings:
        prefix = series_prefix(reading.reading_type)
        for level, when, share in placements(reading, clock):
            values: dict[str, Any] = {"load": reading.value * share, "unit": reading.reading_type.unit}
            if reading.cost is not None:
                values["price"] = reading.cost * share
            out.setdefault(f"{prefix}.{level}", []).append(point(level, when, meter=reading.usage_point, **values))
    return out


def _key(level: str, when: date | datetime) -> int:
    """An integer per period of a level: consecutive periods differ by a constant step."""
    if isinstance(when, datetime):
        offset = int(when.utcoffset().total_seconds())  # type: ignore[union-attr]
        instant = int(when.timestamp())
        if level == "minute":
            return instant // 60
        return ((instant + offset) // 3600 * 3600 - offset) // 60
    return when.toordinal()


class _Runs:
    """A set of integers kept as sorted, disjoint runs ``[first, last, step]``: tiny for a regular series.

    A key inside a run's span but off its step (an irregular series) goes to a plain set.
    """

    def __init__(self) -> None:
        self.firsts: list[int] = []
        self.runs: list[list[int]] = []
        self.off_step: set[int] = set()

    def add(self, key: int) -> bool:
        """Add ``key``; False if it was already there."""
        index = bisect.bisect_right(self.firsts, key) - 1
        if index >= 0:
            run = self.runs[index]
            first, last, step = run
            if key <= last:
                on_step = key == first or (step > 0 and (key - first) % step == 0)
                if on_step or key in self.off_step:
                    return False
                self.off_step.add(key)
                return True
            following = self.firsts[index + 1] if index + 1 < len(self.firsts) else None
            if (step == 0 or key - last == step) and (following is None or key < following):
                run[1], run[2] = key, key - first if step == 0 else step
                return True
        self.firsts.insert(index + 1, key)
        self.runs.insert(index + 1, [key, key, 0])
        return True


class Identities:
    """The document ids a file has produced so far, per doctype and meter."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], _Runs] = {}

    def clash(self, reading: espi.Reading, clock: Clock) -> str | None:
        """The id of the first document of ``reading`` that an earlier reading already produced."""
        prefix = series_prefix(reading.reading_type)
        for level, when, _ in placements(reading, clock):
            runs = self.seen.setdefault((f"{prefix}.{level}", reading.usage_point), _Runs())
            if not runs.add(_key(level, when)):
                return f"{prefix}.{level} {point(level, when, meter=reading.usage_point)['_id']}"
        return None


def ids(reading: espi.Reading, clock: Clock) -> list[str]:
    """``doctype id`` of each document of ``reading``, as :meth:`Identities.clash` names them."""
    prefix = series_prefix(reading.reading_type)
    return [
        f"{prefix}.{level} {point(level, when, meter=reading.usage_point)['_id']}"
        for level, when, _ in placements(reading, clock)
    ]


def describe(reading: espi.Reading, clock: Clock) -> str:
    start = clock.localize(reading.start)
    return f"the reading starting {start.isoformat()} (start {reading.start}, {reading.duration} s)"
