"""NaN and Infinity never reach the store: both backends refuse them at serialisation, naming the field."""

from __future__ import annotations

import pytest

from framework.errors import StoreError
from framework.store import DocumentStore

DOCTYPE = "io.example.things"


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers_are_refused_with_the_document_named(backend, bad):
    store = DocumentStore(backend)
    store.save(DOCTYPE, [{"_id": "2024-01-01", "load": 1.5}])
    with pytest.raises(StoreError, match=r"document '2024-01-02': .*non-finite.*: load=-?(nan|inf)$"):
        store.save(DOCTYPE, [{"_id": "2024-01-02", "load": bad}])
    assert [d["_id"] for d in store.id_range(DOCTYPE)] == ["2024-01-01"]
    assert store.get(DOCTYPE, "2024-01-01")["load"] == 1.5


def test_nested_non_finite_values_are_found(backend):
    store = DocumentStore(backend)
    with pytest.raises(StoreError, match=r"document 'a': .*: values\.0\.v=nan$"):
        store.save(DOCTYPE, [{"_id": "a", "values": [{"v": float("nan")}]}])
