"""DPObs observations and station list: parsing and unit conversion (pure functions).

Observations come in SI units: temperatures in kelvin (``t``, ``td``, ``tx``,
``tn``), pressures in pascal (``pres``, ``pmer``), rain in mm (``rr1``), wind in
m/s (``ff``) and degrees (``dd``), humidity in % (``u``), sunshine in minutes
(``insolh``), radiation in J/m² (``ray_glo01``). Many are null, depending on the
station. We keep the SI values and add °C and hPa.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from framework import Rollup, Series, VendorDown, point

PARIS = ZoneInfo("Europe/Paris")
ZERO_CELSIUS = Decimal("273.15")
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
        ),
        Rollup(
            "day",
            "month",
            {
                "temperature": ("mean", "temperature"),
                "temperature_min": ("min", "temperature_min"),
                "temperature_max": ("max", "temperature_max"),
                "rain": ("sum", "rain"),
            },
            copy=("station",),
        ),
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


def hour_document(observation: dict[str, Any], station: str) -> dict[str, Any]:
    """One ``fr.meteofrance.observation.hour`` document, local wall-clock fields, nulls left out."""
    try:
        when = datetime.fromisoformat(observation["validity_time"].replace("Z", "+00:00")).astimezone(PARIS)
    except (KeyError, AttributeError, ValueError):
        raise VendorDown(
            f"Météo-France sent an observation without a valid validity_time: {observation!r:.200}"
        ) from None
    values: dict[str, Any] = {"station": station, "validity_time": observation["validity_time"]}
    for key, name in KELVIN_FIELDS.items():
        if isinstance(observation.get(key), (int, float)):
            values[key] = observation[key]
            values[name] = celsius(observation[key])
    for key, name in PASCAL_FIELDS.items():
        if isinstance(observation.get(key), (int, float)):
            values[key] = observation[key]
            values[name] = hectopascal(observation[key])
    for key, name in KEPT_FIELDS.items():
        if isinstance(observation.get(key), (int, float)):
            values[name] = observation[key]
    return point("hour", when, meter=station, **values)


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
