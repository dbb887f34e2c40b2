"""A streaming parser for ESPI (Green Button) Atom feeds.

An ESPI feed is a list of Atom entries, each holding one object (UsagePoint,
MeterReading, ReadingType, IntervalBlock, LocalTimeParameters…) and linked to
the others by ``link`` hrefs: an IntervalBlock's ``up`` link is its
MeterReading's ``self`` plus ``/IntervalBlock``; a MeterReading's ``self`` lies
under its UsagePoint's, and its ``related`` links name its ReadingType.

Elements are matched by namespace URI, never by prefix (PG&E writes ``ns0:`` and
``ns1:``), and cleared once read, so memory stays flat however long the file.
Interval blocks met before their ReadingType wait in a small buffer.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from framework.safexml import iterparse

ATOM = "{http://www.w3.org/2005/Atom}"
ESPI = "{http://naesb.org/espi}"

WATT_HOUR, THERM, CUBIC_METRE = 72, 169, 42
KWH_PER_THERM = 29.3071
"""One US therm (100,000 BTU) in kWh."""
COST_UNIT = 100_000
"""ESPI costs are in 1/100000 of the currency unit."""
RECEIVED = 19
"""flowDirection: energy received from the customer (export)."""


@dataclass(frozen=True)
class ReadingType:
    uom: int
    power_of_ten: int = 0
    interval_length: int | None = None
    commodity: int | None = None
    flow_direction: int | None = None

    @property
    def kind(self) -> str:
        """``electricity`` or ``gas``, from the unit (commodity codes vary by utility)."""
        return "electricity" if self.uom == WATT_HOUR else "gas"

    @property
    def unit(self) -> str:
        return "m3" if self.uom == CUBIC_METRE else "kWh"

    def quantity(self, raw: int) -> float:
        """A raw reading value in :attr:`unit`."""
        value = raw * 10.0**self.power_of_ten
        if self.uom == WATT_HOUR:
            return value / 1000
        if self.uom == THERM:
            return value * KWH_PER_THERM
        return value


@dataclass(frozen=True)
class Reading:
    usage_point: str
    reading_type: ReadingType
    start: int
    """Unix seconds, UTC."""
    duration: int
    value: float
    """In ``reading_type.unit``."""
    cost: float | None = None


@dataclass(frozen=True)
class LocalTime:
    """LocalTimeParameters: the standard offset from UTC and the DST shift, in seconds."""

    tz_offset: int
    dst_offset: int


def _text(element, tag: str) -> str | None:
    child = element.find(ESPI + tag)
    return child.text.strip() if child is not None and child.text else None


def _int(element, tag: str) -> int | None:
    text = _text(element, tag)
    return int(text) if text is not None else None


def _links(entry) -> dict[str, list[str]]:
    links: dict[str, list[str]] = {}
    for link in entry.iter(ATOM + "link"):
        links.setdefault(link.get("rel", ""), []).append(link.get("href", "").strip())
    return links


def _last_segment(href: str) -> str:
    return href.rstrip("/").rsplit("/", 1)[-1]


def _reading_type(element) -> ReadingType:
    return ReadingType(
        uom=_int(element, "uom") or WATT_HOUR,
        power_of_ten=_int(element, "powerOfTenMultiplier") or 0,
        interval_length=_int(element, "intervalLength"),
        commodity=_int(element, "commodity"),
        flow_direction=_int(element, "flowDirection"),
    )


def _interval_readings(block) -> Iterator[tuple[int, int, int, int | None]]:
    for reading in block.iter(ESPI + "IntervalReading"):
        period = reading.find(ESPI + "timePeriod")
        if period is None:
            continue
        start, duration, value = _int(period, "start"), _int(period, "duration"), _int(reading, "value")
        if start is None or duration is None or value is None:
            continue
        yield start, duration, value, _int(reading, "cost")


class _Feed:
    """What has been learnt so far of the links between entries."""

    def __init__(self) -> None:
        self.reading_types: dict[str, ReadingType] = {}
        self.meter_readings: dict[str, str] = {}
        """MeterReading self href -> its ReadingType href."""
        self.waiting: list[tuple[str, list[tuple[int, int, int, int | None]]]] = []
        self.local_time: LocalTime | None = None

    def readings(self, meter_reading: str, rows) -> Iterator[Reading]:
        reading_type = self.reading_types.get(self.meter_readings.get(meter_reading, ""))
        if reading_type is None:
            self.waiting.append((meter_reading, list(rows)))
            return
        usage_point = _last_segment(meter_reading.split("/MeterReading")[0])
        for start, duration, value, cost in rows:
            price = cost / COST_UNIT if cost is not None else None
            yield Reading(usage_point, reading_type, start, duration, reading_type.quantity(value), price)

    def release_waiting(self) -> Iterator[Reading]:
        waiting, self.waiting = self.waiting, []
        for meter_reading, rows in waiting:
            yield from self.readings(meter_reading, rows)


def parse(source: BinaryIO | bytes, name: str = "ESPI feed") -> Iterator[Reading]:
    """Yield every interval reading of the feed, values scaled to their unit."""
    feed = _Feed()
    for entry in iterparse(source, ATOM + "entry", name=name):
        links = _links(entry)
        self_href = (links.get("self") or [""])[0]
        content = entry.find(ATOM + "content")
        objects = list(content) if content is not None else []
        for obj in objects:
            tag = obj.tag
            if tag == ESPI + "ReadingType":
                feed.reading_types[self_href] = _reading_type(obj)
                yield from feed.release_waiting()
            elif tag == ESPI + "MeterReading":
                related = [h for h in links.get("related", []) if "/ReadingType/" in "/" + h]
                if related:
                    feed.meter_readings[self_href] = related[0]
                    yield from feed.release_waiting()
            elif tag == ESPI + "IntervalBlock":
                up = (links.get("up") or [self_href.rsplit("/", 1)[0]])[0]
                yield from feed.readings(up.removesuffix("/IntervalBlock"), _interval_readings(obj))
            elif tag == ESPI + "LocalTimeParameters":
                feed.local_time = LocalTime(_int(obj, "tzOffset") or 0, _int(obj, "dstOffset") or 0)
        entry.clear()
    if feed.waiting:
        orphans = ", ".join(sorted({m for m, _ in feed.waiting})[:3])
        raise ValueError(f"{name}: interval blocks with no ReadingType: {orphans}")


def local_time(source: BinaryIO | bytes, name: str = "ESPI feed") -> LocalTime | None:
    """The feed's LocalTimeParameters, if it has some (read without keeping the rest)."""
    for element in iterparse(source, ESPI + "LocalTimeParameters", name=name):
        return LocalTime(_int(element, "tzOffset") or 0, _int(element, "dstOffset") or 0)
    return None


CUSTOMER = "{http://naesb.org/espi/customer}"


def customer_entries(source: BinaryIO | bytes, name: str = "ESPI customer feed") -> Iterator[dict[str, str]]:
    """Each RetailCustomer entry (Customer, CustomerAccount, CustomerAgreement…) as flat fields."""
    for entry in iterparse(source, ATOM + "entry", name=name):
        self_href = (_links(entry).get("self") or [""])[0]
        content = entry.find(ATOM + "content")
        for obj in list(content) if content is not None else []:
            if not obj.tag.startswith(CUSTOMER):
                continue
            fields = {"kind": obj.tag.removeprefix(CUSTOMER), "href": self_href}
            for leaf in obj.iter():
                if len(leaf) == 0 and leaf.text and leaf.text.strip():
                    fields.setdefault(leaf.tag.rpartition("}")[2], leaf.text.strip())
            yield fields
        entry.clear()
