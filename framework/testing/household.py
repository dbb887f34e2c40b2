"""Deterministic synthetic consumption of a plausible household, for sandboxes and demos.

The shape: a base load, a morning and an evening peak, more use on weekends,
electric heating in winter, and a little noise drawn from a seeded generator
so the same seed and instant always give the same value.
"""

from __future__ import annotations

import functools
import math
import random
from datetime import UTC, date, datetime, timedelta, tzinfo


def load_kwh(when: datetime, minutes: int = 60, seed: int = 0) -> float:
    """Energy used in the ``minutes`` starting at ``when`` (local wall-clock time), in kWh."""
    hour = when.hour + when.minute / 60
    base = 0.25
    morning = 0.6 * math.exp(-(((hour - 7.5) / 1.2) ** 2))
    evening = 1.1 * math.exp(-(((hour - 19.5) / 2.0) ** 2))
    weekend = 1.25 if when.weekday() >= 5 and 9 <= hour <= 18 else 1.0
    day_of_year = when.timetuple().tm_yday
    heating = 0.8 * max(0.0, math.cos(2 * math.pi * (day_of_year - 15) / 365))
    noise = random.Random(f"{seed}:{when.isoformat()}").uniform(0.9, 1.1)
    hourly = (base + morning + evening * weekend + heating) * noise
    return round(hourly * minutes / 60, 3)


def day_steps(day: date, minutes: int, zone: tzinfo) -> list[datetime]:
    """The local start of every ``minutes`` step of ``day``, counted in real time (46 or 50 half hours on DST days)."""
    instant = datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
    following = day + timedelta(days=1)
    stop = datetime(following.year, following.month, following.day, tzinfo=zone).astimezone(UTC)
    steps = []
    while instant < stop:
        steps.append(instant.astimezone(zone))
        instant += timedelta(minutes=minutes)
    return steps


def day_loads_kwh(day: date, minutes: int, zone: tzinfo, seed: int = 0) -> list[float]:
    """Energy of every ``minutes`` step of ``day`` (the steps of :func:`day_steps`), in kWh.

    The shape of :func:`load_kwh`, with the noise drawn from one generator seeded per day instead
    of one per step: a sandbox that answers three years of daily totals in one call (Enedis: 365
    days × 48 half hours) then spends milliseconds on it, not seconds of CPU that would hold the
    provider's latency hostage. The values differ from :func:`load_kwh`'s (the noise), the same
    seed and day always give the same ones.
    """
    hours = _step_hours(day, minutes, zone)
    weekend = day.weekday() >= 5
    heating = 0.8 * max(0.0, math.cos(2 * math.pi * (day.timetuple().tm_yday - 15) / 365))
    noise = random.Random(f"{seed}:{day.isoformat()}:{minutes}")
    return [
        round((shape + heating) * noise.uniform(0.9, 1.1) * minutes / 60, 3)
        for shape in (_shape(hour, weekend) for hour in hours)
    ]


def _step_hours(day: date, minutes: int, zone: tzinfo) -> tuple[float, ...]:
    """The local hour (with its fraction) of each step of ``day``: a fixed list but on DST days."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
    following = datetime.combine(day + timedelta(days=1), midnight.timetz())
    if midnight.utcoffset() == following.utcoffset():
        return _regular_hours(minutes)
    return tuple(step.hour + step.minute / 60 for step in day_steps(day, minutes, zone))


@functools.cache
def _regular_hours(minutes: int) -> tuple[float, ...]:
    return tuple(n * minutes / 60 for n in range(24 * 60 // minutes))


@functools.cache
def _shape(hour: float, weekend: bool) -> float:
    """:func:`load_kwh`'s hourly load at ``hour`` before heating and noise."""
    morning = 0.6 * math.exp(-(((hour - 7.5) / 1.2) ** 2))
    evening = 1.1 * math.exp(-(((hour - 19.5) / 2.0) ** 2))
    return 0.25 + morning + evening * (1.25 if weekend and 9 <= hour <= 18 else 1.0)
