"""From stored time series to EnergyID meter readings (pure).

EnergyID wants meter *readings*: cumulative totals at instants (``el`` in kWh,
``gas`` in m³). A stored document holds the consumption of a period, so each one
becomes the running total at the **end** of its period, starting from the
meter's index given in the fields.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

DEFAULT_SOURCES = {
    "el": ("com.grandlyon.enedis", "org.greenbutton.electricity"),
    "gas": ("com.grandlyon.grdf", "org.greenbutton.gas"),
}
"""Metric -> the series prefixes it is read from, the first found wins."""
VALUE_FIELD = {"el": "load", "gas": "volume"}
"""Gas readings are in m³: GRDF's ``volume``; documents without one are skipped."""


@dataclass(frozen=True)
class Reading:
    ts: int
    metric: str
    value: float
    source_id: str


def period_end(doc_id: str, level: str, zone: tzinfo) -> datetime:
    """The instant a stored period ends, from its id (``[meter/]2024-03-05`` or ``…T14+0100``)."""
    stamp = doc_id.rpartition("/")[2]
    if level == "hour":
        start = datetime.strptime(stamp, "%Y-%m-%dT%H%z")
        return start + timedelta(hours=1)
    day = date.fromisoformat(stamp[:10])
    following = day + timedelta(days=1)
    return datetime(following.year, following.month, following.day, tzinfo=zone)


def readings(
    metric: str, level: str, docs: Iterable[dict[str, Any]], start_total: float, zone: tzinfo
) -> tuple[list[Reading], float]:
    """Cumulative readings for ``docs`` (in id order) and the total after the last one."""
    field = VALUE_FIELD[metric]
    total, found = start_total, []
    for doc in docs:
        value = doc.get(field)
        if not isinstance(value, (int, float)):
            continue
        total = round(total + value, 6)
        found.append(Reading(int(period_end(doc["_id"], level, zone).timestamp()), metric, total, doc["_id"]))
    return found, total


def upload_interval(policy: dict[str, Any]) -> int:
    """Seconds between readings the policy allows: ``uploadInterval``, or the older ``allowedInterval``."""
    if "uploadInterval" in policy:
        return int(policy["uploadInterval"])
    text = str(policy.get("allowedInterval", "PT1H"))
    units = {"D": 86400, "H": 3600, "M": 60, "S": 1}
    seconds, number = 0, ""
    for character in text.removeprefix("P").replace("T", ""):
        if character.isdigit():
            number += character
        else:
            seconds += int(number or 0) * units.get(character, 0)
            number = ""
    return seconds or 3600
