"""A Green Button file's own local time: ``LocalTimeParameters`` and ESPI's encoded DST rules.

A file says how its meter's clock works: ``tzOffset`` (standard offset from UTC, seconds),
``dstOffset`` (the daylight-saving shift) and ``dstStartRule``/``dstEndRule``, each a 32-bit
hex value (``DstRuleType`` in the ESPI schema, espi.xsd; the schema's documentation is quoted
in VerdigrisTech/green-button-data, ``lib/green-button-data/dst.rb``):

- bits 0-11: seconds (0-3599); bits 12-16: hour (0-23);
- bits 17-19: day of the week, 1 = Monday … 7 = Sunday (0: not applicable);
- bits 20-24: day of the month (0: not applicable);
- bits 25-27: operator: 0 the day of the month; 1 the day of the week on or after the day of
  the month; 2-6 the first … fifth occurrence of the day of the week in the month; 7 the last;
- bits 28-31: month (1-12). ``FFFFFFFF`` disables DST.

A rule gives the wall-clock time of the change, read on the clock in force before it (so the
US rules ``360E2000``/``B40E2000`` — second Sunday of March, first Sunday of November, 02:00 —
change at 02:00 standard time and at 02:00 daylight time). Every reading is placed by the
offset in force at its start instant; a rule that cannot be decoded is reported and ignored.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from functools import lru_cache

DISABLED = 0xFFFFFFFF
_HEX32 = re.compile(r"^[0-9A-Fa-f]{1,8}$")


class BadRule(ValueError):
    """A DST rule that is not a valid ESPI ``DstRuleType``."""


@dataclass(frozen=True)
class DstRule:
    month: int
    operator: int
    day_of_month: int
    day_of_week: int
    """ISO: 1 = Monday … 7 = Sunday."""
    seconds: int
    """Seconds after local midnight of the change day (hour * 3600 + seconds)."""

    @classmethod
    def decode(cls, text: str) -> DstRule | None:
        """The rule of a hex ``DstRuleType`` (None when it disables DST); :class:`BadRule` otherwise."""
        if not _HEX32.match(text):
            raise BadRule(f"{text!r} is not a 32-bit hex value")
        value = int(text, 16)
        if value == DISABLED:
            return None
        rule = cls(
            month=value >> 28,
            operator=(value >> 25) & 0x7,
            day_of_month=(value >> 20) & 0x1F,
            day_of_week=(value >> 17) & 0x7,
            seconds=((value >> 12) & 0x1F) * 3600 + (value & 0xFFF),
        )
        if not 1 <= rule.month <= 12 or (value >> 12) & 0x1F > 23 or value & 0xFFF > 3599:
            raise BadRule(f"{text!r} has no valid month/hour/seconds")
        if rule.operator == 0 and not 1 <= rule.day_of_month <= 31:
            raise BadRule(f"{text!r} needs a day of the month")
        if rule.operator == 1 and not (1 <= rule.day_of_month <= 31 and 1 <= rule.day_of_week <= 7):
            raise BadRule(f"{text!r} needs a day of the month and a day of the week")
        if rule.operator >= 2 and not 1 <= rule.day_of_week <= 7:
            raise BadRule(f"{text!r} needs a day of the week")
        return rule

    def day(self, year: int) -> date:
        """The local date of the change in ``year``."""
        last = calendar.monthrange(year, self.month)[1]
        if self.operator == 0:
            return date(year, self.month, min(self.day_of_month, last))
        if self.operator == 1:
            first = date(year, self.month, min(self.day_of_month, last))
            return first + timedelta((self.day_of_week - first.isoweekday()) % 7)
        if self.operator == 7:
            end = date(year, self.month, last)
            return end - timedelta((end.isoweekday() - self.day_of_week) % 7)
        first = date(year, self.month, 1)
        nth = first + timedelta((self.day_of_week - first.isoweekday()) % 7 + 7 * (self.operator - 2))
        return nth if nth.month == self.month else nth - timedelta(7)  # no fifth one: the last


def _epoch(day: date) -> int:
    return calendar.timegm(day.timetuple())


@lru_cache(maxsize=64)
def _fixed(offset: int) -> tzinfo:
    return UTC if offset == 0 else timezone(timedelta(seconds=offset))


@dataclass(frozen=True)
class LocalTime:
    """LocalTimeParameters: where a reading's start instant falls on the meter's clock."""

    tz_offset: int
    dst_offset: int = 0
    dst_start: DstRule | None = None
    dst_end: DstRule | None = None
    problem: str | None = None
    """Why the DST rules were ignored, if they were (to be reported)."""
    _changes: dict[int, tuple[int, int]] = field(default_factory=dict, compare=False, repr=False)

    @property
    def has_dst(self) -> bool:
        return bool(self.dst_offset) and self.dst_start is not None and self.dst_end is not None

    def changes(self, year: int) -> tuple[int, int]:
        """UTC instants (Unix seconds) at which DST starts and ends in ``year``."""
        if year not in self._changes:
            assert self.dst_start is not None and self.dst_end is not None
            start = _epoch(self.dst_start.day(year)) + self.dst_start.seconds - self.tz_offset
            end = _epoch(self.dst_end.day(year)) + self.dst_end.seconds - self.tz_offset - self.dst_offset
            self._changes[year] = (start, end)
        return self._changes[year]

    def offset_at(self, instant: int) -> int:
        """The offset from UTC (seconds) in force at ``instant`` (Unix seconds)."""
        if not self.has_dst:
            return self.tz_offset
        year = datetime.fromtimestamp(instant + self.tz_offset, UTC).year
        start, end = self.changes(year)
        inside = start <= instant < end if start < end else (instant >= start or instant < end)
        return self.tz_offset + (self.dst_offset if inside else 0)

    def localize(self, instant: int) -> datetime:
        """``instant`` as an aware local datetime carrying the offset in force."""
        return datetime.fromtimestamp(instant, _fixed(self.offset_at(instant)))

    def describe(self) -> str:
        if not self.has_dst:
            return f"UTC{self.tz_offset / 3600:+g} (no DST)"
        return f"UTC{self.tz_offset / 3600:+g}, DST {self.dst_offset / 3600:+g} h by the file's rules"


def from_fields(fields: dict[str, str]) -> LocalTime:
    """A LocalTime from the text of a LocalTimeParameters' children (missing rules: no DST)."""
    tz_offset = _seconds(fields.get("tzOffset"), "tzOffset")
    dst_offset = _seconds(fields.get("dstOffset"), "dstOffset")
    start_text, end_text = fields.get("dstStartRule"), fields.get("dstEndRule")
    if not dst_offset or not start_text or not end_text:
        return LocalTime(tz_offset, dst_offset)
    try:
        start, end = DstRule.decode(start_text), DstRule.decode(end_text)
    except BadRule as error:
        problem = f"LocalTimeParameters: DST rule {error}; readings placed at the standard offset"
        return LocalTime(tz_offset, dst_offset, problem=problem)
    return LocalTime(tz_offset, dst_offset, start, end)


def _seconds(text: str | None, name: str) -> int:
    if text is None:
        return 0
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"LocalTimeParameters/{name} {text[:40]!r} is not an integer") from None
    if abs(value) > 18 * 3600:
        raise ValueError(f"LocalTimeParameters/{name} {value} is beyond ±18 hours")
    return value


class ZoneClock:
    """An IANA zone given by the user (the ``timezone`` field), which overrides the file's."""

    def __init__(self, zone: tzinfo) -> None:
        self.zone = zone

    def localize(self, instant: int) -> datetime:
        return datetime.fromtimestamp(instant, self.zone)

    def describe(self) -> str:
        return str(self.zone)
