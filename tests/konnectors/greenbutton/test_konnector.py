"""``greenbutton-file`` end to end through the CLI, on the embedded store and on CouchDB."""

from __future__ import annotations

import math
import shutil
import xml.etree.ElementTree as ET
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from framework.store import CouchBackend, DocumentStore, SqliteBackend
from tests.conftest import write_json
from tests.konnectors.greenbutton.test_espi import NS, SAMPLES, independent_total

FULL_YEAR = "gba_coastal_multi_family_hourly_2011_full_year.xml"
ELECTRICITY = "org.greenbutton.electricity"


@pytest.fixture(params=["embedded", "couchdb"])
def target(request, tmp_path, db_prefix):
    """CLI arguments for one store, and a DocumentStore to read it."""
    if request.param == "couchdb":
        url = request.getfixturevalue("couchdb_url")
        env = {"KONNECTOR_DB_PREFIX": db_prefix}
        return ["--couchdb", url], env, DocumentStore(CouchBackend(url, db_prefix))
    (tmp_path / "data").mkdir()
    return ["--data-dir", str(tmp_path / "data")], {}, DocumentStore(SqliteBackend(tmp_path / "data" / "store.sqlite3"))


def test_full_year_import_is_exact_dst_aware_and_idempotent(cli, tmp_path, target):
    args, env, store = target
    config = write_json(
        tmp_path / "dev.json", {"fields": {"path": str(SAMPLES / FULL_YEAR), "timezone": "America/Los_Angeles"}}
    )
    first = cli("run", "greenbutton-file", "--config", str(config), *args, env=env)
    assert first.status == 0, first.output
    _, expected = independent_total(SAMPLES / FULL_YEAR)
    days = list(store.id_range(f"{ELECTRICITY}.day"))
    months = list(store.id_range(f"{ELECTRICITY}.month"))
    hours = list(store.id_range(f"{ELECTRICITY}.hour"))
    assert len(hours) == 8760 and len(months) == 12
    assert math.fsum(d["load"] for d in days) == pytest.approx(expected, abs=1e-6)
    assert not any(m.get("partial") for m in months[1:])
    per_day = {}
    for hour in hours:
        key = (hour["month"], hour["day"])
        per_day[key] = per_day.get(key, 0) + 1
    assert per_day[(3, 13)] == 23 and per_day[(11, 6)] == 25
    years = {d["_id"]: d["load"] for d in store.id_range(f"{ELECTRICITY}.year")}
    assert math.fsum(years.values()) == pytest.approx(expected, abs=1e-6)
    second = cli("run", "greenbutton-file", "--config", str(config), *args, env=env)
    assert second.status == 0 and "nothing new to write" in second.stderr


def test_directory_import_skips_files_already_imported(cli, tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    shutil.copy(SAMPLES / "pge_smd_real_hourly_2019-10-03.xml", folder)
    config = write_json(tmp_path / "dev.json", {"fields": {"path": str(folder), "timezone": "America/Los_Angeles"}})
    assert cli("run", "greenbutton-file", "--config", str(config)).status == 0
    shutil.copy(SAMPLES / "pge_smd_real_hourly_2019-10-23_two_blocks.xml", folder)
    shutil.copy(SAMPLES / "gas_monthly_therm_2021.xml", folder)
    result = cli("run", "greenbutton-file", "--config", str(config))
    assert result.status == 0, result.output
    assert "pge_smd_real_hourly_2019-10-03.xml: already imported, skipped" in result.stderr
    store = DocumentStore(SqliteBackend(tmp_path / "konnector-data" / "store.sqlite3"))
    october = store.get(f"{ELECTRICITY}.month", "5391320451/2019-10")
    expected = independent_total(SAMPLES / "pge_smd_real_hourly_2019-10-03.xml")[1]
    expected += independent_total(SAMPLES / "pge_smd_real_hourly_2019-10-23_two_blocks.xml")[1]
    assert october["load"] == pytest.approx(expected, abs=1e-6) and october["partial"] is True
    gas_days = list(store.id_range("org.greenbutton.gas.day"))
    assert math.fsum(d["load"] for d in gas_days) == pytest.approx(
        independent_total(SAMPLES / "gas_monthly_therm_2021.xml")[1], abs=1e-6
    )


def test_missing_path_is_a_clear_login_error(cli, tmp_path):
    config = write_json(tmp_path / "dev.json", {"fields": {"path": str(tmp_path / "nope.xml")}})
    result = cli("run", "greenbutton-file", "--config", str(config), "--log-format", "json")
    assert result.status == 1 and result.lines[-1]["message"] == "LOGIN_FAILED"
    assert "no such file or directory" in result.lines[-2]["message"]


def test_hostile_file_is_refused_and_nothing_is_stored(cli, tmp_path):
    hostile = tmp_path / "evil.xml"
    hostile.write_bytes(b'<?xml version="1.0"?><!DOCTYPE f [<!ENTITY x SYSTEM "file:///etc/passwd">]><f>&x;</f>')
    config = write_json(tmp_path / "dev.json", {"fields": {"path": str(hostile)}})
    result = cli("run", "greenbutton-file", "--config", str(config), "--log-format", "json")
    assert result.status == 1 and "declares a DTD" in result.lines[-2]["message"]
    store = DocumentStore(SqliteBackend(tmp_path / "konnector-data" / "store.sqlite3"))
    assert list(store.id_range(f"{ELECTRICITY}.hour")) == []


def test_full_year_without_timezone_uses_the_files_dst_rules(cli, tmp_path):
    """The GBA year carries LocalTimeParameters (360E2000/B40E2000): no ``timezone`` needed."""
    config = write_json(tmp_path / "dev.json", {"fields": {"path": str(SAMPLES / FULL_YEAR)}})
    result = cli("run", "greenbutton-file", "--config", str(config))
    assert result.status == 0, result.output
    store = DocumentStore(SqliteBackend(tmp_path / "konnector-data" / "store.sqlite3"))
    hours = list(store.id_range(f"{ELECTRICITY}.hour"))
    days = {d["_id"]: d["load"] for d in store.id_range(f"{ELECTRICITY}.day")}
    assert len(hours) == 8760 and len(days) == 365
    assert sorted(days)[0] == "1/2011-01-01" and sorted(days)[-1] == "1/2011-12-31"
    assert math.fsum(days.values()) == pytest.approx(independent_total(SAMPLES / FULL_YEAR)[1], abs=1e-6)
    # The DST-end day has 25 hours: its total is every reading from 07:00 UTC to 08:00 UTC the next day.
    root = ET.parse(SAMPLES / FULL_YEAR).getroot()
    first, last = 1320562800, 1320652800  # 2011-11-06T00:00-07:00, 2011-11-07T00:00-08:00
    in_day = [
        int(r.findtext("e:value", namespaces=NS))
        for r in root.iter(f"{{{NS['e']}}}IntervalReading")
        if first <= int(r.findtext("e:timePeriod/e:start", namespaces=NS)) < last
    ]
    assert len(in_day) == 25 and days["1/2011-11-06"] == pytest.approx(math.fsum(in_day) / 1000, abs=1e-9)
    assert "1/2011-11-06T01-0700" in {h["_id"] for h in hours} and "1/2011-11-06T01-0800" in {h["_id"] for h in hours}


def daily_year(path, rules: bool = True) -> float:
    """A year of daily Wh readings, each from local midnight in Los Angeles (23- and 25-hour days
    included), with PG&E's LocalTimeParameters; without ``rules`` the DST rules are left out."""
    zone, parts, total = ZoneInfo("America/Los_Angeles"), [], 0
    day = date(2019, 1, 1)
    while day.year == 2019:
        start = int(datetime.combine(day, time(), zone).timestamp())
        end = int(datetime.combine(day + timedelta(1), time(), zone).timestamp())
        value = 10_000 + day.timetuple().tm_yday
        total += value
        parts.append(
            f"<IntervalReading><timePeriod><duration>{end - start}</duration><start>{start}</start>"
            f"</timePeriod><value>{value}</value></IntervalReading>"
        )
        day += timedelta(1)
    dst = "<dstEndRule>B40E2000</dstEndRule><dstStartRule>360E2000</dstStartRule>" if rules else ""
    path.write_text(
        '<feed xmlns="http://www.w3.org/2005/Atom"><entry><link rel="self" href="LocalTimeParameters/1"/>'
        f'<content><LocalTimeParameters xmlns="http://naesb.org/espi">{dst}<dstOffset>3600</dstOffset>'
        "<tzOffset>-28800</tzOffset></LocalTimeParameters></content></entry>"
        '<entry><link rel="self" href="UsagePoint/7/MeterReading/1"/><link rel="related" href="ReadingType/1"/>'
        '<content><MeterReading xmlns="http://naesb.org/espi"/></content></entry>'
        '<entry><link rel="self" href="ReadingType/1"/><content><ReadingType xmlns="http://naesb.org/espi">'
        "<powerOfTenMultiplier>0</powerOfTenMultiplier><uom>72</uom></ReadingType></content></entry>"
        '<entry><link rel="up" href="UsagePoint/7/MeterReading/1/IntervalBlock"/>'
        f'<content><IntervalBlock xmlns="http://naesb.org/espi">{"".join(parts)}</IntervalBlock></content></entry>'
        "</feed>"
    )
    return total / 1000


def test_daily_year_lands_on_its_365_local_days(cli, tmp_path):
    expected = daily_year(tmp_path / "daily.xml")
    config = write_json(tmp_path / "dev.json", {"fields": {"path": str(tmp_path / "daily.xml")}})
    assert cli("run", "greenbutton-file", "--config", str(config)).status == 0
    store = DocumentStore(SqliteBackend(tmp_path / "konnector-data" / "store.sqlite3"))
    days = {d["_id"]: d["load"] for d in store.id_range(f"{ELECTRICITY}.day")}
    assert len(days) == 365 and days["7/2019-07-01"] == pytest.approx(10.182)
    assert days["7/2019-03-10"] == pytest.approx(10.069) and days["7/2019-11-03"] == pytest.approx(10.307)
    [year] = list(store.id_range(f"{ELECTRICITY}.year"))
    assert year["load"] == pytest.approx(expected, abs=1e-9) and not year.get("partial")


def test_two_readings_on_one_document_are_refused_naming_both(cli, tmp_path):
    """Without its DST rules the daily year puts 11 March's reading on 10 March: refused, not overwritten."""
    daily_year(tmp_path / "daily.xml", rules=False)
    config = write_json(tmp_path / "dev.json", {"fields": {"path": str(tmp_path / "daily.xml")}})
    result = cli("run", "greenbutton-file", "--config", str(config), "--log-format", "json")
    assert result.status == 1 and result.error_code == "USER_ACTION_NEEDED"
    message = result.lines[-2]["message"]
    assert "org.greenbutton.electricity.day 7/2019-03-10" in message
    assert "2019-03-10T00:00:00-08:00" in message and "2019-03-10T23:00:00-08:00" in message
    assert "Traceback" not in result.output
    store = DocumentStore(SqliteBackend(tmp_path / "konnector-data" / "store.sqlite3"))
    assert list(store.id_range(f"{ELECTRICITY}.day")) == []


BAD_VALUES = [
    ("<value>10001</value>", "<value>12abc</value>", "IntervalReading/value '12abc' is not an integer"),
    ("<powerOfTenMultiplier>0<", "<powerOfTenMultiplier>400<", "powerOfTenMultiplier 400 is not an ESPI multiplier"),
    ("<start>1546329600</start>", "<start>99999999999</start>", "timePeriod/start 99999999999 is out of range"),
    ("<duration>86400</duration>", "<duration>4000000000</duration>", "timePeriod/duration 4000000000 is out of"),
    ('href="ReadingType/1"/><content><ReadingType', 'href="ReadingType/2"/><content><ReadingType', "no ReadingType"),
    ("</feed>", "", "malformed XML"),
]


@pytest.mark.parametrize(("find", "replace", "says"), BAD_VALUES, ids=lambda v: v[:24] if isinstance(v, str) else v)
def test_malformed_file_is_one_line_naming_file_element_and_problem(cli, tmp_path, find, replace, says):
    daily_year(tmp_path / "good.xml")
    bad = (tmp_path / "good.xml").read_text()
    assert find in bad
    (tmp_path / "bad.xml").write_text(bad.replace(find, replace, 1))
    config = write_json(tmp_path / "dev.json", {"fields": {"path": str(tmp_path / "bad.xml")}})
    result = cli("run", "greenbutton-file", "--config", str(config), "--log-format", "json")
    assert result.status == 1 and result.error_code == "USER_ACTION_NEEDED", result.output
    assert says in result.lines[-2]["message"] and "bad.xml" in result.lines[-2]["message"]
    assert "Traceback" not in result.output and not result.stderr
    store = DocumentStore(SqliteBackend(tmp_path / "konnector-data" / "store.sqlite3"))
    assert list(store.id_range(f"{ELECTRICITY}.day")) == []


def test_bad_file_between_good_ones_is_named_and_the_good_ones_stored(cli, tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    shutil.copy(SAMPLES / "pge_smd_real_hourly_2019-10-03.xml", folder / "a.xml")
    daily_year(folder / "b.xml")
    good_daily = (folder / "b.xml").read_text()
    (folder / "b.xml").write_text(good_daily.replace("<value>10001</value>", "<value>12abc</value>"))
    shutil.copy(SAMPLES / "pge_smd_real_hourly_2019-10-23_two_blocks.xml", folder / "c.xml")
    config = write_json(tmp_path / "dev.json", {"fields": {"path": str(folder)}})
    result = cli("run", "greenbutton-file", "--config", str(config), "--log-format", "json")
    assert result.status == 1 and result.error_code == "UNKNOWN_ERROR.PARTIAL_SYNC"
    assert "1 of 3 file(s) refused" in result.lines[-2]["message"] and "b.xml line" in result.lines[-2]["message"]
    store = DocumentStore(SqliteBackend(tmp_path / "konnector-data" / "store.sqlite3"))
    expected = independent_total(folder / "a.xml")[1] + independent_total(folder / "c.xml")[1]
    october = store.get(f"{ELECTRICITY}.month", "5391320451/2019-10")
    assert october["load"] == pytest.approx(expected, abs=1e-6)
    assert list(store.id_range(f"{ELECTRICITY}.day", "7/", "7/\uffff")) == []
    (folder / "b.xml").write_text(good_daily)
    fixed = cli("run", "greenbutton-file", "--config", str(config))
    assert fixed.status == 0, fixed.output
    assert "a.xml: already imported" in fixed.stderr and "c.xml: already imported" in fixed.stderr
    assert len(list(store.id_range(f"{ELECTRICITY}.day", "7/", "7/\uffff"))) == 365


def test_only_regular_files_within_the_size_limit_are_read(cli, tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "zero.xml").symlink_to("/dev/zero")
    shutil.copy(SAMPLES / "gba_coastal_single_family_hourly_2011-01.xml", folder / "big.xml")
    shutil.copy(SAMPLES / "pge_smd_real_hourly_2019-10-03.xml", folder / "small.xml")
    config = write_json(tmp_path / "dev.json", {"fields": {"path": str(folder)}, "parameters": {"max_file_mb": 0.05}})
    result = cli("run", "greenbutton-file", "--config", str(config), "--log-format", "json", timeout=30)
    assert result.error_code == "UNKNOWN_ERROR.PARTIAL_SYNC"
    message = result.lines[-2]["message"]
    assert "zero.xml: not a regular file" in message
    assert "big.xml: 79,821 bytes is over the 52,428-byte limit" in message
    store = DocumentStore(SqliteBackend(tmp_path / "konnector-data" / "store.sqlite3"))
    assert len(list(store.id_range(f"{ELECTRICITY}.hour"))) == 24
