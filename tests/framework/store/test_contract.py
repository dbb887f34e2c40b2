"""The storage contract: every rule here holds on the embedded store and on CouchDB.

Each test runs three times through the ``backend`` fixture (embedded, couchdb in memory, couchdb on disk).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from framework.errors import PermissionDenied, StoreError
from framework.store import DocumentStore, Writer, db_name, id_from_keys, never

DOCTYPE = "io.example.things"


@pytest.fixture
def store(backend) -> DocumentStore:
    return DocumentStore(backend, Writer(app="contract", version="1.2.3", source_account="acc-1"))


def test_db_name_follows_cozy_and_couchdb_rules():
    assert db_name("alice/", "com.grandlyon.enedis.day") == "alice/com-grandlyon-enedis-day"
    for bad_prefix, bad_doctype in [("", "Io.Bad"), ("", "_users"), ("x", "a b"), ("", "9abc"), ("../", "x")]:
        with pytest.raises(StoreError, match="CouchDB refuses"):
            db_name(bad_prefix, bad_doctype)


@pytest.mark.parametrize("doctype", ["io.x?rev=1", "io.x#y", "io.x%2F_users", "IO.X", "io.x\n"])
def test_injected_doctype_is_refused_before_any_request(store, doctype):
    with pytest.raises(StoreError, match="CouchDB refuses"):
        store.save(doctype, [{"_id": "a"}])


def test_save_then_get_round_trips_with_revision(store):
    [saved] = store.save(DOCTYPE, [{"_id": "a", "value": 1}])
    assert saved["_rev"].startswith("1-")
    doc = store.get(DOCTYPE, "a")
    assert doc["value"] == 1 and doc["_rev"] == saved["_rev"]


def test_reading_a_missing_database_or_document_is_empty_not_an_error(store):
    assert store.get("io.example.nothing", "x") is None
    assert store.get_many("io.example.nothing", ["x"]) == {}
    assert list(store.id_range("io.example.nothing")) == []
    assert store.find("io.example.nothing", {"a": 1}, limit=5) == []


def test_create_over_existing_document_is_a_per_document_conflict(backend):
    backend.bulk_write(DOCTYPE, [{"_id": "a", "v": 1}])
    results = backend.bulk_write(DOCTYPE, [{"_id": "a", "v": 2}, {"_id": "b", "v": 3}])
    assert results[0]["error"] == "conflict"
    assert "rev" in results[1] and "error" not in results[1]
    assert backend.get(DOCTYPE, "a")["v"] == 1


def test_stale_revision_is_a_conflict(backend):
    [first] = backend.bulk_write(DOCTYPE, [{"_id": "a", "v": 1}])
    backend.bulk_write(DOCTYPE, [{"_id": "a", "_rev": first["rev"], "v": 2}])
    [stale] = backend.bulk_write(DOCTYPE, [{"_id": "a", "_rev": first["rev"], "v": 3}])
    assert stale["error"] == "conflict"


def test_save_resolves_conflicts_by_merging_never_failing_the_batch(store, backend):
    backend.bulk_write(DOCTYPE, [{"_id": "a", "v": 1, "foreign": "kept"}])
    saved = store.save(DOCTYPE, [{"_id": "a", "v": 2}, {"_id": "b", "v": 3}])
    assert sorted(d["_id"] for d in saved) == ["a", "b"]
    doc = store.get(DOCTYPE, "a")
    assert doc["v"] == 2 and doc["foreign"] == "kept" and doc["_rev"].startswith("2-")


def test_custom_merge_rule_is_applied_on_conflict(store, backend):
    backend.bulk_write(DOCTYPE, [{"_id": "a", "count": 5}])
    store.save(DOCTYPE, [{"_id": "a", "count": 1}], merge=lambda old, new: {**old, "count": old["count"] + 1})
    assert store.get(DOCTYPE, "a")["count"] == 6


def test_deleted_document_reads_as_absent_and_can_be_recreated(store):
    [doc] = store.save(DOCTYPE, [{"_id": "a", "v": 1}])
    store.delete(DOCTYPE, [doc])
    assert store.get(DOCTYPE, "a") is None
    assert store.get_many(DOCTYPE, ["a"]) == {}
    assert list(store.id_range(DOCTYPE)) == []
    [again] = store.save(DOCTYPE, [{"_id": "a", "v": 2}])
    assert store.get(DOCTYPE, "a")["v"] == 2 and again["_rev"].startswith("3-")


def test_deleted_document_body_is_readable_by_its_last_revision(store, backend):
    if type(backend).__name__ == "StackBackend":
        pytest.skip("cozy-stack serves older revisions of io.cozy.accounts only (tests/framework/stack covers it)")
    [doc] = store.save(DOCTYPE, [{"_id": "acc", "auth": {"login": "x"}}])
    store.delete(DOCTYPE, [doc])
    old = store.get_revision(DOCTYPE, "acc", doc["_rev"])
    assert old["auth"] == {"login": "x"}


def test_get_many_returns_only_found_documents(store):
    store.save(DOCTYPE, [{"_id": i, "v": n} for n, i in enumerate("abc")])
    found = store.get_many(DOCTYPE, ["a", "c", "zz"])
    assert sorted(found) == ["a", "c"] and found["c"]["v"] == 2


def test_id_range_is_ordered_end_exclusive_and_paged(store, backend, monkeypatch):
    import framework.store.couchdb as couch
    import framework.store.sqlite as embedded

    monkeypatch.setattr(couch, "PAGE_SIZE", 7)
    monkeypatch.setattr(embedded, "PAGE_SIZE", 7)
    ids = [f"2024-01-{d:02d}" for d in range(1, 32)] + ["2024-02-01"]
    store.save(DOCTYPE, [{"_id": i} for i in reversed(ids)])
    january = [d["_id"] for d in store.with_prefix(DOCTYPE, "2024-01-")]
    assert january == ids[:31]
    assert [d["_id"] for d in store.id_range(DOCTYPE, "2024-01-10", "2024-01-12")] == ["2024-01-10", "2024-01-11"]


def test_bulk_writes_are_batched(store, backend):
    calls = []
    original = backend.bulk_write

    def counting(doctype, docs):
        calls.append(len(docs))
        return original(doctype, docs)

    backend.bulk_write = counting
    store.batch_size = 40
    store.save(DOCTYPE, [{"_id": f"d{n:03d}"} for n in range(100)])
    assert calls == [34, 33, 33]  # as few writes as batches of 40 allow, of even sizes (no small tail)
    assert len(store.get_many(DOCTYPE, [f"d{n:03d}" for n in range(100)])) == 100


def test_bulk_results_are_matched_by_id_never_by_position(store, backend):
    """pouchdb-server on disk answers ``_bulk_docs`` out of order (dozens per 1000): a positional
    match gave documents each other's revisions, and aggregates the wrong period's totals."""
    docs = [{"_id": uuid.uuid4().hex, "n": n} for n in range(1500)]
    results = backend.bulk_write(DOCTYPE, docs)
    assert [r["id"] for r in results] == [d["_id"] for d in docs]
    created = store.save(DOCTYPE, [{**d, "_rev": r["rev"], "n": -d["n"]} for d, r in zip(docs, results, strict=True)])
    stored = store.get_many(DOCTYPE, [d["_id"] for d in docs])
    assert len(created) == 1500
    for doc in created:
        assert stored[doc["_id"]]["_rev"] == doc["_rev"] and stored[doc["_id"]]["n"] == doc["n"]


def test_documents_without_id_get_one_and_their_own_revision(store):
    saved = store.save(DOCTYPE, [{"n": n} for n in range(300)])
    stored = store.get_many(DOCTYPE, [d["_id"] for d in saved])
    assert len(stored) == 300
    assert all(stored[d["_id"]]["_rev"] == d["_rev"] and stored[d["_id"]]["n"] == d["n"] for d in saved)


@pytest.mark.parametrize(
    "tamper, message",
    [
        (lambda results: results[:-1], "no result"),
        (lambda results: [*results, results[0]], "answered twice"),
        (lambda results: [{**results[0], "id": "stranger"}, *results[1:]], "not written"),
    ],
    ids=["missing", "duplicated", "foreign"],
)
def test_a_missing_or_duplicated_bulk_result_is_an_error(store, backend, tamper, message):
    original = backend.bulk_write
    backend.bulk_write = lambda doctype, docs: tamper(original(doctype, docs))
    with pytest.raises(StoreError, match=message):
        store.save(DOCTYPE, [{"_id": f"d{n}"} for n in range(5)])


def test_one_id_twice_in_one_bulk_write_is_an_error(store):
    with pytest.raises(StoreError, match="appears twice"):
        store.save(DOCTYPE, [{"_id": "same", "v": 1}, {"_id": "same", "v": 2}])


def test_find_needs_a_limit_and_honours_it(store):
    store.save(DOCTYPE, [{"_id": f"d{n}", "kind": "x" if n % 2 else "y", "n": n} for n in range(10)])
    found = store.find(DOCTYPE, {"kind": "x", "n": {"$gt": 2}}, limit=2, sort=["n"])
    assert [d["n"] for d in found] == [3, 5]
    everything = store.find(DOCTYPE, {"n": {"$gte": 0}}, limit=100)
    assert len(everything) == 10
    with pytest.raises(TypeError):
        store.find(DOCTYPE, {"n": 1})  # type: ignore[call-arg]


def test_find_sorts_on_a_field_the_selector_does_not_name(store):
    store.save(DOCTYPE, [{"_id": i, "status": "pending", "at": at} for i, at in (("a", "2"), ("b", "1"))])
    store.save(DOCTYPE, [{"_id": "c", "status": "done", "at": "0"}])
    assert [d["_id"] for d in store.find(DOCTYPE, {"status": "pending"}, limit=10, sort=["at"])] == ["b", "a"]


def test_find_supports_in_exists_and_or(store):
    store.save(DOCTYPE, [{"_id": "a", "n": 1}, {"_id": "b", "n": 2, "tag": "t"}, {"_id": "c", "n": 3}])
    store.ensure_index(DOCTYPE, ["n"])
    assert {d["_id"] for d in store.find(DOCTYPE, {"n": {"$in": [1, 3]}}, limit=10)} == {"a", "c"}
    assert {d["_id"] for d in store.find(DOCTYPE, {"tag": {"$exists": True}}, limit=10)} == {"b"}
    assert {d["_id"] for d in store.find(DOCTYPE, {"$or": [{"n": 1}, {"n": 2}]}, limit=10)} == {"a", "b"}


def test_hydrate_and_filter_keeps_new_and_changed_entries_only(store):
    keys = ("date", "meter")
    store.save(
        DOCTYPE,
        [
            {"_id": id_from_keys(e, keys), **e}
            for e in [
                {"date": "2024-01-01", "meter": "m", "load": 1.0},
                {"date": "2024-01-02", "meter": "m", "load": 2.0},
            ]
        ],
    )
    entries = [
        {"date": "2024-01-01", "meter": "m", "load": 1.0},
        {"date": "2024-01-02", "meter": "m", "load": 2.5},
        {"date": "2024-01-03", "meter": "m", "load": 3.0},
    ]
    result = store.hydrate_and_filter(DOCTYPE, entries, keys)
    assert [(e["date"], "_rev" in e) for e in result] == [("2024-01-02", True), ("2024-01-03", False)]
    assert store.hydrate_and_filter(DOCTYPE, entries, keys, should_update=never)[0]["date"] == "2024-01-03"


def test_hydrate_and_filter_reads_by_id_never_by_scan(store, backend):
    store.save(DOCTYPE, [{"_id": f"old{n}", "n": n} for n in range(50)])
    reads = []
    backend.id_range = lambda *a: reads.append("scan") or iter(())
    original = backend.get_many
    backend.get_many = lambda doctype, ids: reads.append(len(ids)) or original(doctype, ids)
    store.hydrate_and_filter(DOCTYPE, [{"k": n} for n in range(3)], keys=("k",))
    assert reads == [3]


def test_duplicates_within_one_input_collapse_to_the_last(store):
    entries = [{"k": 1, "v": "first"}, {"k": 2, "v": "x"}, {"k": 1, "v": "last"}]
    result = store.hydrate_and_filter(DOCTYPE, entries, keys=("k",))
    assert len(result) == 2 and {e["v"] for e in result} == {"last", "x"}


def test_update_or_create_is_idempotent_same_revs(store):
    entries = [{"k": n, "v": n * 2} for n in range(20)]
    store.update_or_create(DOCTYPE, entries, keys=("k",))
    first = {d["_id"]: d["_rev"] for d in store.id_range(DOCTYPE)}
    assert store.update_or_create(DOCTYPE, entries, keys=("k",)) == []
    assert {d["_id"]: d["_rev"] for d in store.id_range(DOCTYPE)} == first


def test_cozy_metadata_is_written_and_creation_kept_on_update(backend):
    times = iter([datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC)])
    store = DocumentStore(backend, Writer("enedis", "1.0.0", "acc-1", "PDL 123"), clock=lambda: next(times))
    store.update_or_create(DOCTYPE, [{"k": 1, "v": 1}], keys=("k",))
    store.update_or_create(DOCTYPE, [{"k": 1, "v": 2}], keys=("k",))
    [doc] = list(store.id_range(DOCTYPE))
    meta = doc["cozyMetadata"]
    assert meta["createdAt"] == "2024-01-01T00:00:00.000Z"
    assert meta["updatedAt"] == "2024-02-01T00:00:00.000Z"
    assert meta["createdByApp"] == "enedis" and meta["sourceAccount"] == "acc-1"
    assert meta["sourceAccountIdentifier"] == "PDL 123"
    assert meta["updatedByApps"] == [{"slug": "enedis", "date": "2024-02-01T00:00:00.000Z", "version": "1.0.0"}]


def test_scoped_store_refuses_doctypes_not_granted(store):
    scoped = store.scoped({DOCTYPE: frozenset({"GET", "PUT"}), "io.read.only": frozenset({"GET"})}, Writer("k"))
    scoped.save(DOCTYPE, [{"_id": "ok"}])
    with pytest.raises(PermissionDenied, match=r"io\.other\.thing"):
        scoped.save("io.other.thing", [{"_id": "x"}])
    with pytest.raises(PermissionDenied, match=r"write doctype 'io\.read\.only'"):
        scoped.save("io.read.only", [{"_id": "x"}])
    with pytest.raises(PermissionDenied, match="read"):
        scoped.get("io.other.thing", "x")
    assert store.get("io.other.thing", "x") is None


def test_embedded_store_fixture_is_a_working_store(embedded_store):
    embedded_store.save(DOCTYPE, [{"_id": "x", "v": 1}])
    assert embedded_store.get(DOCTYPE, "x")["v"] == 1
