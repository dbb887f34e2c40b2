"""A streaming parser for ESPI (Green Button) Atom feeds.

An ESPI feed is a list of Atom entries, each holding one object (UsagePoint,
MeterReading, ReadingType, IntervalBlock, LocalTimeParameters…) and linked to
the others by ``link`` hrefs: an IntervalBlock's ``up`` link is its
MeterReading's ``self`` plus ``/IntervalBlock``; a MeterReading's ``self`` lies
under its UsagePoint's, and its ``related`` links name its ReadingType.

Elements are matched by namespace URI, never by prefix (PG&E writes ``ns0:`` and
``ns1:``). The feed is read twice, never held: :func:`scan` learns the links, the
ReadingTypes and the local time (small whatever the size), then :func:`readings`
yields each reading, freeing every element once read — each IntervalReading, not
each entry, so a file whose blocks all share one Atom entry stays flat too. Values
are checked (integers, ESPI's ranges); a bad one raises :class:`EspiError` naming
the file, the line, the element and the problem.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from framework.errors import KonnectorError
from framework.safexml import DEFAULT_MAX_BYTES, iterparse

from . import localtime
from .localtime import LocalTime

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


class EspiError(KonnectorError):
    """A feed that cannot be imported as it is: the message names the file, the element and the problem."""

    code = "USER_ACTION_NEEDED"
    no_retry = True


POWERS = range(-12, 13)
"""ESPI's UnitMultiplierKind spans 10^-12 (pico) to 10^12 (tera)."""
INT48 = 2**47
"""IntervalReading value and cost are Int48 in the ESPI schema."""
EARLIEST, LATEST = 0, 4102444800
"""Reading starts accepted: 1970-01-01 to 2100-01-01 (UTC)."""
MAX_DURATION = 400 * 86400
"""A reading longer than this (a billing period of more than 400 days) is refused."""
_INTEGER = re.compile(r"^[+-]?[0-9]{1,19}$")

Source = bytes | BinaryIO
"""Bytes, or a seekable binary file: the feed is read more than once, never held whole."""


def _open(source: Source) -> BinaryIO:
    if isinstance(source, bytes):
        return io.BytesIO(source)
    source.seek(0)
    return source


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _fail(name: str, element, problem: str) -> EspiError:
    line = getattr(element, "sourceline", None)
    return EspiError(f"{name}{f' line {line}' if line else ''}: {problem}")


def _checked_int(name: str, element, tag: str, low: int, high: int) -> int | None:
    """The integer child ``tag`` of ``element`` (None if absent); refused if malformed or out of range."""
    child = element.find(ESPI + tag)
    if child is None or not child.text or not child.text.strip():
        return None
    text = child.text.strip()
    if not _INTEGER.match(text):
        raise _fail(name, child, f"{_local(element.tag)}/{tag} {text[:40]!r} is not an integer")
    value = int(text)
    if not low <= value <= high:
        raise _fail(name, child, f"{_local(element.tag)}/{tag} {value} is out of range [{low}, {high}]")
    return value


def _links(entry) -> dict[str, list[str]]:
    links: dict[str, list[str]] = {}
    for link in entry.iterchildren(ATOM + "link"):
        links.setdefault(link.get("rel", ""), []).append(link.get("href", "").strip())
    return links


def _last_segment(href: str) -> str:
    return href.rstrip("/").rsplit("/", 1)[-1]


def _reading_type(element, name: str) -> ReadingType:
    power = _checked_int(name, element, "powerOfTenMultiplier", -(2**31), 2**31)
    if power is not None and power not in POWERS:
        raise _fail(name, element, f"ReadingType/powerOfTenMultiplier {power} is not an ESPI multiplier (-12..12)")
    return ReadingType(
        uom=_checked_int(name, element, "uom", 0, 2**16) or WATT_HOUR,
        power_of_ten=power or 0,
        interval_length=_checked_int(name, element, "intervalLength", 0, 2**32),
        commodity=_checked_int(name, element, "commodity", 0, 2**16),
        flow_direction=_checked_int(name, element, "flowDirection", 0, 2**16),
    )


def _free(element) -> None:
    """Drop an element already used, and its already-used earlier siblings: memory stays flat."""
    element.clear()
    parent = element.getparent()
    if parent is not None:
        while element.getprevious() is not None:
            del parent[0]


@dataclass
class Feed:
    """What the first pass learns of a feed: its ReadingTypes, their links, its local time.

    Small whatever the file's size: one item per ReadingType, MeterReading and
    IntervalBlock entry, none per reading.
    """

    reading_types: dict[str, ReadingType] = field(default_factory=dict)
    """ReadingType self href -> the type."""
    meter_readings: dict[str, str] = field(default_factory=dict)
    """MeterReading self href -> its ReadingType href."""
    block_entries: dict[int, str] = field(default_factory=dict)
    """Ordinal of each entry holding IntervalBlocks -> the MeterReading they belong to."""
    local_time: LocalTime | None = None

    def reading_type(self, meter_reading: str) -> ReadingType | None:
        return self.reading_types.get(self.meter_readings.get(meter_reading, ""))


def scan(source: Source, name: str = "ESPI feed", max_bytes: int = DEFAULT_MAX_BYTES) -> Feed:
    """First pass: links, ReadingTypes and local time; an IntervalBlock with no ReadingType refuses the feed."""
    feed = Feed()
    ordinal, has_block, reading_type = 0, False, None
    tags = (ATOM + "entry", ESPI + "IntervalReading", ESPI + "IntervalBlock", ESPI + "ReadingType")
    for element in iterparse(_open(source), (*tags, ESPI + "LocalTimeParameters"), name=name, max_bytes=max_bytes):
        tag = element.tag
        if tag in (ESPI + "IntervalReading", ESPI + "IntervalBlock"):
            has_block = has_block or tag == ESPI + "IntervalBlock"
            _free(element)
        elif tag == ESPI + "ReadingType":
            reading_type = _reading_type(element, name)
        elif tag == ESPI + "LocalTimeParameters":
            feed.local_time = feed.local_time or _local_time(element, name)
        else:
            _learn(feed, element, ordinal, has_block, reading_type)
            ordinal, has_block, reading_type = ordinal + 1, False, None
            _free(element)
    orphans = {m for m in feed.block_entries.values() if feed.reading_type(m) is None}
    if orphans:
        listed = ", ".join(sorted(orphans)[:3])
        raise EspiError(f"{name}: IntervalBlock whose MeterReading has no ReadingType: {listed}")
    return feed


def _local_time(element, name: str) -> LocalTime:
    fields = {_local(child.tag): (child.text or "").strip() for child in element}
    try:
        return localtime.from_fields(fields)
    except ValueError as error:
        raise _fail(name, element, str(error)) from None


def _learn(feed: Feed, entry, ordinal: int, has_block: bool, reading_type: ReadingType | None) -> None:
    links = _links(entry)
    self_href = (links.get("self") or [""])[0]
    if reading_type is not None:
        feed.reading_types[self_href] = reading_type
    if entry.find(f"{ATOM}content/{ESPI}MeterReading") is not None:
        related = [h for h in links.get("related", []) if "/ReadingType/" in "/" + h]
        if related:
            feed.meter_readings[self_href] = related[0]
    if has_block:
        up = (links.get("up") or [self_href.rsplit("/", 1)[0]])[0]
        feed.block_entries[ordinal] = up.removesuffix("/IntervalBlock")


def readings(
    source: Source, feed: Feed, name: str = "ESPI feed", max_bytes: int = DEFAULT_MAX_BYTES
) -> Iterator[Reading]:
    """Second pass: every interval reading, checked and scaled; each element is freed once read."""
    ordinal = 0
    tags = (ATOM + "entry", ESPI + "IntervalReading", ESPI + "IntervalBlock")
    for element in iterparse(_open(source), tags, name=name, max_bytes=max_bytes):
        if element.tag == ESPI + "IntervalReading":
            meter_reading = feed.block_entries.get(ordinal)
            reading_type = feed.reading_type(meter_reading) if meter_reading else None
            if reading_type is not None and meter_reading is not None:
                reading = _reading(element, reading_type, meter_reading, name)
                if reading is not None:
                    yield reading
        elif element.tag == ATOM + "entry":
            ordinal += 1
        _free(element)


def _reading(element, reading_type: ReadingType, meter_reading: str, name: str) -> Reading | None:
    """One IntervalReading; None if it lacks a start, duration or value (skipped, as ESPI allows)."""
    period = element.find(ESPI + "timePeriod")
    value = _checked_int(name, element, "value", -INT48, INT48 - 1)
    if period is None or value is None:
        return None
    start = _checked_int(name, period, "start", EARLIEST, LATEST)
    duration = _checked_int(name, period, "duration", 1, MAX_DURATION)
    if start is None or duration is None:
        return None
    cost = _checked_int(name, element, "cost", -INT48, INT48 - 1)
    usage_point = _last_segment(meter_reading.split("/MeterReading")[0])
    price = cost / COST_UNIT if cost is not None else None
    return Reading(usage_point, reading_type, start, duration, reading_type.quantity(value), price)


def parse(source: Source, name: str = "ESPI feed", max_bytes: int = DEFAULT_MAX_BYTES) -> Iterator[Reading]:
    """Every interval reading of the feed, values scaled to their unit (two passes over ``source``)."""
    feed = scan(source, name, max_bytes)
    yield from readings(source, feed, name, max_bytes)


def local_time(source: Source, name: str = "ESPI feed") -> LocalTime | None:
    """The feed's LocalTimeParameters, if it has some (read without keeping the rest)."""
    for element in iterparse(_open(source), ESPI + "LocalTimeParameters", name=name):
        return _local_time(element, name)
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
