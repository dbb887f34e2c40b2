"""The default pipeline: batching, bookmark after store, crash loses only the batch in flight."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from framework import Chunk, Konnector, energy_series, point
from framework.manifest import Manifest
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
