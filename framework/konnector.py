"""The konnector contract: a class with hooks; the framework owns the rest.

The default :meth:`Konnector.start` streams ``fetch -> process -> store`` and
saves the bookmark only after the chunks it covers are stored, so memory is
bounded by one store batch, a crash loses at most the batch in flight, and the
next run resumes from the bookmark.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from .errors import ConfigurationError, PartialSync
from .store import Doc
from .store.timeseries import LEVELS, Series, write_points

if TYPE_CHECKING:
    from .context import Context

Documents = dict[str, list[Doc]]
"""What ``process`` returns: documents by doctype."""

_DONE = object()


@dataclass(frozen=True)
class Chunk:
    """One bounded piece of raw provider data, and the bookmark to save once it is stored."""

    data: Any
    bookmark: Any = None


class Konnector:
    """Base class of every konnector. Override ``fetch`` and ``process`` at least.

    ``series`` lists the time series the konnector writes (stored with
    aggregation); ``dedup_keys`` gives, for every other doctype, the fields that
    identify a document (Cozy's ``hydrateAndFilter`` keys).
    """

    series: ClassVar[tuple[Series, ...]] = ()
    dedup_keys: ClassVar[dict[str, tuple[str, ...]]] = {}

    offered: dict[str, int]
    """Documents handed to ``store`` in this job, by doctype, written or found already stored:
    told apart from what was written, it says why a run wrote nothing."""

    store_batch: ClassVar[int] = 5000
    """Documents gathered from consecutive chunks before one store: fewer, larger bulk writes."""

    def start(self, ctx: Context) -> None:
        """Run the job: the streaming pipeline, stopping cleanly before the deadline.

        Processed chunks are gathered until ``store_batch`` documents, then stored
        together and only then is the last chunk's bookmark saved: a crash loses
        at most the documents gathered since, which the next run fetches again.
        """
        pending: Documents = {}
        bookmark = None
        self.offered: dict[str, int] = {}
        chunks = self.fetch(ctx)
        iterator = iter(chunks)
        try:
            while True:
                try:
                    chunk = next(iterator, _DONE)
                    if chunk is _DONE:
                        break
                    if not isinstance(chunk, Chunk):
                        chunk = Chunk(chunk)
                    documents = self.process(ctx, chunk.data)
                except Exception:
                    # What was gathered before was fetched and processed whole: keep it, then fail.
                    self._store_and_bookmark(ctx, pending, bookmark)
                    raise
                for doctype, docs in documents.items():
                    pending.setdefault(doctype, []).extend(docs)
                if chunk.bookmark is not None:
                    bookmark = chunk.bookmark
                out_of_time = ctx.time_left() is not None and ctx.time_left() <= 0
                if out_of_time or sum(map(len, pending.values())) >= self.store_batch:
                    self._store_and_bookmark(ctx, pending, bookmark)
                    pending, bookmark = {}, None
                    ctx.check_deadline()
            self._store_and_bookmark(ctx, pending, bookmark)
        finally:
            close = getattr(chunks, "close", None)
            if close:
                close()

    def _store_and_bookmark(self, ctx: Context, documents: Documents, bookmark: Any) -> None:
        """Store, then move the bookmark: in one transaction where the store has them (the
        embedded store: points, aggregates and bookmark in one commit, or none of them)."""
        with ctx.store.transaction():
            self.store(ctx, documents)
            for doctype, docs in documents.items():
                self.offered[doctype] = self.offered.get(doctype, 0) + len(docs)
            if bookmark is not None:
                ctx.state["bookmark"] = bookmark
            ctx.save_state()

    def fetch(self, ctx: Context) -> Iterator[Chunk]:
        """Yield raw provider payloads in bounded chunks (a window, a file, a page)."""
        raise NotImplementedError(f"{type(self).__name__} must implement fetch()")

    def process(self, ctx: Context, raw: Any) -> Documents:
        """Turn one raw chunk into documents by doctype. Pure: no network, no store."""
        raise NotImplementedError(f"{type(self).__name__} must implement process()")

    def store(self, ctx: Context, documents: Documents) -> None:
        """Dedup and write documents; time series are aggregated for the periods touched.

        Written one slice at a time (``ctx.store.write_slice`` documents: the bulk batches a save
        sends at once; a time series slice with all its aggregates, so the store is consistent
        between slices), and
        the job's deadline is checked before each slice: a slice the deadline would cut is not
        started, the run stops with ``PartialSync``, what was stored stays, and the bookmark,
        saved only after a whole store, does not move (see :class:`_StoreClock`). On the embedded
        store a store is one transaction, which stopping inside would undo: no slices there
        (``write_slice`` is ``None``), the deadline is checked between stores.
        """
        clock = _StoreClock.of(self, ctx)
        for doctype, docs in documents.items():
            if not docs:
                continue
            series, level = self._series_level(doctype)
            keys = self.dedup_keys.get(doctype)
            if series is None and keys is None:
                raise ConfigurationError(
                    f"{type(self).__name__} returned {doctype} documents but declares "
                    "no dedup_keys and no series for it"
                )
            size = getattr(ctx.store, "write_slice", None) or len(docs)
            for start in range(0, len(docs), size):
                piece = docs[start : start + size]
                with clock.slice(doctype, start, len(docs)):
                    if series is not None:
                        ctx.count(write_points(ctx.store, series, level, piece))
                    elif written := ctx.store.update_or_create(doctype, piece, keys):
                        ctx.count({doctype: len(written)})

    def _series_level(self, doctype: str) -> tuple[Series | None, str]:
        for series in self.series:
            prefix, _, level = doctype.rpartition(".")
            if prefix == series.prefix and level in LEVELS:
                return series, level
        return None, ""

    def accept_notification(self, ctx: Context, body: bytes) -> str:
        """Check and durably store a provider's notification (``konnector serve``); return its id.

        Called before the receiver answers: when it returns, the notification must be
        in the store, so that a crash right after the answer loses nothing.
        """
        raise ConfigurationError(f"konnector '{ctx.slug}' does not take notifications")

    def handle_notifications(self, ctx: Context) -> None:
        """Act on stored notifications not yet handled (the receiver's worker calls it)."""

    def check(self, ctx: Context) -> str:
        """Test the credentials and the provider's reachability without collecting (``konnector check``).

        Return a short description of what was verified; raise the same typed errors
        a run would (``LoginFailed``, ``VendorDown``…). The default asks ``fetch`` for
        its first chunk, which for most konnectors means authenticating and making one
        data request, and then stops: nothing is processed or stored, the bookmark
        does not move. Override it with the provider's cheapest authenticated call.
        """
        if type(self).fetch is Konnector.fetch:
            raise ConfigurationError(
                f"konnector '{ctx.slug}' runs its own job (it overrides start), so it needs its own check(ctx): "
                "the framework cannot tell its sign-in from its collection"
            )
        chunks = self.fetch(ctx)
        try:
            first = next(iter(chunks), None)
        finally:
            close = getattr(chunks, "close", None)
            if close:
                close()
        return "signed in and received data" if first is not None else "signed in; no data offered yet"

    def on_delete_account(self, ctx: Context) -> None:
        """Revoke consent at the provider when the account is deleted. Default: nothing to revoke."""
        ctx.log.info("nothing to revoke at the provider for this konnector")


class _StoreClock:
    """The deadline on the store path: no store slice is started that the deadline would cut.

    A slice is expected to take as long as the longest one measured in this job: a slow server
    makes every slice slow, and a smaller slice is not much faster (its bulk writes are in
    flight together, and a request's latency does not shrink with it). The first slice of a job
    is always written, within the margin the runner keeps before the platform's limit (the
    pipeline stores what it gathered when time runs out). Stopping early costs a resumed run;
    stopping late costs the job.
    """

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.longest: float | None = None

    @classmethod
    def of(cls, konnector: Konnector, ctx: Context) -> _StoreClock:
        """One per job (kept on the konnector, which a job makes once), so measures carry over stores."""
        clock = konnector.__dict__.get("_store_clock")
        if clock is None or clock.ctx is not ctx:
            clock = konnector.__dict__["_store_clock"] = cls(ctx)
        return clock

    @contextlib.contextmanager
    def slice(self, doctype: str, done: int, total: int) -> Iterator[None]:
        left = self.ctx.time_left()
        if left is not None and self.longest is not None and left <= self.longest:
            raise PartialSync(
                f"stopped before the platform's time limit while storing {doctype} ({done} of {total} "
                "documents of this batch stored, each with its aggregates); the bookmark stays before "
                "the rest and the next run resumes from it"
            )
        started = time.monotonic()
        yield
        self.longest = max(self.longest or 0.0, time.monotonic() - started)
