"""The synthetic sample the README runs: reproducible, DST-correct, importable as documented."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from framework.store import DocumentStore, SqliteBackend
from konnectors.greenbutton import espi
from konnectors.greenbutton.synthetic import household_feed

REPO = Path(__file__).resolve().parents[3]
SAMPLE = REPO / "konnectors" / "greenbutton" / "samples" / "household-2025-02-01-59d.xml"


def test_committed_sample_is_what_the_generator_writes():
    assert SAMPLE.read_text() == household_feed(date(2025, 2, 1), 59)


def test_sample_has_a_23_hour_day_at_the_spring_dst_change():
    readings = list(espi.parse(SAMPLE.read_bytes()))
    assert len(readings) == 59 * 24 - 1
    assert {r.usage_point for r in readings} == {"01"}


def test_readme_example_config_runs(cli, tmp_path):
    config = json.loads((REPO / "dev-config.example.json").read_text())
    config["fields"]["path"] = str(REPO / config["fields"]["path"])
    (tmp_path / "dev.json").write_text(json.dumps(config))
    result = cli("run", "greenbutton-file", "--config", "dev.json")
    assert result.status == 0, result.output
    store = DocumentStore(SqliteBackend(tmp_path / "konnector-data" / "store.sqlite3"))
    months = {d["_id"]: d for d in store.id_range("org.greenbutton.electricity.month")}
    assert sorted(months) == ["01/2025-02", "01/2025-03"] and not any(m.get("partial") for m in months.values())
