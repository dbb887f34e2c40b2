"""Write synthetic ESPI feeds: one usage point, one hourly IntervalBlock per day.

Used for the sample file the README runs, and by sandboxes that serve Green
Button data. Values come from :mod:`framework.testing.household`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from framework.testing.household import load_kwh

_ENTRY = """<entry><id>urn:uuid:{uid}</id><link rel="self" href="{self}"/>{links}<title>{title}</title>
<content>{content}</content><updated>{updated}</updated></entry>
"""


def _entry(uid: str, self_href: str, title: str, content: str, related=(), up: str = "") -> str:
    links = "".join(f'<link rel="related" href="{escape(h)}"/>' for h in related)
    if up:
        links += f'<link rel="up" href="{escape(up)}"/>'
    return _ENTRY.format(
        uid=uid, self=escape(self_href), links=links, title=title, content=content, updated="2025-01-01T00:00:00Z"
    )


def dst_rules(zone: ZoneInfo, year: int) -> tuple[int, str, str] | None:
    """(dstOffset, dstStartRule, dstEndRule) in ESPI's DstRuleType encoding for ``zone`` in ``year``.

    The encoding (espi.xsd, DstRuleType): month << 28 | operator << 25 | day of week (1 = Monday)
    << 17 | hour << 12 | seconds, the operator 2-6 being the nth occurrence of the day of the
    week in the month and 7 the last; the time is the wall clock before the change.
    """
    changes = []
    instant = datetime(year, 1, 1, tzinfo=UTC)
    before = instant.astimezone(zone).utcoffset()
    while instant.year == year:
        after = (instant + timedelta(hours=1)).astimezone(zone).utcoffset()
        if after != before:
            wall = (instant + timedelta(hours=1)).astimezone(timezone(before))
            changes.append((wall, after - before))
            before = after
        instant += timedelta(hours=1)
    if len(changes) != 2:
        return None
    rules = []
    for wall, _ in changes:
        last = (wall + timedelta(7)).month != wall.month
        operator = 7 if last else 2 + (wall.day - 1) // 7
        value = wall.month << 28 | operator << 25 | wall.isoweekday() << 17 | wall.hour << 12 | wall.minute * 60
        rules.append(f"{value:08X}")
    start, end = rules if changes[0][1] > timedelta(0) else rules[::-1]
    return int(abs(changes[0][1]).total_seconds()), start, end


def household_feed(start: date, days: int, zone: str = "Europe/Paris", usage_point: str = "01", seed: int = 0) -> str:
    """An ESPI Atom feed of ``days`` of hourly Wh readings from local midnight of ``start``."""
    tz = ZoneInfo(zone)
    point = f"RetailCustomer/1/UsagePoint/{usage_point}"
    reading = f"{point}/MeterReading/01"
    standard = int(datetime(start.year, 1, 1, tzinfo=tz).utcoffset().total_seconds())
    rules = dst_rules(tz, start.year)
    local_time = f"<espi:tzOffset>{standard}</espi:tzOffset>"
    if rules:
        local_time = (
            f"<espi:dstEndRule>{rules[2]}</espi:dstEndRule><espi:dstOffset>{rules[0]}</espi:dstOffset>"
            f"<espi:dstStartRule>{rules[1]}</espi:dstStartRule>{local_time}"
        )
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom" '
        'xmlns:espi="http://naesb.org/espi"><id>urn:uuid:feed</id><title>Synthetic household</title>\n',
        _entry(
            "up",
            point,
            "Home",
            "<espi:UsagePoint><espi:ServiceCategory><espi:kind>0</espi:kind></espi:ServiceCategory></espi:UsagePoint>",
            related=[f"{point}/MeterReading", "LocalTimeParameters/01"],
        ),
        _entry(
            "ltp",
            "LocalTimeParameters/01",
            "Local time",
            f"<espi:LocalTimeParameters>{local_time}</espi:LocalTimeParameters>",
        ),
        _entry(
            "mr", reading, "Electricity", "<espi:MeterReading/>", related=[f"{reading}/IntervalBlock", "ReadingType/01"]
        ),
        _entry(
            "rt",
            "ReadingType/01",
            "Hourly Wh",
            "<espi:ReadingType><espi:accumulationBehaviour>4</espi:accumulationBehaviour>"
            "<espi:commodity>1</espi:commodity><espi:flowDirection>1</espi:flowDirection>"
            "<espi:intervalLength>3600</espi:intervalLength><espi:kind>12</espi:kind>"
            "<espi:powerOfTenMultiplier>0</espi:powerOfTenMultiplier><espi:uom>72</espi:uom></espi:ReadingType>",
        ),
    ]
    for n in range(days):
        day = start + timedelta(n)
        first = datetime.combine(day, time(), tz)
        last = datetime.combine(day + timedelta(1), time(), tz)
        stamp = int(first.timestamp())
        hours = int(last.timestamp() - stamp) // 3600
        readings = "".join(
            f"<espi:IntervalReading><espi:timePeriod><espi:duration>3600</espi:duration>"
            f"<espi:start>{stamp + 3600 * h}</espi:start></espi:timePeriod>"
            f"<espi:value>{round(1000 * load_kwh(datetime.fromtimestamp(stamp + 3600 * h, tz), seed=seed))}"
            f"</espi:value></espi:IntervalReading>"
            for h in range(hours)
        )
        block = (
            f"<espi:IntervalBlock><espi:interval><espi:duration>{3600 * hours}</espi:duration>"
            f"<espi:start>{stamp}</espi:start></espi:interval>{readings}</espi:IntervalBlock>"
        )
        parts.append(
            _entry(f"ib{n}", f"{reading}/IntervalBlock/{stamp}", f"Day {day}", block, up=f"{reading}/IntervalBlock")
        )
    parts.append("</feed>\n")
    return "".join(parts)


if __name__ == "__main__":
    import sys

    sys.stdout.write(household_feed(date.fromisoformat(sys.argv[1]), int(sys.argv[2])))
