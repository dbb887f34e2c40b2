"""From stored time series to EnergyID readings (pure but for the store reads it is handed).

EnergyID's Webhook V2 keys a reading by metric (``el``, ``el-i``, ``pv``, ``gas``,
``temperature.<place>``, optionally suffixed by a tariff: ``el.t1``) and wants meter *readings*
for energy: cumulative totals at instants (kWh for electricity, m³ for gas), and plain values
for temperature (°C). A stored document holds one period: it becomes the reading at the **end**
of its period, for energy the running total from the meter's start index.

:data:`DEFAULTS` maps every metric to the series we store; the ``metrics`` parameter overrides
or adds entries (see docs/konnectors/energyid-webhook.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from framework.errors import InvalidFields

PARIS = "Europe/Paris"
GAS_KWH_PER_M3 = 10.73
"""Gas energy to volume where a series stores kWh (Green Button therms, converted at 29.3071
kWh/therm by its parser): 1,037 Btu/ft³, the U.S. average heat content of natural gas
(EIA), is 10.73 kWh/m³. A document's own ``conversion_coefficient`` (GRDF) wins, and the
``gas_kwh_per_m3`` parameter overrides this default."""


@dataclass(frozen=True)
class Metric:
    """One EnergyID metric key and where its values come from."""

    key: str
    prefixes: tuple[str, ...]
    """Series read, the first holding data wins."""
    field: str = "load"
    cumulative: bool = True
    """Energy: running totals from a start index. Temperature: the period's value as is."""
    zone: str | None = None
    """The series' own zone for day periods; None: from its hour documents, else the ``timezone`` field."""
    per_meter: bool = False
    """One key per meter of the series: ``<key>.<meter>`` (``temperature.69029001``)."""


DEFAULTS: tuple[Metric, ...] = (
    Metric("el", ("com.grandlyon.enedis", "org.greenbutton.electricity"), zone=None),
    Metric("el-i", ("org.greenbutton.electricity.export",)),
    Metric("gas", ("com.grandlyon.grdf", "org.greenbutton.gas"), field="volume"),
    Metric("temperature", ("fr.meteofrance.observation",), "temperature", False, PARIS, per_meter=True),
)
"""Every series we store. ``pv`` has no default: no konnector stores production yet; map it with
the ``metrics`` parameter. No stored series has tariff splits yet; ``el.t1``-style keys can be
mapped to a field of a series the same way."""
ZONES = {"com.grandlyon.enedis": PARIS, "com.grandlyon.grdf": PARIS, "fr.meteofrance.observation": PARIS}


def mapping(parameter: Any) -> tuple[Metric, ...]:
    """:data:`DEFAULTS` with the ``metrics`` parameter applied: ``{key: {"series": [...], "field",
    "cumulative", "zone"}}`` adds or replaces a key; ``{key: null}`` removes one."""
    found = {metric.key: metric for metric in DEFAULTS}
    for key, entry in (parameter or {}).items():
        if entry is None:
            found.pop(key, None)
            continue
        series = entry.get("series")
        prefixes = (series,) if isinstance(series, str) else tuple(series or ())
        found[key] = Metric(
            key,
            prefixes,
            str(entry.get("field", "load")),
            bool(entry.get("cumulative", True)),
            entry.get("zone"),
            bool(entry.get("per_meter", False)),
        )
    return tuple(found.values())


@dataclass
class Reading:
    ts: int
    key: str
    value: float
    source_id: str
    total: float = 0.0


@dataclass
class Converter:
    """A document's value in EnergyID's unit: kWh of gas to m³ by the document's own
    coefficient or :data:`GAS_KWH_PER_M3`."""

    gas_kwh_per_m3: float = GAS_KWH_PER_M3
    converted: list[str] = field(default_factory=list)

    def value(self, metric: Metric, doc: dict[str, Any]) -> float | None:
        value = doc.get(metric.field)
        if metric.key.partition(".")[0] == "gas" and metric.field == "volume" and value is None:
            energy = doc.get("load")
            if isinstance(energy, (int, float)) and doc.get("unit", "kWh") == "kWh":
                coefficient = doc.get("conversion_coefficient") or self.gas_kwh_per_m3
                return energy / coefficient
            if isinstance(energy, (int, float)) and doc.get("unit") == "m3":
                return energy
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return value


@dataclass
class PeriodEnds:
    """When stored periods end, in the series' own time: hour ids carry their offset; a day ends
    at the next local midnight, in the series' zone, or else at the offset its hour documents
    had that day (Green Button files keep their own local time)."""

    level: str
    zone: tzinfo
    offsets: dict[date, tzinfo] = field(default_factory=dict)

    def __call__(self, doc_id: str) -> datetime:
        stamp = doc_id.rpartition("/")[2]
        if self.level == "hour":
            return datetime.strptime(stamp, "%Y-%m-%dT%H%z") + timedelta(hours=1)
        day = date.fromisoformat(stamp[:10])
        following = day + timedelta(days=1)
        zone = self.offsets.get(following) or self.offsets.get(day) or self.zone
        return datetime(following.year, following.month, following.day, tzinfo=zone)

    def learn(self, hour_docs: Iterable[dict[str, Any]]) -> None:
        """Take each day's offset from the first hour document of that day."""
        for doc in hour_docs:
            stamp = doc["_id"].rpartition("/")[2]
            day = date.fromisoformat(stamp[:10])
            if day not in self.offsets:
                self.offsets[day] = datetime.strptime(stamp[-5:], "%z").tzinfo  # type: ignore[assignment]


def period_end(doc_id: str, level: str, zone: tzinfo) -> datetime:
    """The instant a stored period ends, from its id (``[meter/]2024-03-05`` or ``…T14+0100``)."""
    return PeriodEnds(level, zone)(doc_id)


def readings(
    metric: Metric,
    key: str,
    docs: Iterable[dict[str, Any]],
    start_total: float,
    ends: PeriodEnds,
    converter: Converter,
) -> list[Reading]:
    """Readings for ``docs`` (in id order): running totals for energy, values for the rest."""
    total, found = start_total, []
    for doc in docs:
        value = converter.value(metric, doc)
        if value is None:
            continue
        ts = int(ends(doc["_id"]).timestamp())
        if metric.cumulative:
            total = round(total + value, 6)
            found.append(Reading(ts, key, total, doc["_id"], total))
        else:
            found.append(Reading(ts, key, round(value, 6), doc["_id"], total))
    return found


def zone_of(metric: Metric, prefix: str, fallback: str) -> tzinfo:
    """The metric's zone, else its series' provider's zone, else the ``timezone`` field."""
    name = metric.zone or ZONES.get(prefix) or fallback
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidFields(
            f"'{name}' is not a known IANA time zone (field 'timezone' or the metrics' 'zone')"
        ) from None


def upload_interval(policy: dict[str, Any]) -> int:
    """Seconds EnergyID asks between two uploads: ``uploadInterval``, or the older ``allowedInterval``."""
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
    return seconds
