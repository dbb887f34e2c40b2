"""``grdf-adict`` on payloads a real GRDF sends: claim spellings, null gas days, bad values, accented
states, the ``liste_acces`` wrapper, the declaration's answer, and billing periods across windows.

Each case runs the CLI against the sandbox over a real socket.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from konnectors.grdf_adict import rights
from konnectors.grdf_adict.konnector import BILLING_OVERLAP_DAYS, WINDOW_DAYS
from konnectors.grdf_adict.sandbox import PCE
from tests.conftest import write_json
from tests.konnectors.grdf_adict.test_konnector import DAY, TODAY, run, store

PERIOD = "com.grandlyon.grdf.period"
SHORT = {"informative_history_days": 10, "published_history_days": 40}


def configure(tmp_path, config: dict, parameters: dict = SHORT) -> None:
    write_json(tmp_path / "dev.json", {**config, "parameters": parameters})


def warnings(result) -> list[str]:
    return [line["message"] for line in result.lines if line["type"] == "warning"]


def test_a_pce_id_claim_names_the_meter(cli, tmp_path, grdf):
    grdf.pce_claim = "pce_id"
    configure(tmp_path, grdf.dev_config())
    result = run(cli, "run", "grdf-adict")
    assert result.status == 0, result.output
    assert any(f"PCE from the consent: {PCE}" in line["message"] for line in result.lines)
    assert len(list(store(tmp_path).id_range(DAY))) == 10


def test_null_gas_day_is_dated_by_its_start_and_a_bad_energy_is_skipped(cli, tmp_path, grdf):
    null_day, bad_day, nan_day = TODAY - timedelta(3), TODAY - timedelta(5), TODAY - timedelta(6)
    grdf.null_gas_days.add((PCE, null_day))
    grdf.bad_energy[(PCE, bad_day)] = "n/a"
    grdf.bad_energy[(PCE, nan_day)] = None
    configure(tmp_path, grdf.dev_config())
    result = run(cli, "run", "grdf-adict")
    assert result.status == 0, result.output
    days = {d["_id"]: d for d in store(tmp_path).id_range(DAY)}
    assert f"{PCE}/{null_day}" in days and days[f"{PCE}/{null_day}"]["load"] == grdf.energy(PCE, null_day)
    assert f"{PCE}/{bad_day}" not in days and f"{PCE}/{nan_day}" not in days and len(days) == 8
    said = warnings(result)
    prefix = f"GRDF donnees_consos_informatives of PCE {PCE}: record skipped"
    assert f"{prefix}, {bad_day}: energie='n/a' is not a number" in said
    assert f"{prefix}, {nan_day}: energie=None is missing or null" in said
    month = store(tmp_path).get("com.grandlyon.grdf.month", f"{PCE}/2024-02")
    assert month["load"] == round(sum(d["load"] for d in days.values() if d["month"] == 2), 9)


def tiers_direct(grdf) -> dict:
    fields = {
        **grdf.dev_config()["fields"],
        "mode": "tiers_direct",
        "pce": "GI100000000003",
        "lastname": "Martin",
        "email": "martin@example.org",
        "postal_code": "69003",
    }
    return {"fields": fields}


def test_declaration_sends_the_perimeter_reads_grdf_answer_and_waits_on_an_accented_state(cli, tmp_path, grdf):
    grdf.pending_state = "À valider"
    configure(tmp_path, tiers_direct(grdf))
    first = run(cli, "run", "grdf-adict")
    assert first.error_code == "USER_ACTION_NEEDED", first.output
    assert "awaiting the holder's approval" in first.lines[-2]["message"]  # the answer names no state
    [declared] = grdf.declarations
    assert declared["perim_donnees_conso_debut"] == str(TODAY - timedelta(40))
    assert declared["perim_donnees_conso_fin"] == declared["date_fin_droit_acces"]
    second = run(cli, "run", "grdf-adict")  # the listed right is "À valider": wait, do not declare again
    assert "is À valider: awaiting the holder's approval" in second.lines[-2]["message"]
    assert len(grdf.declarations) == 1
    grdf.accept("GI100000000003")
    assert run(cli, "run", "grdf-adict").status == 0


def test_rights_wrapped_in_liste_acces_are_found(cli, tmp_path, grdf):
    grdf.liste_acces = True
    configure(tmp_path, grdf.dev_config())
    result = run(cli, "run", "grdf-adict")
    assert result.status == 0, result.output
    assert len(list(store(tmp_path).id_range(DAY))) == 10


@pytest.mark.parametrize(
    ("state", "meaning"),
    [
        ("Active", rights.COLLECT),
        ("Actif", rights.COLLECT),
        ("A valider", rights.WAIT),
        ("À valider", rights.WAIT),
        ("A\u0300 valider", rights.WAIT),  # decomposed accent
        ("a  VALIDER", rights.WAIT),
        ("A revérifier", rights.WAIT),
        ("Révoquée", rights.CONSENT),
        ("Révoqué", rights.CONSENT),
        ("Refusée", rights.CONSENT),
        ("Obsolète", rights.CONSENT),
        ("Suspendue", rights.CONSENT),
        (None, rights.CONSENT),
    ],
)
def test_every_state_has_a_meaning_after_normalisation(state, meaning):
    assert rights.meaning(state) == meaning


def test_billing_periods_across_every_window_boundary_are_all_stored(cli, tmp_path, grdf):
    history = 2 * WINDOW_DAYS + 30
    configure(tmp_path, grdf.dev_config(), {"informative_history_days": 5, "published_history_days": history})
    result = run(cli, "run", "grdf-adict")
    assert result.status == 0, result.output
    start = TODAY - timedelta(history)
    expected = grdf.billing_periods(start, TODAY - timedelta(1))
    # the case that lost periods: one across each boundary of back-to-back 365-day windows
    for boundary in (start + timedelta(WINDOW_DAYS), start + timedelta(2 * WINDOW_DAYS)):
        assert any(first < boundary < following for first, following in expected), f"no period across {boundary}"
    assert max((following - first).days for first, following in expected) < BILLING_OVERLAP_DAYS
    stored = {(p["start"], p["end"]) for p in store(tmp_path).id_range(PERIOD)}
    assert stored == {(str(a), str(b)) for a, b in expected}
    assert len(stored) > 20


def test_a_window_with_nothing_usable_ends_partial_after_storing_the_rest(cli, tmp_path, grdf):
    for n in range(1, 12):
        grdf.bad_energy[(PCE, TODAY - timedelta(n))] = "?"
    configure(tmp_path, grdf.dev_config(), {"informative_history_days": 10, "published_history_days": 70})
    result = run(cli, "run", "grdf-adict")
    assert result.status == 1 and result.error_code == "UNKNOWN_ERROR.PARTIAL_SYNC"
    assert f"no usable record for donnees_consos_informatives of PCE {PCE}" in result.lines[-2]["message"]
    assert list(store(tmp_path).id_range(DAY)) == []
    assert len(list(store(tmp_path).id_range(PERIOD))) >= 1  # billing periods were stored
    assert sum("record skipped" in line["message"] for line in result.lines) == 10  # each named
