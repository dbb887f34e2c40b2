"""SGE measure answers (lxml elements, read by name) to Ecolyo documents (pure).

v3 (ConsultationMesuresDetaillees v3.0, ``grandeur/points``): dates are "yyyy-MM-dd HH:mm:ss"
in Paris local time; a load-curve point is dated at the end of its step (C5 meters), so each
one is placed at its local start, and a repeated local time (autumn DST change) is the later
instant. ``v`` may be nil (no measure): the point is skipped. v2 (``grandeur/mesure``) dates
carry their offset. Energies come in Wh, curve powers as average W, max powers in VA.
Elements we do not read (``grandeurMetier``, ``periode``, ``iv``, unknown ones) are ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from math import isfinite
from typing import Any
from zoneinfo import ZoneInfo

from lxml import etree

from framework import Rollup, Series, point
from framework.store.timeseries import in_order

PARIS = ZoneInfo("Europe/Paris")
PREFIX = "com.grandlyon.enedis"
SUM = {"load": ("sum", "load")}
SERIES = Series(PREFIX, (Rollup("minute", "hour", SUM), Rollup("day", "month", SUM), Rollup("month", "year", SUM)))
DAY, MINUTE, MAX_POWER = SERIES.doctype("day"), SERIES.doctype("minute"), f"{PREFIX}.maxpower"
STEP_MINUTES = 30
LOCAL_FORMAT = "%Y-%m-%d %H:%M:%S"

Warn = Callable[[str], None]


def values(answer: etree._Element, warn: Warn = lambda _: None) -> list[tuple[datetime, float]]:
    """(aware local datetime, value) of every readable measure of an answer, v2 or v3.

    A measure without a value, with a non-numeric or non-finite value, or with an
    unreadable date is skipped, and ``warn`` is told which one.
    """
    offset_aware: list[tuple[datetime, float]] = []
    local: list[tuple[datetime, float]] = []
    for grandeur in answer.findall("grandeur"):
        for measure in [*grandeur.findall("points"), *grandeur.findall("mesure")]:
            raw_value, raw_date = (measure.findtext("v") or "").strip(), (measure.findtext("d") or "").strip()
            try:
                number = float(raw_value)
            except ValueError:
                number = float("nan")
            if not isfinite(number):
                if raw_value:
                    warn(f"measure of {raw_date or '?'} skipped: value {raw_value!r:.40} is not a number")
                continue
            try:
                local.append((datetime.strptime(raw_date, LOCAL_FORMAT), number))
                continue
            except ValueError:
                pass
            try:
                stamp = datetime.fromisoformat(raw_date)
            except ValueError:
                warn(f"measure skipped: date {raw_date!r:.40} is not readable")
                continue
            offset_aware.append((stamp.astimezone(PARIS) if stamp.tzinfo else stamp.replace(tzinfo=PARIS), number))
    placed = list(zip(in_order([when for when, _ in local], PARIS), [v for _, v in local], strict=True))
    return offset_aware + placed


def daily(answer: etree._Element, warn: Warn = lambda _: None) -> list[dict[str, Any]]:
    return [point("day", when.date(), load=value / 1000, unit="kWh") for when, value in values(answer, warn)]


def curve(answer: etree._Element, warn: Warn = lambda _: None) -> list[dict[str, Any]]:
    documents = []
    for end, watts in values(answer, warn):
        start = (end.astimezone(UTC) - timedelta(minutes=STEP_MINUTES)).astimezone(PARIS)
        documents.append(point("minute", start, load=round(watts * STEP_MINUTES / 60 / 1000, 9), unit="kWh"))
    return documents


def max_power(answer: etree._Element, warn: Warn = lambda _: None) -> list[dict[str, Any]]:
    documents = []
    for when, volt_amperes in values(answer, warn):
        doc = point("day", date(when.year, when.month, when.day), load=volt_amperes / 1000, unit="kVA")
        documents.append(doc)
    return documents
