"""The store konnectors write through: dedup, bulk writes, conflicts, metadata, permissions.

Built once on the :class:`~framework.store.backend.Backend` primitives, so both
backends behave the same.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..errors import PermissionDenied, StoreError
from .backend import HIGH_KEY, Backend, Doc, in_request_order
from .ids import check_id, check_ids

BATCH_SIZE = 1000
CONFLICT_ROUNDS = 5
READ = "GET"
ALL_VERBS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})

ShouldUpdate = Callable[[Doc, Doc], bool]
Merge = Callable[[Doc, Doc], Doc]

_BOOKKEEPING = ("_id", "_rev", "cozyMetadata")


def fields_changed(entry: Doc, existing: Doc) -> bool:
    """True when a field of ``entry`` differs from the stored twin (bookkeeping aside).

    Our default ``should_update``. Cozy's default never updates, which silently
    keeps values a provider has since corrected; pass :func:`never` for that.
    """
    return any(existing.get(k) != v for k, v in entry.items() if k not in _BOOKKEEPING)


def never(entry: Doc, existing: Doc) -> bool:
    return False


def ours_win(stored: Doc, wanted: Doc) -> Doc:
    """Default conflict merge: our fields over the stored document, fields we don't set kept."""
    return {**stored, **wanted, "_rev": stored["_rev"]}


def hydrated_changes(wanted: dict[str, Doc], twins: dict[str, Doc], should_update: ShouldUpdate) -> list[Doc]:
    """The wanted docs that are new or that ``should_update`` their twin, with the twin's ``_rev``.

    The twin's ``cozyMetadata`` is carried over so that creation fields survive the update.
    """
    to_write = []
    for doc_id, doc in wanted.items():
        twin = twins.get(doc_id)
        if twin is None:
            to_write.append(doc)
        elif should_update(doc, twin):
            hydrated = {**doc, "_rev": twin["_rev"]}
            if "cozyMetadata" in twin:
                hydrated["cozyMetadata"] = twin["cozyMetadata"]
            to_write.append(hydrated)
    return to_write


def id_from_keys(entry: Doc, keys: Sequence[str]) -> str:
    """A deterministic id from the dedup keys' values, so twins are found by id alone."""
    try:
        values = [entry[k] for k in keys]
    except KeyError as exc:
        raise StoreError(f"entry has no dedup key {exc.args[0]!r}: {entry!r:.200}") from None
    canonical = json.dumps(values, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Writer:
    """Who writes: stamped into ``cozyMetadata`` as Cozy does."""

    app: str = "konnector"
    version: str = "0"
    source_account: str | None = None
    source_account_identifier: str | None = None


@dataclass
class DocumentStore:
    """Konnector-facing store over a backend.

    ``permissions`` maps doctype to allowed verbs; ``None`` means unrestricted
    (the runner's own handle). :meth:`scoped` gives a konnector its handle.
    """

    backend: Backend
    writer: Writer = field(default_factory=Writer)
    permissions: dict[str, frozenset[str]] | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    batch_size: int | None = None
    """Documents per bulk write; ``None``: the backend's sweet spot (its ``write_batch``)."""

    def scoped(self, permissions: dict[str, frozenset[str]], writer: Writer) -> DocumentStore:
        return DocumentStore(self.backend, writer, permissions, self.clock, self.batch_size)

    @property
    def write_batch(self) -> int:
        return self.batch_size or getattr(self.backend, "write_batch", BATCH_SIZE)

    def _check(self, doctype: str, verb: str) -> None:
        if self.permissions is None:
            return
        verbs = self.permissions.get(doctype)
        if verbs is None or (verb not in verbs and "ALL" not in verbs):
            action = "read" if verb == READ else "write"
            raise PermissionDenied(
                f"konnector '{self.writer.app}' may not {action} doctype {doctype!r}: its manifest does not grant it"
            )

    # reads

    def get(self, doctype: str, doc_id: str) -> Doc | None:
        self._check(doctype, READ)
        return self.backend.get(doctype, check_id(doctype, doc_id))

    def get_many(self, doctype: str, ids: Sequence[str]) -> dict[str, Doc]:
        self._check(doctype, READ)
        ids = list(ids)
        check_ids(doctype, ids)
        return self.backend.get_many(doctype, ids)

    def get_revision(self, doctype: str, doc_id: str, rev: str) -> Doc | None:
        self._check(doctype, READ)
        return self.backend.get_revision(doctype, check_id(doctype, doc_id), rev)

    def id_range(self, doctype: str, start: str = "", end: str = HIGH_KEY) -> Iterator[Doc]:
        self._check(doctype, READ)
        return self.backend.id_range(doctype, start, end)

    def with_prefix(self, doctype: str, prefix: str) -> Iterator[Doc]:
        """Documents whose id starts with ``prefix``, in id order."""
        return self.id_range(doctype, prefix, prefix + HIGH_KEY)

    def find(self, doctype: str, selector: Doc, *, limit: int, sort: Sequence[str] = ()) -> list[Doc]:
        self._check(doctype, READ)
        return self.backend.find(doctype, selector, limit, sort)

    def ensure_index(self, doctype: str, fields: Sequence[str]) -> None:
        self._check(doctype, "PUT")
        self.backend.ensure_index(doctype, fields)

    # dedup

    def hydrate_and_filter(
        self,
        doctype: str,
        entries: Iterable[Doc],
        keys: Sequence[str],
        should_update: ShouldUpdate = fields_changed,
    ) -> list[Doc]:
        """The entries that need writing, hydrated with their stored twin's ``_id``/``_rev``.

        Cozy's meaning, at O(entries) cost: each entry's id comes from its keys
        (or its own ``_id``), twins are read by id in bulk, never by a scan.
        Entries sharing an id collapse to the last one (the freshest).
        """
        by_id: dict[str, Doc] = {}
        for entry in entries:
            doc_id = entry.get("_id") or id_from_keys(entry, keys)
            by_id[doc_id] = {**entry, "_id": doc_id}
        return hydrated_changes(by_id, self.get_many(doctype, list(by_id)), should_update)

    # writes

    def save(self, doctype: str, docs: Iterable[Doc], merge: Merge = ours_win) -> list[Doc]:
        """Write docs in bulk batches; a conflicted doc is re-read, merged and retried alone.

        Where the backend gains from it (``writes_in_flight`` > 1: a server), batches
        overlap: one is serialised and its answer parsed while the server writes another.
        Batches hold distinct documents, so their order does not matter.

        Returns the docs as stored (with ``_id`` and ``_rev``).
        """
        self._check(doctype, "PUT")
        stamp = Stamp(self.writer, self.clock())
        batches = _batches(list(map(stamp, docs)), self.write_batch)
        in_flight = min(len(batches), getattr(self.backend, "writes_in_flight", 1))
        if in_flight <= 1:
            return [doc for batch in batches for doc in self._write_batch(doctype, batch, merge, stamp)]
        with ThreadPoolExecutor(in_flight, thread_name_prefix="store-write") as pool:
            futures = [pool.submit(self._write_batch, doctype, batch, merge, stamp) for batch in batches]
            return [doc for future in futures for doc in future.result()]

    add_data = save

    def transaction(self) -> AbstractContextManager[None]:
        """Writes made inside commit together where the backend can (the embedded store's
        :meth:`~framework.store.sqlite.SqliteBackend.transaction`); elsewhere each bulk write
        stands alone, as CouchDB has no transaction across documents."""
        begin = getattr(self.backend, "transaction", None)
        return begin() if begin is not None else nullcontext()

    def update_or_create(
        self, doctype: str, entries: Iterable[Doc], keys: Sequence[str], merge: Merge = ours_win
    ) -> list[Doc]:
        """Create entries, or update their twins (matched by keys) where a field changed."""
        self._check(doctype, "PUT")
        return self.save(doctype, self.hydrate_and_filter(doctype, entries, keys), merge)

    def delete(self, doctype: str, docs: Iterable[Doc]) -> None:
        self._check(doctype, "DELETE")
        tombstones = [{"_id": check_id(doctype, d["_id"]), "_rev": d["_rev"], "_deleted": True} for d in docs]
        for result in in_request_order(doctype, tombstones, self.backend.bulk_write(doctype, tombstones)):
            if "error" in result:
                raise StoreError(f"cannot delete {doctype}/{result['id']}: {result['error']}")

    def _write_batch(self, doctype: str, batch: list[Doc], merge: Merge, stamp: Stamp) -> list[Doc]:
        """Write one batch; ``batch`` holds fresh copies (made by ``stamp``), completed in place."""
        pending = [doc if "_id" in doc else {**doc, "_id": uuid.uuid4().hex} for doc in batch]
        ids = [doc["_id"] for doc in pending]
        check_ids(doctype, ids)
        if len(set(ids)) != len(ids):
            in_request_order(doctype, pending, [])  # names the id that appears twice
        saved: list[Doc] = []
        for _ in range(CONFLICT_ROUNDS):
            results = _in_order(doctype, pending, self.backend.bulk_write(doctype, pending))
            conflicted = []
            for doc, result in zip(pending, results, strict=True):
                if "error" not in result:
                    doc["_id"] = result["id"]
                    doc["_rev"] = result["rev"]
                    saved.append(doc)
                elif result["error"] == "conflict":
                    conflicted.append(doc)
                else:
                    raise StoreError(
                        f"cannot write {doctype}/{result.get('id')}: {result['error']} {result.get('reason', '')}"
                    )
            if not conflicted:
                return saved
            pending = self._merged(doctype, conflicted, merge, stamp)
        ids = ", ".join(d["_id"] for d in pending[:5])
        raise StoreError(f"{doctype}: documents still conflicted after {CONFLICT_ROUNDS} rounds: {ids}")

    def _merged(self, doctype: str, conflicted: list[Doc], merge: Merge, stamp: Stamp) -> list[Doc]:
        stored = self.backend.get_many(doctype, [d["_id"] for d in conflicted])
        merged = []
        for doc in conflicted:
            current = stored.get(doc["_id"])
            if current is None:
                merged.append({k: v for k, v in doc.items() if k != "_rev"})
            else:
                combined = merge(current, doc)
                combined["cozyMetadata"] = current.get("cozyMetadata")
                merged.append(stamp(combined))
        return merged


def _in_order(doctype: str, docs: list[Doc], results: list[Doc]) -> list[Doc]:
    """``results`` matched to ``docs``: backends answer in request order (the contract), so a
    positional check of the ids suffices; anything else goes through the full matching, which
    reorders or names what is missing, duplicated or foreign."""
    if len(results) == len(docs) and all(map(_same_id, docs, results)):
        return results
    return in_request_order(doctype, docs, results)


def _same_id(doc: Doc, result: Doc) -> bool:
    return doc["_id"] == result.get("id")


def _batches(docs: list[Doc], size: int) -> list[list[Doc]]:
    """``docs`` in as few batches of at most ``size`` as possible, of even sizes: 5,040 documents
    in batches of 5,000 go as two of 2,520, not as 5,000 and a 40 that costs a request of its own."""
    count = -(-len(docs) // size)
    if count <= 1:
        return [docs] if docs else []
    step, extra = divmod(len(docs), count)
    bounds = [n * step + min(n, extra) for n in range(count + 1)]
    return [docs[start:end] for start, end in itertools.pairwise(bounds)]


class Stamp:
    """``cozyMetadata`` as Cozy writes it (creation kept, update appended), for one save.

    The clock is read once per save, not per document, and the metadata of a new
    document is built once and shared by every new document of the save (it is
    serialised, never mutated): the per-document cost is one dict copy.
    """

    def __init__(self, writer: Writer, when: datetime) -> None:
        self.writer = writer
        self.now = when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        self.fresh = self._metadata({})

    def __call__(self, doc: Doc) -> Doc:
        old = doc.get("cozyMetadata")
        return {**doc, "cozyMetadata": self._metadata(old) if old else self.fresh}

    def _metadata(self, old: Doc) -> Doc:
        writer, now = self.writer, self.now
        updated_by = [a for a in old.get("updatedByApps", []) if a.get("slug") != writer.app]
        updated_by.append({"slug": writer.app, "date": now, "version": writer.version})
        metadata = {
            "doctypeVersion": old.get("doctypeVersion", 1),
            "metadataVersion": 1,
            "createdAt": old.get("createdAt", now),
            "createdByApp": old.get("createdByApp", writer.app),
            "createdByAppVersion": old.get("createdByAppVersion", writer.version),
            "updatedAt": now,
            "updatedByApps": updated_by,
        }
        if writer.source_account:
            metadata["sourceAccount"] = writer.source_account
        if writer.source_account_identifier:
            metadata["sourceAccountIdentifier"] = writer.source_account_identifier
        return metadata
