"""``greenbutton-file``: import Green Button "Download My Data" files of any utility.

The ``path`` field names a file or a directory of ``.xml`` files. Each file is imported or
refused on its own: a refused file is named with its reason and the others are stored; the
run then ends ``UNKNOWN_ERROR.PARTIAL_SYNC`` (some files stored) or ``USER_ACTION_NEEDED``
(none could be), and a file fixed or replaced is picked up by the next run. Files already
imported (same SHA-256) are skipped, so a daily run over a growing directory costs only the
new files.

A file is opened only if it is a regular file (not a device, FIFO or socket, even behind a
symlink) no larger than ``max_file_mb`` (parameter, default 256), and is streamed, never held:
its digest, then :func:`espi.scan` (links and local time), then a check pass (every value,
every document id unique), and only then are its documents produced and stored in batches,
so nothing of a refused file is stored and memory stays flat whatever its size or layout.

Readings are placed on the file's own local clock (its LocalTimeParameters and DST rules, see
:mod:`.localtime`); the ``timezone`` field, an IANA zone, overrides it.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from framework import Chunk, Context, Documents, Konnector, LoginFailed, PartialSync
from framework.errors import KonnectorError
from framework.safexml import UnsafeXml

from . import espi, localtime, placement
from .placement import SERIES, Clock

__all__ = ["SERIES", "GreenButtonFile", "checked_documents", "clock_for"]

DEFAULT_MAX_MB = 256
DOCUMENTS_PER_CHUNK = 2000


class RefusedFile(espi.EspiError):
    """A file that is not imported as it is."""


def clock_for(zone_name: str | None, feed: espi.Feed, name: str, log=None) -> Clock:
    """The ``timezone`` field's zone if given, else the file's own local time (else UTC)."""
    if zone_name:
        try:
            return localtime.ZoneClock(ZoneInfo(zone_name))
        except (ZoneInfoNotFoundError, ValueError):
            raise LoginFailed(f"field 'timezone' is not a known IANA time zone: {zone_name!r}") from None
    local = feed.local_time or localtime.LocalTime(0)
    if local.problem and log is not None:
        log.warning(f"{name}: {local.problem} (set the 'timezone' field to override)")
    return local


def check(source: espi.Source, feed: espi.Feed, clock: Clock, name: str, max_bytes: int) -> int:
    """Read every reading once, storing nothing: values valid, no two readings on one document id."""
    identities, count = placement.Identities(), 0
    for reading in espi.readings(source, feed, name, max_bytes):
        clash = identities.clash(reading, clock)
        if clash is not None:
            earlier = _first_on(source, feed, clock, name, max_bytes, clash)
            raise RefusedFile(
                f"{name}: two readings would be stored as {clash}: {earlier} and "
                f"{placement.describe(reading, clock)}; refused rather than overwrite one with the other "
                f"(local time {clock.describe()}; the 'timezone' field overrides it)"
            )
        count += 1
    return count


def _first_on(source, feed, clock, name, max_bytes, clash: str) -> str:
    """The earlier of two colliding readings (found by reading again: only on refusal)."""
    for reading in espi.readings(source, feed, name, max_bytes):
        if clash in placement.ids(reading, clock):
            return placement.describe(reading, clock)
    return "an earlier reading"


def checked_documents(data: bytes, name: str, zone_name: str | None = None, log=None) -> Documents:
    """All documents of a small feed held in memory (a PG&E resource), checked as a file is."""
    feed = espi.scan(data, name)
    clock = clock_for(zone_name, feed, name, log)
    check(data, feed, clock, name, len(data) + 1)
    return placement.documents(espi.readings(data, feed, name), clock)


class GreenButtonFile(Konnector):
    series = SERIES

    def fetch(self, ctx: Context) -> Iterator[Chunk]:
        imported = set(ctx.state.get("bookmark", {}).get("imported", []))
        max_bytes = int(float(ctx.parameters.get("max_file_mb", DEFAULT_MAX_MB)) * 1024 * 1024)
        files = self._files(Path(ctx.fields["path"]).expanduser())
        refused: list[str] = []
        stored = 0
        for path in files:
            try:
                with _open_regular(path, max_bytes) as handle:
                    digest = _digest(handle)
                    if digest in imported:
                        ctx.log.info(f"{path.name}: already imported, skipped")
                        continue
                    chunks = self._file_chunks(ctx, handle, path.name, max_bytes)
                    first = next(chunks, None)  # every check is done before the first chunk
                    if first is not None:
                        yield first
                        yield from chunks
                    imported.add(digest)
                    yield Chunk((path.name, [], None), bookmark={"imported": sorted(imported)})
                    stored += 1
            except KonnectorError as error:
                if isinstance(error, LoginFailed):
                    raise
                message = error.message if error.message.startswith(path.name) else f"{path.name}: {error.message}"
                refused.append(message)
        if refused:
            summary = f"{len(refused)} of {len(files)} file(s) refused, fix or replace them: {' | '.join(refused)}"
            raise PartialSync(summary) if stored or len(refused) < len(files) else RefusedFile(summary)

    def _file_chunks(self, ctx: Context, handle: BinaryIO, name: str, max_bytes: int) -> Iterator[Chunk]:
        """Checks run when the generator is first advanced; then chunks of readings, in order."""
        feed = espi.scan(handle, name, max_bytes)
        clock = clock_for(ctx.fields.get("timezone"), feed, name, ctx.log)
        count = check(handle, feed, clock, name, max_bytes)
        ctx.log.info(f"{name}: importing {count} readings, local time {clock.describe()}")
        batch: list[espi.Reading] = []
        weight = 0
        for reading in espi.readings(handle, feed, name, max_bytes):
            batch.append(reading)
            weight += 1 + reading.duration // placement.DAY  # a billing period gives a document per day
            if weight >= DOCUMENTS_PER_CHUNK:
                yield Chunk((name, batch, clock))
                batch, weight = [], 0
        if batch:
            yield Chunk((name, batch, clock))

    @staticmethod
    def _files(path: Path) -> list[Path]:
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".xml")
            if not files:
                raise LoginFailed(f"field 'path': no .xml file in directory {path}")
            return files
        if path.exists():
            return [path]
        raise LoginFailed(f"field 'path': no such file or directory: {path}")

    def process(self, ctx: Context, raw: tuple[str, list[espi.Reading], Clock | None]) -> Documents:
        _, readings, clock = raw
        return placement.documents(readings, clock) if clock is not None else {}


@contextmanager
def _open_regular(path: Path, max_bytes: int) -> Iterator[BinaryIO]:
    """The file, if it is a regular file within the size limit; checked on the open descriptor."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as error:
        raise RefusedFile(f"cannot be opened: {error.strerror}") from None
    with os.fdopen(descriptor, "rb") as handle:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise RefusedFile("not a regular file (a device, FIFO or socket); only regular files are read")
        if info.st_size > max_bytes:
            raise RefusedFile(f"{info.st_size:,} bytes is over the {max_bytes:,}-byte limit (parameter max_file_mb)")
        try:
            yield handle
        except UnsafeXml as error:
            raise RefusedFile(error.message) from None


def _digest(handle: BinaryIO) -> str:
    digest = hashlib.sha256()
    while block := handle.read(1 << 20):
        digest.update(block)
    return digest.hexdigest()
