"""Ecolyo-shaped time series and their exact month/year aggregation.

One doctype per granularity (``<prefix>.minute|hour|day|month|year``), each
document ``{load, year, month, day, hour, minute}`` in local wall-clock time
(plus ``meter``, ``unit``, ``price`` where useful). Month documents have
``day: 0`` and year documents ``month: 1, day: 0``, as Ecolyo writes them.

Ids are readable and sortable: ``[meter/]2024``, ``2024-03``, ``2024-03-05``,
``2024-03-05T14+0100``, ``2024-03-05T14:30+0100``. The UTC offset in sub-day ids
keeps the two 02:30 of a DST fall-back day apart; the date prefix lets
aggregation read one period's sources with an id range, never a scan.

Aggregation recomputes every touched target period from all of its sources
(not by adding deltas), so re-runs, overlapping fetches and crashes can never
double-count. A period whose sources are incomplete is marked ``partial``;
a partial total never replaces a complete one already stored.
"""

from __future__ import annotations

import calendar
import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from .backend import HIGH_KEY, Doc
from .documents import DocumentStore, Merge, fields_changed, hydrated_changes, ours_win

LEVELS = ("minute", "hour", "day", "month", "year")
DECIMALS = 9
"""Aggregates are rounded here: float noise must not make a re-run rewrite a doc."""

_FUNCTIONS = {
    "sum": math.fsum,
    "max": max,
    "min": min,
    "mean": lambda values: math.fsum(values) / len(values),
}


def period_id(level: str, when: date | datetime, meter: str | None = None) -> str:
    """The id of the ``level`` period holding ``when`` (an aware datetime below day level).

    Formatted by hand rather than with ``strftime``: this runs once per point of every backfill.
    """
    if level in ("minute", "hour"):
        if not isinstance(when, datetime) or (offset := when.utcoffset()) is None:
            raise ValueError(f"a {level} point needs a timezone-aware datetime, got {when!r}")
        stamp = f"{when.year:04d}-{when.month:02d}-{when.day:02d}T{when.hour:02d}"
        if level == "minute":
            stamp += f":{when.minute:02d}"
        stamp += _utc_offset(offset)
    elif level == "day":
        stamp = f"{when.year:04d}-{when.month:02d}-{when.day:02d}"
    elif level == "month":
        stamp = f"{when.year:04d}-{when.month:02d}"
    elif level == "year":
        stamp = f"{when.year:04d}"
    else:
        raise KeyError(level)
    return f"{meter}/{stamp}" if meter else stamp


def _utc_offset(offset: timedelta) -> str:
    """``+HHMM`` as ``strftime("%z")`` writes it (``+HHMMSS`` for an offset with seconds)."""
    seconds = int(offset.total_seconds())
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{sign}{hours:02d}{minutes:02d}" + (f"{seconds:02d}" if seconds else "")


def in_order(stamps: Iterable[datetime], zone: tzinfo) -> Iterator[datetime]:
    """Naive local times of a chronological series, made aware; a wall-clock time seen again
    (the autumn DST hour) is the later instant."""
    seen: set[datetime] = set()
    for stamp in stamps:
        yield stamp.replace(tzinfo=zone, fold=1 if stamp in seen else 0)
        seen.add(stamp)


def point(level: str, when: date | datetime, *, meter: str | None = None, **values: Any) -> Doc:
    """One time-series document (with its ``_id``) for the period holding ``when``."""
    fields = {
        "year": when.year,
        "month": when.month if level != "year" else 1,
        "day": when.day if level in ("minute", "hour", "day") else 0,
        "hour": when.hour if level in ("minute", "hour") and isinstance(when, datetime) else 0,
        "minute": when.minute if level == "minute" and isinstance(when, datetime) else 0,
    }
    doc = {"_id": period_id(level, when, meter), **values, **fields}
    if meter:
        doc["meter"] = meter
    return doc


def parent_id(doc_id: str, level: str) -> str:
    """The id of the ``level`` period that holds the period ``doc_id``."""
    meter, _, stamp = doc_id.rpartition("/")
    offset = stamp[-5:] if "T" in stamp else ""
    length = {"year": 4, "month": 7, "day": 10, "hour": 13}[level]
    parent = stamp[:length] + (offset if level == "hour" else "")
    return f"{meter}/{parent}" if meter else parent


def _sources_prefix(period: str, level: str) -> str:
    """The id prefix shared by every source document of ``period`` (a ``level`` id)."""
    if level == "hour":
        return period[:-5] + ":"
    return period + ("T" if level == "day" else "-")


def _expected_sources(period: str, level: str, source_level: str) -> int | None:
    """How many source periods a complete period has, when the calendar says it."""
    stamp = period.rpartition("/")[2]
    if level == "month" and source_level == "day":
        return calendar.monthrange(int(stamp[:4]), int(stamp[5:7]))[1]
    if level == "year" and source_level == "month":
        return 12
    return None


@dataclass(frozen=True)
class Rollup:
    """Aggregate ``source`` level documents into ``target`` level documents.

    ``rules`` maps each output field to ``(function, input field)``, function one
    of ``sum``, ``max``, ``min``, ``mean``: ``{"load": ("sum", "load")}`` for
    energy, ``("max", "load")`` for power, mean/min/max for temperature.
    """

    source: str
    target: str
    rules: dict[str, tuple[str, str]]
    copy: tuple[str, ...] = ("unit",)
    """Fields copied from the sources when they all agree (``unit``)."""
    expected: Callable[[str], int] | None = None
    """How many sources a complete target period (given its id) has, where the calendar alone
    cannot say (the hours of a local day: 23, 24 or 25); fewer makes it ``partial``."""
    count: str | None = None
    """A field holding the number of sources (``hours``), so a partial period says how partial."""


@dataclass(frozen=True)
class Series:
    """A family of doctypes ``<prefix>.<level>`` and how they roll up."""

    prefix: str
    rollups: tuple[Rollup, ...]

    def __post_init__(self) -> None:
        sources = [r.source for r in self.rollups]
        if len(sources) != len(set(sources)):
            raise ValueError(f"series {self.prefix}: one rollup per source level, got {sources}")

    def doctype(self, level: str) -> str:
        return f"{self.prefix}.{level}"

    def rollup_from(self, level: str) -> Rollup | None:
        return next((r for r in self.rollups if r.source == level), None)

    @property
    def doctypes(self) -> frozenset[str]:
        levels = {r.source for r in self.rollups} | {r.target for r in self.rollups}
        return frozenset(self.doctype(level) for level in levels)


def energy_series(prefix: str, finest: str = "day") -> Series:
    """A series of energy (``load`` summed) from ``finest`` level up to year."""
    chain = LEVELS[LEVELS.index(finest) :]
    sums = {"load": ("sum", "load"), "price": ("sum", "price")}
    return Series(prefix, tuple(Rollup(a, b, sums) for a, b in itertools.pairwise(chain)))


def write_points(store: DocumentStore, series: Series, level: str, points: Iterable[Doc]) -> dict[str, int]:
    """Upsert points at ``level``, then re-aggregate every period they fall in, level by level.

    The periods touched at every level follow from the points' ids alone, so every
    read is planned first and sent at once (concurrently where the backend gains
    from it): at each level, the sources of the touched parent periods, one id
    range per meter, which also hold the stored twins of what is about to be
    written (dedup costs no extra request); at the top level, the twins by id.
    Every level is then computed in memory, and written: points first, then the
    aggregate levels (together on a server). Parents are recomputed from all
    their sources (not by adding deltas), for every period touched, written or
    not: a job that crashed between points and aggregates is repaired by the next
    run. Only changed documents are written. Returns documents written per doctype.
    """
    wanted = {p["_id"]: p for p in points}
    if not wanted:
        return {}
    plan = _plan(series, level, list(wanted))
    reads = _read_plan(store, series, plan)
    changes: list[tuple[str, list[Doc], Merge]] = []
    merge: Merge = ours_win
    should_write = fields_changed
    for step, (level, rollup, periods, parents) in enumerate(plan):
        sources = reads[step]
        if rollup is None:
            twins = sources
        else:
            twins = {doc_id: doc for docs in sources.values() for doc_id, doc in docs.items()}
        to_write = hydrated_changes(wanted, twins, should_write)
        changes.append((series.doctype(level), to_write, merge))
        if rollup is None:
            break
        for doc in to_write:
            sources[parents[doc["_id"]]][doc["_id"]] = doc
        wanted = {p: doc for p in periods if (doc := _combine(p, rollup, list(sources[p].values())))}
        if not wanted:
            break
        merge = _recompute_on_conflict(store, series, rollup)
        should_write = _should_replace
    return _write_changes(store, changes)


def _write_changes(store: DocumentStore, changes: list[tuple[str, list[Doc], Merge]]) -> dict[str, int]:
    """The points first; then the aggregate levels, together where the backend takes concurrent
    writes (each level is computed already: no write waits for another's answer)."""
    (doctype, docs, merge), *aggregates = changes
    written = {doctype: len(store.save(doctype, docs, merge))}
    aggregates = [change for change in aggregates if change[1]]
    if len(aggregates) > 1 and getattr(store.backend, "writes_in_flight", 1) > 1:
        with ThreadPoolExecutor(len(aggregates), thread_name_prefix="store-write") as pool:
            saved = list(pool.map(lambda change: len(store.save(*change)), aggregates))
    else:
        saved = [len(store.save(*change)) for change in aggregates]
    written.update((change[0], count) for change, count in zip(aggregates, saved, strict=True))
    return {doctype: count for doctype, count in written.items() if count}


Step = tuple[str, Rollup | None, list[str], dict[str, str]]


def _plan(series: Series, level: str, ids: list[str]) -> list[Step]:
    """For each level from ``level`` up: the level, its rollup, the parent periods touched (for
    the top level, which has no rollup: the ids that may be written there) and each id's parent."""
    plan: list[Step] = []
    while (rollup := series.rollup_from(level)) is not None:
        target = rollup.target
        parents = {doc_id: parent_id(doc_id, target) for doc_id in ids}
        periods = sorted(set(parents.values()))
        plan.append((level, rollup, periods, parents))
        level, ids = target, periods
    plan.append((level, None, ids, {}))
    return plan


def _read_plan(store: DocumentStore, series: Series, plan: list[Step]) -> list[Any]:
    """Every read the plan needs: sources by period (or twins by id at the top), in plan order."""

    def read(step: Step) -> Any:
        level, rollup, periods, _ = step
        if rollup is None:
            return store.get_many(series.doctype(level), periods)
        return _sources_by_period(store, series.doctype(level), rollup.target, periods)

    if len(plan) == 1 or not getattr(store.backend, "concurrent_reads", False):
        return [read(step) for step in plan]
    with ThreadPoolExecutor(max_workers=len(plan), thread_name_prefix="store-read") as pool:
        return list(pool.map(read, plan))


def _recompute_on_conflict(store: DocumentStore, series: Series, rollup: Rollup) -> Merge:
    """A conflicting aggregate (another job wrote it meanwhile) is recomputed from the sources as they are now."""

    def recompute(stored: Doc, wanted: Doc) -> Doc:
        period = wanted["_id"]
        sources = _sources_by_period(store, series.doctype(rollup.source), rollup.target, [period])
        computed = _combine(period, rollup, list(sources[period].values())) or wanted
        return {**computed, "_rev": stored["_rev"]}

    return recompute


def _sources_by_period(
    store: DocumentStore, source: str, level: str, periods: Sequence[str]
) -> dict[str, dict[str, Doc]]:
    """Source documents of each period, by id, read with one id range per meter."""
    grouped: dict[str, dict[str, Doc]] = {period: {} for period in periods}
    by_meter = itertools.groupby(sorted(periods), key=lambda period: period.rpartition("/")[0])
    for _, meter_periods in by_meter:
        ordered = list(meter_periods)
        start = _sources_prefix(ordered[0], level)
        end = _sources_prefix(ordered[-1], level) + HIGH_KEY
        for doc in store.id_range(source, start, end):
            parent = grouped.get(parent_id(doc["_id"], level))
            if parent is not None:
                parent[doc["_id"]] = doc
    return grouped


def _should_replace(computed: Doc, existing: Doc) -> bool:
    """Write a recomputed aggregate if it changed, unless a partial total would replace a complete one."""
    if computed.get("partial") and not existing.get("partial"):
        return False
    return _content(existing) != _content(computed)


def _content(doc: Doc) -> Doc:
    return {k: v for k, v in doc.items() if k not in ("_id", "_rev", "cozyMetadata")}


def _combine(period: str, rollup: Rollup, sources: list[Doc]) -> Doc | None:
    if not sources:
        return None
    first = sources[0]
    doc: Doc = {"_id": period}
    for output, (function, field) in rollup.rules.items():
        values = [s[field] for s in sources if isinstance(s.get(field), (int, float))]
        if values:
            doc[output] = round(_FUNCTIONS[function](values), DECIMALS)
    for field in rollup.copy:
        values = {s.get(field) for s in sources}
        if len(values) == 1 and None not in values:
            doc[field] = values.pop()
    level = rollup.target
    doc.update(
        year=first["year"],
        month=first["month"] if level != "year" else 1,
        day=first["day"] if level in ("hour", "day") else 0,
        hour=first["hour"] if level == "hour" else 0,
        minute=0,
    )
    if "meter" in first:
        doc["meter"] = first["meter"]
    if rollup.count:
        doc[rollup.count] = len(sources)
    expected = rollup.expected(period) if rollup.expected else _expected_sources(period, level, rollup.source)
    if (expected and len(sources) < expected) or any(s.get("partial") for s in sources):
        doc["partial"] = True
    return doc
