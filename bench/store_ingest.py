"""Store ingest benchmark: our store against raw _bulk_docs and against Cozy-style writes.

Run:  .venv/bin/python bench/store_ingest.py [--days 365]

Starts pouchdb-server in memory (or uses $COUCHDB_URL) and measures, in one run:
  (a) ours: N half-hour points through a konnector's default pipeline: fetched in 7-day
      chunks (the Enedis load-curve window), stored with dedup + day/month/year aggregation;
  (b) raw: the very documents (a) ended with, written with plain _bulk_docs in 1000-doc
      batches: the server's own limit for this data;
  (c) Cozy-style: load every existing doc of the doctype, then one POST per new doc,
      sequentially (cozy-konnector-libs' hydrateAndFilter + addData), on the first 30 days;
  (d) incremental: one new day written over 1 year and over 3 years of history;
  (e) peak RSS of a 3-year backfill in a child process.
It prints the figures and the ratios; docs/performance.md records them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import requests

from framework import Chunk, Konnector
from framework.manifest import Manifest
from framework.store import CouchBackend, DocumentStore
from framework.store.timeseries import Rollup, Series, point
from framework.testing.couchdb_server import CouchServer
from framework.testing.household import load_kwh
from framework.testing.inprocess import make_context

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


def ingest(backend: CouchBackend, points: list[dict]) -> None:
    Curve(points).start(make_context(backend, MANIFEST, {}))


def all_docs(backend: CouchBackend) -> dict[str, list[dict]]:
    store = DocumentStore(backend)
    levels = ("minute", "day", "month", "year")
    return {SERIES.doctype(level): list(store.id_range(SERIES.doctype(level))) for level in levels}


def raw_bulk(url: str, prefix: str, documents: dict[str, list[dict]]) -> None:
    session = requests.Session()
    for doctype, docs in documents.items():
        db = f"{url}/{prefix}{doctype.replace('.', '-')}"
        session.put(db, timeout=30)
        clean = [{k: v for k, v in d.items() if k != "_rev"} for d in docs]
        for start in range(0, len(clean), 1000):
            response = session.post(f"{db}/_bulk_docs", json={"docs": clean[start : start + 1000]}, timeout=120)
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


def timed(function, *args) -> float:
    started = time.perf_counter()
    function(*args)
    return time.perf_counter() - started


def incremental(url: str, history_days: int, repeats: int = 5) -> float:
    backend = new_backend(url)
    ingest(backend, half_hours(0, history_days))
    new_days = [half_hours(history_days + n, 1) for n in range(repeats)]
    return statistics.median(timed(ingest, backend, day) for day in new_days)


def child_rss(url: str, days: int) -> int:
    """Peak RSS (KiB) of a process that backfills ``days`` through our store."""
    command = [sys.executable, __file__, "--rss-child", "--days", str(days)]
    done = subprocess.run(command, env={**os.environ, "COUCHDB_URL": url}, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)["max_rss_kib"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--rss-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    server = None
    url = os.environ.get("COUCHDB_URL")
    if not url:
        server = CouchServer().start()
        url = server.url
    try:
        if args.rss_child:
            ingest(new_backend(url), half_hours(0, args.days))
            print(json.dumps({"max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
            return
        run(url, args.days)
    finally:
        if server:
            server.stop()


def run(url: str, days: int) -> None:
    points = half_hours(0, days)
    warm_up = half_hours(0, 60)
    ingest(new_backend(url), warm_up)
    raw_bulk(url, f"w{uuid.uuid4().hex[:8]}-", {SERIES.doctype("minute"): warm_up})
    backend = new_backend(url)
    t_ours = timed(ingest, backend, points)
    documents = all_docs(backend)
    total_docs = sum(len(d) for d in documents.values())
    t_raw = timed(raw_bulk, url, f"r{uuid.uuid4().hex[:8]}-", documents)
    cozy_points = half_hours(0, 30)
    t_cozy = timed(cozy_style, url, f"c{uuid.uuid4().hex[:8]}-", cozy_points)
    t_ours_30 = timed(ingest, new_backend(url), cozy_points)
    t_inc_1y = incremental(url, 365)
    t_inc_3y = incremental(url, 3 * 365)
    rss = child_rss(url, 3 * 365)
    print(f"points: {len(points)} half-hours ({days} days) -> {total_docs} documents with aggregates")
    print(f"(a) ours          {t_ours:7.2f} s  {len(points) / t_ours:8.0f} points/s  {total_docs / t_ours:8.0f} docs/s")
    print(f"(b) raw bulk_docs {t_raw:7.2f} s  {total_docs / t_raw:8.0f} docs/s")
    print(f"(c) cozy-style    {t_cozy:7.2f} s  {len(cozy_points) / t_cozy:8.0f} points/s (30 days, no aggregation)")
    print(f"    ours, 30 days {t_ours_30:7.2f} s  {len(cozy_points) / t_ours_30:8.0f} points/s (with aggregation)")
    print(f"(d) one new day over 1 year: {t_inc_1y * 1000:.0f} ms, over 3 years: {t_inc_3y * 1000:.0f} ms")
    print(f"(e) peak RSS of a 3-year backfill: {rss / 1024:.0f} MiB")
    print("ratios:")
    print(f"  ours / raw bulk_docs throughput: {t_raw / t_ours:.2f}  (target >= 0.8)")
    print(f"  ours / cozy-style throughput:    {t_cozy / t_ours_30:.1f}  (target >= 15)")
    print(f"  incremental 3 years / 1 year:    {t_inc_3y / t_inc_1y:.2f}  (target <= 1.5)")


if __name__ == "__main__":
    main()
