"""The write path's cost shape: what makes ingest fast, held by tests on real backends.

Round trips are counted on the real HTTP session (CouchDB) and statements with SQLite's own
trace callback (embedded): a regression that adds a request per level or a query per
document fails here, long before a benchmark would notice.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from framework.errors import StoreError
from framework.store import CouchBackend, DocumentStore, SqliteBackend, Writer
from framework.store.serialise import DocEncoder
from framework.store.timeseries import Rollup, Series, period_id, point, write_points

PARIS = ZoneInfo("Europe/Paris")
SUM = {"load": ("sum", "load")}
CURVE = Series(
    "io.example.curve", (Rollup("minute", "day", SUM), Rollup("day", "month", SUM), Rollup("month", "year", SUM))
)
DOCTYPE = "io.example.things"
LEVELS = ("minute", "day", "month", "year")


def half_hours(days: int) -> list[dict]:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    return [point("minute", (start + timedelta(minutes=30 * n)).astimezone(PARIS), load=0.5) for n in range(days * 48)]


class Clock:
    def __init__(self) -> None:
        self.reads = 0

    def __call__(self) -> datetime:
        self.reads += 1
        return datetime(2024, 5, 1, 12, 0, self.reads, tzinfo=UTC)


def test_clock_read_once_per_save_and_metadata_reused(backend):
    clock = Clock()
    store = DocumentStore(backend, Writer(app="w", version="2"), clock=clock, batch_size=10)
    saved = store.save(DOCTYPE, [{"_id": f"d{n:02d}", "n": n} for n in range(25)])
    assert clock.reads == 1
    assert len({json.dumps(d["cozyMetadata"], sort_keys=True) for d in saved}) == 1
    stored = store.get_many(DOCTYPE, [d["_id"] for d in saved])
    assert {d["cozyMetadata"]["updatedAt"] for d in stored.values()} == {"2024-05-01T12:00:01.000Z"}
    [updated] = store.save(DOCTYPE, [{**stored["d03"], "n": 33}])
    assert updated["cozyMetadata"]["createdAt"] == "2024-05-01T12:00:01.000Z"
    assert updated["cozyMetadata"]["updatedAt"] == "2024-05-01T12:00:02.000Z"


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_refused_before_anything_is_written(backend, bad):
    store = DocumentStore(backend)
    with pytest.raises(StoreError, match="non-finite"):
        store.save(DOCTYPE, [{"_id": "fine", "v": 1}, {"_id": "bad", "v": bad}])
    assert store.get(DOCTYPE, "fine") is None


def test_encoder_splices_one_metadata_copy_into_valid_json():
    metadata = {"createdAt": "2024-05-01T12:00:00.000Z", "updatedByApps": [{"slug": "w"}]}
    docs = [{"_id": "a", "v": 1, "cozyMetadata": metadata}, {"_id": "b", "cozyMetadata": metadata}, {"_id": "c"}]
    body = json.loads(DocEncoder().bulk_docs(docs))
    assert body == {"docs": docs}
    assert json.loads(DocEncoder().body({"_id": "x", "_rev": "1-a", "cozyMetadata": metadata}, ("_id", "_rev"))) == {
        "cozyMetadata": metadata
    }


def test_couchdb_backfill_round_trips_are_bounded(couchdb_url, db_prefix):
    """A week of half-hours with three aggregate levels: the reads of every level go out
    together, then one write per level (points in two batches); no request per document."""
    backend = CouchBackend(couchdb_url, db_prefix)
    backend.write_batch = 200
    sent: list[str] = []
    original = backend.client.session.request

    def recording(method, url, **kwargs):
        sent.append(f"{method} {url.split('?')[0].rsplit('/', 2)[-1]}")
        return original(method, url, **kwargs)

    backend.client.session.request = recording
    counts = write_points(DocumentStore(backend), CURVE, "minute", half_hours(7))
    assert counts["io.example.curve.minute"] == 336
    bulk = [s for s in sent if s.endswith("_bulk_docs")]
    reads = [s for s in sent if s.endswith("_all_docs")]
    assert len(bulk) == 2 + 1 + 1 + 1  # 336 points in batches of 200, then day, month, year
    assert len(reads) == 4  # one per level, all sent before the first write
    assert sent.index(next(s for s in sent if s.endswith("_bulk_docs"))) > max(sent.index(r) for r in set(reads))


def test_couchdb_reads_of_every_level_overlap(couchdb_url, db_prefix):
    """Reads of the four levels are in flight together: their threads are seen at once."""
    import threading

    backend = CouchBackend(couchdb_url, db_prefix)
    in_flight, peak = 0, 0
    lock = threading.Lock()
    original = backend.id_range

    def slow_range(doctype, start, end):
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        try:
            threading.Event().wait(0.2)
            yield from original(doctype, start, end)
        finally:
            with lock:
                in_flight -= 1

    backend.id_range = slow_range
    write_points(DocumentStore(backend), CURVE, "minute", half_hours(1))
    assert peak == 3  # minute, day and month sources (the year's twins are read by id)


def test_embedded_bulk_write_is_one_lookup_and_one_executemany(tmp_path):
    backend = SqliteBackend(tmp_path / "store.sqlite3")
    store = DocumentStore(backend)
    store.save(DOCTYPE, [{"_id": f"d{n:04d}", "n": n} for n in range(0, 2000, 2)])
    statements: list[str] = []
    backend._conn.set_trace_callback(statements.append)
    existing = store.get_many(DOCTYPE, [f"d{n:04d}" for n in range(0, 2000, 2)])
    statements.clear()
    docs = [{**existing[f"d{n:04d}"], "n": -n} if n % 2 == 0 else {"_id": f"d{n:04d}", "n": n} for n in range(2000)]
    saved = store.save(DOCTYPE, docs)
    assert len(saved) == 2000
    lookups = [s for s in statements if s.startswith("SELECT")]
    inserts = [s for s in statements if s.startswith("INSERT")]
    assert len(lookups) == math.ceil(2000 / 900)  # the batch's revisions, by chunks of keys
    assert len(inserts) == 2000  # executemany traces each row, but from one statement in one transaction
    assert sum(s.startswith("BEGIN") for s in statements) == 1
    assert store.get(DOCTYPE, "d0002")["n"] == -2 and store.get(DOCTYPE, "d0003")["n"] == 3


def test_embedded_batch_sees_its_own_earlier_writes(tmp_path):
    """Within one bulk write the second write of an id is checked against the first, as it
    would be one request after the other: without the new revision it is a conflict."""
    backend = SqliteBackend(tmp_path / "store.sqlite3")
    results = backend.bulk_write(DOCTYPE, [{"_id": "a", "v": 1}, {"_id": "a", "v": 2}])
    assert "rev" in results[0] and results[1]["error"] == "conflict"
    first = results[0]["rev"]
    results = backend.bulk_write(DOCTYPE, [{"_id": "a", "_rev": first, "v": 3}, {"_id": "b", "v": 1}])
    deleted = backend.bulk_write(DOCTYPE, [{"_id": "b", "_rev": results[1]["rev"], "_deleted": True}])
    assert backend.get(DOCTYPE, "a")["v"] == 3 and backend.get(DOCTYPE, "b") is None
    assert backend.get_revision(DOCTYPE, "b", results[1]["rev"])["v"] == 1
    assert deleted[0]["rev"].startswith("2-")


def test_period_ids_match_strftime():
    for hours in range(0, 24 * 400, 7):
        when = (datetime(2023, 10, 1, tzinfo=UTC) + timedelta(hours=hours, minutes=30)).astimezone(PARIS)
        assert period_id("minute", when) == when.strftime("%Y-%m-%dT%H:%M%z")
        assert period_id("hour", when, "m") == "m/" + when.strftime("%Y-%m-%dT%H%z")
        assert period_id("day", when) == when.strftime("%Y-%m-%d")
        assert period_id("month", when.date()) == when.strftime("%Y-%m")
        assert period_id("year", when.date()) == when.strftime("%Y")


def test_couchdb_aggregate_levels_are_written_together_after_the_points(couchdb_url, db_prefix):
    import threading

    backend = CouchBackend(couchdb_url, db_prefix)
    in_flight, peak, order = 0, 0, []
    lock = threading.Lock()
    original = backend.bulk_write

    def slow_write(doctype, docs):
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
            order.append(doctype.rsplit(".", 1)[-1])
        try:
            threading.Event().wait(0.2)
            return original(doctype, docs)
        finally:
            with lock:
                in_flight -= 1

    backend.bulk_write = slow_write
    counts = write_points(DocumentStore(backend), CURVE, "minute", half_hours(1))
    assert sorted(counts) == [f"io.example.curve.{level}" for level in sorted(LEVELS)]
    assert counts["io.example.curve.minute"] == 48 and counts["io.example.curve.year"] == 1
    assert order[0] == "minute" and sorted(order[1:]) == ["day", "month", "year"]
    assert peak == 3  # day, month and year in flight together (the points alone before them)


@pytest.mark.parametrize("bad", ["_design/evil", "line\nbreak", "c1\x85next", "", "x" * 1025, 7])
def test_one_refused_id_in_a_large_batch_is_named_and_nothing_is_written(bad):
    """Ids are checked a batch at a time (not one call per id): the hostile one among many is
    still found, named, and refused before the batch is written."""
    store = DocumentStore(SqliteBackend(":memory:"))
    docs = [{"_id": f"d{n:04d}", "n": n} for n in range(1500)]
    docs.insert(700, {"_id": bad, "n": -1})
    with pytest.raises(StoreError, match="is refused") as refused:
        store.save(DOCTYPE, docs)
    assert repr(str(bad)[:80]) in str(refused.value)
    assert store.get_many(DOCTYPE, ["d0000", "d1499"]) == {}
