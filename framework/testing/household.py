"""Deterministic synthetic consumption of a plausible household, for sandboxes and demos.

The shape: a base load, a morning and an evening peak, more use on weekends,
electric heating in winter, and a little noise drawn from a seeded generator
so the same seed and instant always give the same value.
"""

from __future__ import annotations

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
