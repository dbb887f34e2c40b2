"""DPObs parsing and conversions (pure functions)."""

from __future__ import annotations

import pytest

from framework import VendorDown
from framework.records import BadRecord
from konnectors.meteofrance_obs import observations


@pytest.mark.parametrize(("kelvin", "celsius"), [(283.15, 10.0), (273.15, 0.0), (270.26, -2.89), (300.1, 26.95)])
def test_kelvin_to_celsius_is_exact(kelvin, celsius):
    assert observations.celsius(kelvin) == celsius


def test_hour_document_keeps_si_adds_friendly_units_and_drops_nulls():
    doc = observations.hour_document(
        {
            "validity_time": "2024-07-01T12:00:00Z",
            "t": 295.35,
            "pres": 101325,
            "rr1": 0.2,
            "insolh": None,
            "ray_glo01": None,
            "u": 60,
        },
        "75114001",
    )
    assert doc["_id"] == "75114001/2024-07-01T14+0200" and (doc["hour"], doc["day"]) == (14, 1)
    assert (doc["t"], doc["temperature"], doc["pres"], doc["pressure"]) == (295.35, 22.2, 101325, 1013.25)
    assert doc["rain"] == 0.2 and doc["humidity"] == 60 and "sunshine" not in doc and "radiation" not in doc


def test_station_list_by_column_name_and_nearest():
    text = "\ufeffNom_usuel;Id_station;Longitude;Latitude\nA;11111111;2,3;48,8\nB;22222222;4.9;45.7\nbroken\n"
    stations = observations.parse_stations(text)
    assert [s.id for s in stations] == ["11111111", "22222222"]
    assert observations.nearest(stations, 45.76, 4.84).id == "22222222"
    with pytest.raises(VendorDown, match="unexpected columns"):
        observations.parse_stations("a;b\n1;2\n")


def test_observation_without_time_is_a_bad_record_and_bad_fields_are_left_out():
    with pytest.raises(BadRecord, match="validity_time"):
        observations.hour_document({"t": 280.0}, "75114001")
    found = [{"validity_time": "2024-07-01T12:00:00Z", "t": "NaN", "u": True, "rr1": 0.2}, {"t": 280.0}]
    documents, skipped = observations.hour_documents(found, "75114001")
    [doc] = documents
    assert "temperature" not in doc and "humidity" not in doc and doc["rain"] == 0.2
    assert [(s.field, s.reason) for s in skipped] == [
        ("t", "is not a finite number"),
        ("u", "is not a number"),
        ("validity_time", "is not a date-time"),
    ]
