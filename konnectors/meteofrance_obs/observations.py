"""DPObs observations and station list: parsing and unit conversion (pure functions).

Observations come in SI units: temperatures in kelvin (``t``, ``td``, ``tx``,
``tn``), pressures in pascal (``pres``, ``pmer``), rain in mm (``rr1``), wind in
m/s (``ff``) and degrees (``dd``), humidity in % (``u``), sunshine in minutes
(``insolh``), radiation in J/m² (``ray_glo01``). Many are null, depending on the
station. We keep the SI values and add °C and hPa.

Days are averaged from hours and flagged ``partial`` with their ``hours`` count when fewer
than the local day has (23, 24 or 25); months from days, years from months (means of means).

Record rules: an observation without a readable ``validity_time`` is skipped; a field that is
not a finite number (a string, ``NaN``, ``Infinity``) is left out of its hour; each with a
warning. Nulls are normal (the station does not measure it) and are dropped silently.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from framework import Rollup, Series, VendorDown, point
from framework.records import BadRecord, Skipped, number

PARIS = ZoneInfo("Europe/Paris")
ZERO_CELSIUS = Decimal("273.15")


def hours_in_day(period: str) -> int:
    """Hours of the local day ``[station/]YYYY-MM-DD``: 23 or 25 on DST days, else 24."""
    day = date.fromisoformat(period.rpartition("/")[2][:10])
    midnight = datetime(day.year, day.month, day.day, tzinfo=PARIS)
    following = day + timedelta(days=1)
    next_midnight = datetime(following.year, following.month, following.day, tzinfo=PARIS)
    return round((next_midnight.timestamp() - midnight.timestamp()) / 3600)


_FROM_DAYS = {
    "temperature": ("mean", "temperature"),
    "temperature_min": ("min", "temperature_min"),
    "temperature_max": ("max", "temperature_max"),
    "rain": ("sum", "rain"),
}
SERIES = Series(
    "fr.meteofrance.observation",
    (
        Rollup(
            "hour",
            "day",
            {
                "temperature": ("mean", "temperature"),
                "temperature_min": ("min", "temperature"),
                "temperature_max": ("max", "temperature"),
                "rain": ("sum", "rain"),
            },
            copy=("station",),
            expected=hours_in_day,
            count="hours",
        ),
        Rollup("day", "month", _FROM_DAYS, copy=("station",)),
        Rollup("month", "year", _FROM_DAYS, copy=("station",)),
    ),
)
HOURS = SERIES.doctype("hour")
KELVIN_FIELDS = {"t": "temperature", "td": "dew_point", "tx": "temperature_max_hour", "tn": "temperature_min_hour"}
PASCAL_FIELDS = {"pres": "pressure", "pmer": "sea_level_pressure"}
KEPT_FIELDS = {
    "u": "humidity",
    "dd": "wind_direction",
    "ff": "wind_speed",
    "rr1": "rain",
    "insolh": "sunshine",
    "ray_glo01": "radiation",
}


def celsius(kelvin: float) -> float:
    """Exact to the input's decimals: 283.15 K is 10.0 °C, not 10.000000000000028."""
    return float(Decimal(str(kelvin)) - ZERO_CELSIUS)


def hectopascal(pascal: float) -> float:
    return float(Decimal(str(pascal)) / 100)


def hour_document(observation: dict[str, Any], station: str, skipped: list[Skipped] | None = None) -> dict[str, Any]:
    """One ``fr.meteofrance.observation.hour`` document, local wall-clock fields, nulls left out.

    Raises :class:`BadRecord` without a readable ``validity_time``; a field that is not a finite
    number is left out and added to ``skipped``.
    """
    stamp = observation.get("validity_time")
    try:
        when = datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).astimezone(PARIS)
    except ValueError:
        raise BadRecord("validity_time", stamp, "is not a date-time") from None
    values: dict[str, Any] = {"station": station, "validity_time": stamp}
    for key, name, convert in _FIELDS:
        if observation.get(key) is None:
            continue
        try:
            value = number(observation, key)
        except BadRecord as error:
            if skipped is not None:
                skipped.append(Skipped.of(stamp, error))
            continue
        raw = observation[key] if type(observation[key]) in (int, float) else value
        if convert is not None:
            values[key] = raw
        values[name] = convert(value) if convert else raw
    return point("hour", when, meter=station, **values)


_FIELDS = [
    *((key, name, celsius) for key, name in KELVIN_FIELDS.items()),
    *((key, name, hectopascal) for key, name in PASCAL_FIELDS.items()),
    *((key, name, None) for key, name in KEPT_FIELDS.items()),
]


def hour_documents(found: list[Any], station: str) -> tuple[list[dict[str, Any]], list[Skipped]]:
    """The hour documents of ``station``'s observations, and what was skipped."""
    documents, skipped = [], []
    for observation in found:
        if not isinstance(observation, dict) or str(observation.get("geo_id_insee", station)) != station:
            continue
        try:
            documents.append(hour_document(observation, station, skipped))
        except BadRecord as error:
            skipped.append(Skipped.of(observation.get("validity_time"), error))
    return documents, skipped


@dataclass(frozen=True)
class Station:
    id: str
    name: str
    latitude: float
    longitude: float


def parse_stations(text: str) -> list[Station]:
    """The ``;``-separated station list; columns found by name, whatever their order or case."""
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=";"))
    if not rows:
        return []
    header = [name.strip().lower() for name in rows[0]]
    try:
        columns = [header.index(n) for n in ("id_station", "nom_usuel", "latitude", "longitude")]
    except ValueError:
        raise VendorDown(f"Météo-France station list has unexpected columns: {rows[0]}") from None
    stations = []
    for row in rows[1:]:
        if len(row) < len(header):
            continue
        identifier, name, lat, lon = (row[i].strip() for i in columns)
        try:
            stations.append(Station(identifier, name, float(lat.replace(",", ".")), float(lon.replace(",", "."))))
        except ValueError:
            continue
    return stations


def nearest(stations: list[Station], latitude: float, longitude: float) -> Station:
    """The station at the shortest great-circle distance."""

    def distance(station: Station) -> float:
        phi1, phi2 = math.radians(latitude), math.radians(station.latitude)
        dphi, dlambda = phi2 - phi1, math.radians(station.longitude - longitude)
        a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
        return 2 * math.asin(math.sqrt(a))

    if not stations:
        raise VendorDown("Météo-France sent an empty station list")
    return min(stations, key=distance)
