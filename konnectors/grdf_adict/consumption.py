"""ADICT consumption records to documents (pure).

Informative data: one record per gas day (06:00 to 06:00 local time, named by
``journee_gaziere``), ``consommation`` null when missing with the reason in
``statut_restitution``. Published data: one record per billing period.
Values are provisional (``Provisoire``) until GRDF publishes them as final
(``Définitive``); a changed value or status updates the stored day.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from framework import VendorDown, energy_series, point

SERIES = energy_series("com.grandlyon.grdf", finest="day")
DAY = SERIES.doctype("day")
PERIOD = "com.grandlyon.grdf.period"


def day_documents(records: list[dict[str, Any]], pce: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Day points, and the gas days GRDF had no data for (with its reason)."""
    days, missing = [], []
    for record in records:
        if "code_statut_traitement" in record:
            continue
        consumption = record.get("consommation")
        if consumption is None:
            status = record.get("statut_restitution") or {}
            missing.append(f"{status.get('code', '?')} {status.get('message', 'no data')}".strip())
            continue
        try:
            day = date.fromisoformat(consumption.get("journee_gaziere") or consumption["date_debut_consommation"])
            values = {"load": float(consumption["energie"]), "unit": "kWh", "status": consumption["statut_conso"]}
        except (KeyError, TypeError, ValueError) as exc:
            raise VendorDown(f"GRDF sent a consumption record in an unexpected shape ({exc!r})") from None
        if consumption.get("volume_brut") is not None:
            values["volume"] = float(consumption["volume_brut"])
        coefficient = (consumption.get("coeff_calcul") or {}).get("coeff_conversion")
        if coefficient is not None:
            values["conversion_coefficient"] = float(coefficient)
        days.append(point("day", day, meter=pce, **values))
    return days, missing


def period_documents(records: list[dict[str, Any]], pce: str) -> list[dict[str, Any]]:
    periods = []
    for record in records:
        consumption = record.get("consommation")
        if not consumption:
            continue
        try:
            start, end = consumption["date_debut_consommation"], consumption["date_fin_consommation"]
            periods.append(
                {
                    "_id": f"{pce}/{start}/{end}",
                    "pce": pce,
                    "start": start,
                    "end": end,
                    "energy": float(consumption["energie"]),
                    "volume": consumption.get("volume_brut"),
                    "status": consumption.get("statut_conso"),
                    "unit": "kWh",
                }
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise VendorDown(f"GRDF sent a billing period in an unexpected shape ({exc!r})") from None
    return periods
