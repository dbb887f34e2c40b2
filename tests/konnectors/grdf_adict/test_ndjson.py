"""ADICT bodies: NDJSON and pretty-printed objects alike; hostile bodies refused."""

from __future__ import annotations

import json

import pytest

from framework import VendorDown
from konnectors.grdf_adict import consumption, ndjson


def test_ndjson_and_pretty_printed_objects_read_the_same():
    records = [{"a": 1, "b": {"c": [1, 2]}}, {"a": 2}]
    compact = "\n".join(json.dumps(r) for r in records).encode()
    pretty = "\n".join(json.dumps(r, indent=2) for r in records).encode()
    assert list(ndjson.objects(compact)) == list(ndjson.objects(pretty)) == records


@pytest.mark.parametrize(
    ("body", "message"), [(b'{"a": 1}\n{"b": ', "malformed"), (b"[1, 2]", "not an object"), (b"\xff\xfe", "not UTF-8")]
)
def test_bad_bodies_are_vendor_down(body, message):
    with pytest.raises(VendorDown, match=message):
        list(ndjson.objects(body))


def test_oversized_body_is_refused_before_decoding(monkeypatch):
    monkeypatch.setattr(ndjson, "MAX_BYTES", 100)
    with pytest.raises(VendorDown, match="larger than"):
        list(ndjson.objects(b"{}" * 100))


def test_missing_days_are_reported_and_status_lines_skipped():
    records = [
        {
            "consommation": {
                "journee_gaziere": "2024-01-05",
                "energie": 61,
                "volume_brut": 5.45,
                "coeff_calcul": {"coeff_conversion": 11.2},
                "statut_conso": "Provisoire",
            }
        },
        {"consommation": None, "statut_restitution": {"code": "1000", "message": "Données non disponibles"}},
        {"code_statut_traitement": "0000"},
    ]
    parsed = consumption.day_documents(records, "GI1")
    assert [(d["_id"], d["load"], d["volume"], d["status"]) for d in parsed.documents] == [
        ("GI1/2024-01-05", 61.0, 5.45, "Provisoire")
    ]
    assert parsed.missing == ["1000 Données non disponibles"] and parsed.skipped == []
