"""Store ingest benchmark: our CouchDB store against raw _bulk_docs and against Cozy-style writes.

Run:  .venv/bin/python bench/store_ingest.py [--days 365] [--repeats 5] [--modes memory disk]

Starts pouchdb-server (in memory, then on disk) and measures, in one run per mode, each case
repeated and interleaved (see bench/harness.py):
  ours:     N half-hour points through a konnector's default pipeline, fetched in 7-day chunks
            (the Enedis load-curve window), stored with dedup + day/month/year aggregation,
            the bookmark saved after each store;
  raw SIZE: the very documents ours ended with (points and aggregates, with their cozyMetadata),
            written with plain _bulk_docs, SIZE per request, one request after the other;
  the ratio raw / ours is taken round by round against the best raw batch size of that round.
In memory also:
  Cozy-style: load every existing doc of the doctype, then one POST per new doc, sequentially
            (cozy-konnector-libs' hydrateAndFilter + addData), against ours, on the first 30 days;
  incremental: one new day written over 1 year and over 3 years of history;
  peak RSS: of a 3-year backfill, each in a fresh child process, its own VmHWM.
docs/performance.md records the output.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import requests
from harness import (
    MIN_REPEATS,
    Samples,
    best_per_round,
    header,
    interleaved,
    ratios,
    report_child,
    run_child,
    timed,
    verdict,
)

from framework import Chunk, Konnector
from framework.manifest import Manifest
from framework.store import Backend, CouchBackend, DocumentStore
from framework.store.timeseries import Rollup, Series, point
from framework.testing.couchdb_server import CouchServer
from framework.testing.household import load_kwh
from framework.testing.inprocess import make_context

LEVELS = ("minute", "day", "month", "year")
RAW_SIZES = (500, 1000, 2000, 5000)
PARIS = ZoneInfo("Europe/Paris")
SUM = {"load": ("sum", "load")}
SERIES = Series(
    "bench.enedis", (Rollup("minute", "day", SUM), Rollup("day", "month", SUM), Rollup("month", "year", SUM))
)
START = datetime(2021, 1, 1, tzinfo=UTC)
CHUNK_DAYS = 7


def half_hours(first_day: int, days: int) -> list[dict]:
    start = START + timedelta(days=first_day)
    points = []
    for n in range(days * 48):
        local = (start + timedelta(minutes=30 * n)).astimezone(PARIS)
        points.append(point("minute", local, load=load_kwh(local, minutes=30)))
    return points


MANIFEST = Manifest(
    {
        "name": "Bench",
        "slug": "bench",
        "type": "konnector",
        "version": "1.0.0",
        "entrypoint": "bench.store_ingest:Curve",
        "permissions": {level: {"type": SERIES.doctype(level)} for level in ("minute", "day", "month", "year")},
    },
    "bench",
)


class Curve(Konnector):
    """Serves pre-computed points in 7-day chunks, so only storing is timed."""

    series = (SERIES,)

    def __init__(self, points: list[dict]) -> None:
        self.points = points

    def fetch(self, ctx):
        size = CHUNK_DAYS * 48
        for start in range(0, len(self.points), size):
            yield Chunk(self.points[start : start + size], bookmark=start + size)

    def process(self, ctx, points):
        return {SERIES.doctype("minute"): points}


def new_backend(url: str) -> CouchBackend:
    return CouchBackend(url, f"b{uuid.uuid4().hex[:8]}-")


def ingest(backend: Backend, points: list[dict]) -> None:
    Curve(points).start(make_context(backend, MANIFEST, {}))


def all_docs(backend: Backend) -> dict[str, list[dict]]:
    store = DocumentStore(backend)
    return {SERIES.doctype(level): list(store.id_range(SERIES.doctype(level))) for level in LEVELS}


def drop(url: str, prefix: str) -> None:
    """Delete a measurement's databases, so the in-memory server does not grow round after round."""
    session = requests.Session()
    for doctype in [*SERIES.doctypes, "io.cozy.accounts", "bench.cozy.minute"]:
        session.delete(f"{url}/{prefix}{doctype.replace('.', '-')}", timeout=60)


def raw_bulk(url: str, prefix: str, documents: dict[str, list[dict]], size: int) -> None:
    """Plain ``_bulk_docs`` of the given documents, ``size`` per request, one request after the other."""
    session = requests.Session()
    for doctype, docs in documents.items():
        db = f"{url}/{prefix}{doctype.replace('.', '-')}"
        session.put(db, timeout=30)
        for start in range(0, len(docs), size):
            response = session.post(f"{db}/_bulk_docs", json={"docs": docs[start : start + size]}, timeout=120)
            response.raise_for_status()


def cozy_style(url: str, prefix: str, points: list[dict]) -> None:
    """Load all docs, filter in memory, then one request per new doc, one after the other."""
    session = requests.Session()
    db = f"{url}/{prefix}bench-cozy-minute"
    session.put(db, timeout=30)
    for start in range(0, len(points), CHUNK_DAYS * 48):
        existing = session.get(f"{db}/_all_docs", params={"include_docs": "true"}, timeout=120).json()["rows"]
        seen = {
            (r["doc"]["year"], r["doc"]["month"], r["doc"]["day"], r["doc"]["hour"], r["doc"]["minute"])
            for r in existing
        }
        for doc in points[start : start + CHUNK_DAYS * 48]:
            key = (doc["year"], doc["month"], doc["day"], doc["hour"], doc["minute"])
            if key not in seen:
                body = {k: v for k, v in doc.items() if k != "_id"}
                session.post(db, json=body, timeout=30).raise_for_status()


def fresh(url: str, measure, cpu: Samples | None = None) -> float:
    """Time ``measure(prefix)`` on fresh databases, then drop them (untimed); our CPU time into ``cpu``."""
    prefix = f"b{uuid.uuid4().hex[:8]}-"
    started = time.process_time()
    try:
        return timed(lambda: measure(prefix))
    finally:
        if cpu is not None:
            cpu.values.append(time.process_time() - started)
        drop(url, prefix)


def ingest_vs_raw(url: str, days: int, repeats: int) -> tuple[dict[str, Samples], dict[str, Samples], int]:
    """Our pipeline and raw ``_bulk_docs`` of the very documents it ends with, at each batch size."""
    points = half_hours(0, days)
    backend = new_backend(url)
    ingest(backend, points)
    documents = {
        t: [{k: v for k, v in d.items() if k != "_rev"} for d in docs] for t, docs in all_docs(backend).items()
    }
    drop(url, backend.prefix)
    cpu = {"ours": Samples("ours")} | {f"raw {size}": Samples(f"raw {size}") for size in RAW_SIZES}
    cases = {"ours": lambda: fresh(url, lambda prefix: ingest(CouchBackend(url, prefix), points), cpu["ours"])}
    for size in RAW_SIZES:
        name = f"raw {size}"
        cases[name] = lambda size=size, name=name: fresh(
            url, lambda prefix: raw_bulk(url, prefix, documents, size), cpu[name]
        )
    return interleaved(cases, repeats), cpu, sum(map(len, documents.values()))


def cozy_vs_ours(url: str, days: int, repeats: int) -> dict[str, Samples]:
    points = half_hours(0, days)
    return interleaved(
        {
            "cozy-style": lambda: fresh(url, lambda prefix: cozy_style(url, prefix, points)),
            "ours": lambda: fresh(url, lambda prefix: ingest(CouchBackend(url, prefix), points)),
        },
        repeats,
    )


def incremental(url: str, histories: tuple[int, ...], repeats: int) -> dict[str, Samples]:
    """One new day written over each history (in days), each repetition a further day."""
    backends, next_day = {}, {}
    for days in histories:
        backends[days] = new_backend(url)
        ingest(backends[days], half_hours(0, days))
        next_day[days] = days

    def one_day(days: int) -> float:
        day = half_hours(next_day[days], 1)
        next_day[days] += 1
        return timed(lambda: ingest(backends[days], day))

    try:
        return interleaved({f"{days} d": lambda days=days: one_day(days) for days in histories}, repeats)
    finally:
        for backend in backends.values():
            drop(url, backend.prefix)


def child_peak(url: str, days: int) -> float:
    """Peak RSS (MiB) of a fresh process that backfills ``days`` through our store: its own VmHWM."""
    env = {**os.environ, "COUCHDB_URL": url}
    return run_child([sys.executable, __file__, "--rss-child", "--days", str(days)], env)["peak_kib"] / 1024


def start_server(on_disk: bool) -> CouchServer:
    return CouchServer(on_disk=on_disk)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=365, help="days of half-hour points ingested (default 365)")
    parser.add_argument("--repeats", type=int, default=MIN_REPEATS)
    parser.add_argument("--modes", nargs="+", choices=["memory", "disk"], default=["memory", "disk"])
    parser.add_argument("--cozy-days", type=int, default=30)
    parser.add_argument("--history-days", type=int, nargs=2, default=[365, 3 * 365])
    parser.add_argument("--rss-days", type=int, default=3 * 365)
    parser.add_argument("--rss-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        ingest(new_backend(os.environ["COUCHDB_URL"]), half_hours(0, args.days))
        report_child({})
        return
    header(
        f"store ingest: {args.days} days of half-hour points, pouchdb-server {' and '.join(args.modes)}", args.repeats
    )
    for mode in args.modes:
        with start_server(on_disk=mode == "disk") as server:
            ingest(new_backend(server.url), half_hours(0, 30))  # warm-up: node's JIT, connections
            run_mode(server.url, mode, args)


def run_mode(url: str, mode: str, args: argparse.Namespace) -> None:
    samples, cpu, total = ingest_vs_raw(url, args.days, args.repeats)
    ours = samples["ours"]
    raws = [samples[f"raw {size}"] for size in RAW_SIZES]
    best = min(raws, key=lambda s: s.median)
    print(f"\n## {mode}: {args.days * 48} points -> {total} documents (points + day/month/year aggregates)")
    for name, sample in samples.items():
        print(f"  {name:10} {sample.show()}  ({total / sample.median:,.0f} docs/s)")
    print(f"  client CPU: ours {cpu['ours'].show()}, {best.name} {cpu[best.name].show()}")
    print(f"  best raw batch size (by median): {best.name.split()[1]}")
    print(f"  ours / raw _bulk_docs at {best.name.split()[1]}: {verdict(ratios('', best, ours), 0.95)}")
    strict = ratios("", best_per_round("raw best", raws), ours)
    print(f"  ours / the fastest raw size of each round (stricter: a minimum of 4 noisy draws): {strict.show()}")
    if mode != "memory":
        return
    cozy = cozy_vs_ours(url, args.cozy_days, args.repeats)
    print(f"## cozy-style (load all, one POST per new doc) vs ours, first {args.cozy_days} days, in memory")
    print(f"  cozy-style {cozy['cozy-style'].show()}, ours {cozy['ours'].show()}")
    print(f"  ours / cozy-style throughput: {verdict(ratios('', cozy['cozy-style'], cozy['ours']), 15)}")
    short, long = args.history_days
    days = incremental(url, (short, long), args.repeats)
    print(f"## one new day over {short} and {long} days of history, in memory")
    for count in (short, long):
        print(f"  over {count} days: {days[f'{count} d'].show(1000, 0).replace(' s', ' ms', 1)}")
    growth = ratios("", days[f"{long} d"], days[f"{short} d"])
    print(f"  {long} d / {short} d: {verdict(growth, 1.5, higher_is_better=False)}")
    peaks = Samples("peak", "MiB", [child_peak(url, args.rss_days) for _ in range(args.repeats)])
    print(f"## peak RSS of a {args.rss_days}-day backfill, the child's own VmHWM: {peaks.show(digits=0)}")


if __name__ == "__main__":
    main()
