"""The default pipeline: batching, bookmark after store, crash loses only the batch in flight."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from framework import Chunk, Konnector, energy_series, point
from framework.manifest import Manifest
from framework.store import SqliteBackend
from framework.testing.inprocess import make_context

MANIFEST = Manifest(
    {
        "name": "Counter",
        "slug": "counter",
        "type": "konnector",
        "version": "1.0.0",
        "entrypoint": "tests.framework.test_konnector:Counter",
        "fields": {},
        "permissions": {level: {"type": f"io.example.count.{level}"} for level in ("day", "month", "year")},
    },
    "test",
)


class Counter(Konnector):
    series = (energy_series("io.example.count"),)
    store_batch = 3

    def __init__(self, fail_at: int | None = None) -> None:
        self.fail_at = fail_at
        self.stores: list[list[str]] = []
        self.bookmarks_before: list[int | None] = []

    def fetch(self, ctx):
        for n in range(10):
            yield Chunk(date(2024, 1, 1) + timedelta(n), bookmark=n + 1)

    def process(self, ctx, day):
        if day.day == self.fail_at:
            raise RuntimeError("provider sent garbage")
        return {"io.example.count.day": [point("day", day, load=1.0)]}

    def store(self, ctx, documents):
        self.stores.append([d["_id"] for d in documents.get("io.example.count.day", [])])
        self.bookmarks_before.append(ctx.state.get("bookmark"))
        super().store(ctx, documents)


def test_chunks_are_stored_in_batches_and_bookmarked_after(backend):
    ctx = make_context(backend, MANIFEST, {})
    konnector = Counter()
    konnector.start(ctx)
    assert [len(batch) for batch in konnector.stores] == [3, 3, 3, 1]
    assert konnector.bookmarks_before == [None, 3, 6, 9]
    assert ctx.state["bookmark"] == 10
    assert ctx.written == {"io.example.count.day": 10, "io.example.count.month": 4, "io.example.count.year": 4}


def test_failure_keeps_every_whole_chunk_before_it_and_its_bookmark(backend):
    ctx = make_context(backend, MANIFEST, {})
    with pytest.raises(RuntimeError):
        Counter(fail_at=8).start(ctx)
    stored = [d["_id"] for d in ctx.store.id_range("io.example.count.day")]
    assert stored == [f"2024-01-0{n}" for n in range(1, 8)]
    assert ctx.accounts.load("test-account").state["bookmark"] == 7
    assert ctx.store.get("io.example.count.month", "2024-01")["load"] == 7.0


def test_embedded_store_commits_each_store_with_its_aggregates_and_bookmark(tmp_path):
    """On the embedded store a store is one transaction: points, aggregates and the bookmark
    commit together (one BEGIN per store, not one per level and one for the bookmark)."""
    backend = SqliteBackend(tmp_path / "store.sqlite3")
    ctx = make_context(backend, MANIFEST, {})
    statements: list[str] = []
    backend._conn.set_trace_callback(statements.append)
    Counter().start(ctx)
    assert sum(s.startswith("BEGIN") for s in statements) == 4  # the 4 stores of test_chunks_are_stored…
    assert sum(s.startswith("COMMIT") for s in statements) == 4
    assert ctx.written == {"io.example.count.day": 10, "io.example.count.month": 4, "io.example.count.year": 4}


class FailingBookmark(Counter):
    def store(self, ctx, documents):
        super().store(ctx, documents)
        if len(self.stores) == 2:
            raise OSError("disk full after the points were written")


def test_embedded_store_that_fails_after_writing_rolls_back_the_whole_store(tmp_path):
    """A store that fails midway leaves nothing of itself on the embedded store: not the points
    without their aggregates, not a bookmark past them; the stores before it are kept whole."""
    backend = SqliteBackend(tmp_path / "store.sqlite3")
    ctx = make_context(backend, MANIFEST, {})
    with pytest.raises(OSError, match="disk full"):
        FailingBookmark().start(ctx)
    stored = [d["_id"] for d in ctx.store.id_range("io.example.count.day")]
    assert stored == ["2024-01-01", "2024-01-02", "2024-01-03"]
    assert ctx.store.get("io.example.count.month", "2024-01")["load"] == 3.0
    assert ctx.accounts.load("test-account").state["bookmark"] == 3
