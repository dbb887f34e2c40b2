"""``greenbutton-file``: import Green Button "Download My Data" files of any utility.

Each XML file given in the ``path`` field (a file, or a directory of them) is
one chunk. Files already imported (same SHA-256) are skipped, so a daily run
over a growing directory costs only the new files.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from framework import Chunk, Context, Documents, Konnector, LoginFailed, energy_series, point

from . import espi

DAY = 86400
KINDS = ("electricity", "gas", "electricity.export", "gas.export")
SERIES = tuple(energy_series(f"org.greenbutton.{kind}", finest="minute") for kind in KINDS)


def series_prefix(reading_type: espi.ReadingType) -> str:
    export = ".export" if reading_type.flow_direction == espi.RECEIVED else ""
    return f"org.greenbutton.{reading_type.kind}{export}"


def level_of(duration: int) -> str:
    if duration < 3600:
        return "minute"
    if duration == 3600:
        return "hour"
    return "day"


def to_documents(readings: Iterator[espi.Reading], zone: tzinfo) -> Documents:
    """Ecolyo-shaped documents, one per reading at the level its duration fits.

    A reading longer than a day (a billing period) is spread evenly over the
    local days it covers, so day, month and year totals stay exact.
    """
    documents: Documents = {}
    for reading in readings:
        prefix = series_prefix(reading.reading_type)
        for level, when, share in _placements(reading, zone):
            values = {"load": reading.value * share, "unit": reading.reading_type.unit}
            if reading.cost is not None:
                values["price"] = reading.cost * share
            doc = point(level, when, meter=reading.usage_point, **values)
            documents.setdefault(f"{prefix}.{level}", []).append(doc)
    return documents


def _placements(reading: espi.Reading, zone: tzinfo) -> Iterator[tuple[str, date | datetime, float]]:
    start = datetime.fromtimestamp(reading.start, UTC).astimezone(zone)
    if reading.duration <= DAY + 3600:
        level = level_of(reading.duration)
        yield level, (start.date() if level == "day" else start), 1.0
        return
    end = datetime.fromtimestamp(reading.start + reading.duration, UTC).astimezone(zone)
    days = [start.date() + timedelta(n) for n in range(max(1, (end.date() - start.date()).days))]
    for day in days:
        yield "day", day, 1.0 / len(days)


def _zone(name: str | None, data: bytes, source: str) -> tzinfo:
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise LoginFailed(f"field 'timezone' is not a known IANA time zone: {name!r}") from None
    local = espi.local_time(data, source)
    return timezone(timedelta(seconds=local.tz_offset)) if local else UTC


class GreenButtonFile(Konnector):
    series = SERIES

    def fetch(self, ctx: Context) -> Iterator[Chunk]:
        imported = set(ctx.state.get("bookmark", {}).get("imported", []))
        files = self._files(Path(ctx.fields["path"]).expanduser())
        for path in files:
            data = path.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            if digest in imported:
                ctx.log.info(f"{path.name}: already imported, skipped")
                continue
            imported.add(digest)
            ctx.log.info(f"{path.name}: importing {len(data) / 1e6:.1f} MB")
            yield Chunk((path.name, data), bookmark={"imported": sorted(imported)})

    @staticmethod
    def _files(path: Path) -> list[Path]:
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".xml")
            if not files:
                raise LoginFailed(f"field 'path': no .xml file in directory {path}")
            return files
        if path.is_file():
            return [path]
        raise LoginFailed(f"field 'path': no such file or directory: {path}")

    def process(self, ctx: Context, raw: tuple[str, bytes]) -> Documents:
        name, data = raw
        zone = _zone(ctx.fields.get("timezone"), data, name)
        return to_documents(espi.parse(data, name), zone)
