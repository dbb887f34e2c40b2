"""``rte-ecowatt`` on answers a real RTE sends: one bad day never rejects the others."""

from __future__ import annotations

from datetime import date

from tests.konnectors.rte_ecowatt.test_konnector import DAYS, PERIODS, store


def test_a_day_with_dvalue_out_of_range_is_skipped_and_the_others_stored(cli, tmp_path, ecowatt):
    ecowatt.overrides[date(2024, 1, 16)] = {"dvalue": 0}
    result = cli("run", "rte-ecowatt", "--config", "dev.json", "--log-format", "json")
    assert result.status == 0, result.output
    assert [d["_id"] for d in store(tmp_path).id_range(DAYS)] == ["2024-01-15", "2024-01-17", "2024-01-18"]
    assert not [p for p in store(tmp_path).id_range(PERIODS) if p["date"] == "2024-01-16"]
    warnings = [line["message"] for line in result.lines if line["type"] == "warning"]
    assert warnings == ["RTE Ecowatt: record skipped, 2024-01-16: dvalue=0 is not one of [1, 2, 3]"]


def test_an_answer_with_no_usable_day_ends_partial(cli, tmp_path, ecowatt):
    for n in range(15, 19):
        ecowatt.overrides[date(2024, 1, n)] = {"dvalue": None}
    result = cli("run", "rte-ecowatt", "--config", "dev.json", "--log-format", "json")
    assert result.status == 1 and result.error_code == "UNKNOWN_ERROR.PARTIAL_SYNC"
    assert "dvalue=None is missing or null" in result.output
    assert list(store(tmp_path).id_range(DAYS)) == []
