"""Embedded store benchmark: our SQLite store against a raw sqlite3 executemany of the same documents.

Run:  .venv/bin/python bench/embedded_store.py [--days 365] [--repeats 5]

Measures, in one run, each case repeated and interleaved (see bench/harness.py), each on a fresh
file in the same temporary directory:
  ours: N half-hour points through a konnector's default pipeline (7-day chunks, dedup,
        day/month/year aggregation, bookmark saved after each store) into ``SqliteBackend``;
  raw:  the very documents ours ended with (points and aggregates, with their cozyMetadata),
        each serialised with ``json.dumps`` and inserted with ``executemany``, one transaction
        per 5,000 documents, into a table of the same shape (WITHOUT ROWID, primary key
        (db, id)). No lookups, no revisions, no aggregation: the floor of storing these bytes.
Both use the same SQLite settings: ``journal_mode=WAL``, ``synchronous=NORMAL``.
The ratio raw / ours (our share of the raw speed) is taken round by round.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import uuid
from pathlib import Path

from harness import MIN_REPEATS, Samples, header, interleaved, ratios, timed, verdict
from store_ingest import all_docs, half_hours, ingest

from framework.store import SqliteBackend

RAW_BATCH = 5000
SCHEMA = """
CREATE TABLE docs (
    db TEXT NOT NULL, id TEXT NOT NULL, rev TEXT NOT NULL, deleted INTEGER NOT NULL DEFAULT 0,
    live_rev TEXT, body TEXT NOT NULL, PRIMARY KEY (db, id)
) WITHOUT ROWID
"""


def ours(path: Path, points: list[dict]) -> None:
    backend = SqliteBackend(path)
    try:
        ingest(backend, points)
    finally:
        backend.close()


def raw(path: Path, documents: dict[str, list[dict]]) -> None:
    conn = sqlite3.connect(str(path))
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(SCHEMA)
    for doctype, docs in documents.items():
        db = doctype.replace(".", "-")
        for start in range(0, len(docs), RAW_BATCH):
            rows = [(db, d["_id"], d["_rev"], json.dumps(d)) for d in docs[start : start + RAW_BATCH]]
            with conn:
                conn.executemany("INSERT INTO docs (db, id, rev, body) VALUES (?, ?, ?, ?)", rows)
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeats", type=int, default=MIN_REPEATS)
    args = parser.parse_args()
    header(f"embedded store: {args.days} days of half-hour points, SQLite WAL, synchronous=NORMAL", args.repeats)
    points = half_hours(0, args.days)
    with tempfile.TemporaryDirectory(prefix="bench-sqlite-") as work:
        backend = SqliteBackend(Path(work, "reference.sqlite3"))
        ingest(backend, points)
        documents = all_docs(backend)
        backend.close()
        total = sum(map(len, documents.values()))

        def fresh(function, data) -> float:
            path = Path(work, f"{uuid.uuid4().hex}.sqlite3")
            try:
                return timed(lambda: function(path, data))
            finally:
                for leftover in Path(work).glob(f"{path.name}*"):
                    leftover.unlink()

        samples = interleaved(
            {"ours": lambda: fresh(ours, points), "raw executemany": lambda: fresh(raw, documents)}, args.repeats
        )
    print(f"{len(points)} points -> {total} documents (points + day/month/year aggregates)")
    for name, sample in samples.items():
        print(f"  {name:16} {sample.show()}  ({total / sample.median:,.0f} docs/s)")
    share: Samples = ratios("ours / raw", samples["raw executemany"], samples["ours"])
    print(f"  ours / raw executemany: {verdict(share, 0.7)}")


if __name__ == "__main__":
    main()
