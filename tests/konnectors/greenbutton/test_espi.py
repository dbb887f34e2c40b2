"""The ESPI parser on every public sample file (tests/data/greenbutton, see its SOURCES.md for
origins and licences), checked against an independent whole-document computation."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pytest

from konnectors.greenbutton import espi
from konnectors.greenbutton.localtime import DstRule
from tests.conftest import DATA

SAMPLES = DATA / "greenbutton"
FILES = sorted(SAMPLES.glob("*.xml"))
NS = {"a": "http://www.w3.org/2005/Atom", "e": "http://naesb.org/espi"}


def independent_total(path) -> tuple[int, float]:
    """Count and sum in kWh (or m3) with ElementTree over the whole tree: a different route."""
    root = ET.parse(path).getroot()
    [reading_type] = root.findall(".//e:ReadingType", NS) or [None]
    if reading_type is None:
        return 0, 0.0
    power = int(reading_type.findtext("e:powerOfTenMultiplier", "0", NS))
    uom = int(reading_type.findtext("e:uom", "72", NS))
    values = [int(v.text) for v in root.findall(".//e:IntervalReading/e:value", NS)]
    scale = {72: 1e-3, 169: espi.KWH_PER_THERM}.get(uom, 1.0)
    return len(values), math.fsum(v * 10.0**power * scale for v in values)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_sample_parses_to_the_independent_total(path):
    readings = list(espi.parse(path.open("rb"), path.name))
    count, total = independent_total(path)
    assert len(readings) == count
    assert math.fsum(r.value for r in readings) == pytest.approx(total, abs=1e-6)


def test_real_pge_file_uses_prefixes_and_milli_watt_hours():
    readings = list(espi.parse((SAMPLES / "pge_smd_real_hourly_2019-10-03.xml").read_bytes()))
    assert len(readings) == 24 and {r.usage_point for r in readings} == {"5391320451"}
    assert readings[0].value == pytest.approx(1.0673) and readings[0].duration == 3600


def test_costs_are_in_currency_units():
    readings = list(espi.parse((SAMPLES / "openespi_15min_with_cost_2012-03-01.xml").read_bytes()))
    assert len(readings) == 96 and all(r.duration == 900 for r in readings)
    assert all(r.cost is not None and 0 <= r.cost < 10 for r in readings)


def test_gas_therms_become_kwh():
    readings = list(espi.parse((SAMPLES / "gas_monthly_therm_2021.xml").read_bytes()))
    assert {r.reading_type.kind for r in readings} == {"gas"} and len(readings) == 5
    assert all(r.reading_type.unit == "kWh" for r in readings)


def test_readings_before_their_reading_type_wait_for_it():
    data = (SAMPLES / "pge_smd_real_hourly_2019-10-23_two_blocks.xml").read_bytes()
    root = ET.fromstring(data)
    feed = root.tag
    entries = root.findall("a:entry", NS)
    reading_type = [e for e in entries if e.find(".//e:ReadingType", NS) is not None]
    others = [e for e in entries if e.find(".//e:ReadingType", NS) is None]
    reordered = ET.Element(feed)
    reordered.extend(others + reading_type)
    readings = list(espi.parse(ET.tostring(reordered)))
    assert len(readings) == 48


def test_local_time_parameters_with_pge_dst_rules():
    local = espi.local_time((SAMPLES / "pge_smd_real_hourly_2019-10-03.xml").read_bytes())
    assert (local.tz_offset, local.dst_offset) == (-28800, 3600)
    assert local.dst_start == DstRule(month=3, operator=3, day_of_month=0, day_of_week=7, seconds=7200)
    assert local.dst_end == DstRule(month=11, operator=2, day_of_month=0, day_of_week=7, seconds=7200)
