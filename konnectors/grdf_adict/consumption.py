"""ADICT consumption records to documents (pure).

Informative data: one record per gas day (06:00 to 06:00 local time, named by
``journee_gaziere``), ``consommation`` null when missing with the reason in
``statut_restitution``. Published data: one record per billing period.
Values are provisional (``Provisoire``) until GRDF publishes them as final
(``Définitive``); a changed value or status updates the stored day.

Record rules: a gas day whose ``journee_gaziere`` is null is named by the date of
``date_debut_consommation`` (the gas day starts at 06:00 that day); a record whose
``energie`` is null, not a number, not finite or negative, or whose day cannot be read,
is skipped with a warning naming it; optional fields (``volume_brut``, ``coeff_calcul``,
``statut_conso``) are kept only when they are readable.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from framework import energy_series, point
from framework.records import BadRecord, Skipped, number

SERIES = energy_series("com.grandlyon.grdf", finest="day")
DAY = SERIES.doctype("day")
PERIOD = "com.grandlyon.grdf.period"


@dataclass
class Parsed:
    documents: list[dict[str, Any]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    """Gas days GRDF says it has no data for, with its reason."""
    skipped: list[Skipped] = field(default_factory=list)

    def last_day(self) -> date | None:
        """The last gas day (or last day of a billing period) stored from this answer."""
        return max((_last_day(d) for d in self.documents), default=None)


def _last_day(doc: dict[str, Any]) -> date:
    if "year" in doc:
        return date(doc["year"], doc["month"], doc["day"])
    return date.fromisoformat(doc["end"]) - timedelta(1)


def day_documents(records: list[dict[str, Any]], pce: str) -> Parsed:
    """Day points, the gas days GRDF had no data for, and the records skipped."""
    parsed = Parsed()
    for record in records:
        if "code_statut_traitement" in record:
            continue
        consumption = record.get("consommation")
        if consumption is None:
            status = record.get("statut_restitution") or {}
            parsed.missing.append(f"{status.get('code', '?')} {status.get('message', 'no data')}".strip())
            continue
        try:
            day = gas_day(consumption)
            values = {"load": number(consumption, "energie", low=0), "unit": "kWh"}
        except BadRecord as error:
            parsed.skipped.append(Skipped.of(_when(consumption), error))
            continue
        values.update(_optional(consumption))
        parsed.documents.append(point("day", day, meter=pce, **values))
    return parsed


def gas_day(consumption: Any) -> date:
    """The gas day of a record: ``journee_gaziere``, else the date its consumption starts."""
    if not isinstance(consumption, dict):
        raise BadRecord("consommation", consumption, "is not an object")
    for name in ("journee_gaziere", "date_debut_consommation"):
        value = consumption.get(name)
        if isinstance(value, str):
            try:
                return date.fromisoformat(value[:10])
            except ValueError:
                raise BadRecord(name, value, "is not a date") from None
    raise BadRecord("journee_gaziere", consumption.get("journee_gaziere"), "and date_debut_consommation are null")


def _optional(consumption: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if isinstance(consumption.get("statut_conso"), str):
        values["status"] = consumption["statut_conso"]
    with contextlib.suppress(BadRecord):
        values["volume"] = number(consumption, "volume_brut", low=0)
    with contextlib.suppress(BadRecord):
        values["conversion_coefficient"] = number(consumption.get("coeff_calcul") or {}, "coeff_conversion", low=0)
    return values


def _when(consumption: Any) -> str:
    if not isinstance(consumption, dict):
        return "?"
    return str(consumption.get("journee_gaziere") or consumption.get("date_debut_consommation") or "?")[:10]


def period_documents(records: list[dict[str, Any]], pce: str) -> Parsed:
    """Billing periods (``start``/``end`` as GRDF names them), bad ones skipped."""
    parsed = Parsed()
    for record in records:
        consumption = record.get("consommation")
        if not consumption:
            continue
        try:
            start, end = _date(consumption, "date_debut_consommation"), _date(consumption, "date_fin_consommation")
            energy = number(consumption, "energie", low=0)
        except BadRecord as error:
            parsed.skipped.append(Skipped.of(_when(consumption), error))
            continue
        optional = _optional(consumption)
        parsed.documents.append(
            {
                "_id": f"{pce}/{start}/{end}",
                "pce": pce,
                "start": start,
                "end": end,
                "energy": energy,
                "volume": optional.get("volume"),
                "status": optional.get("status"),
                "unit": "kWh",
            }
        )
    return parsed


def _date(consumption: dict[str, Any], name: str) -> str:
    value = consumption.get(name)
    try:
        return date.fromisoformat(str(value)[:10]).isoformat()
    except ValueError:
        raise BadRecord(name, value, "is not a date") from None
