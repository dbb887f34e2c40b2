"""``enedis-sge`` through the CLI against its SOAP sandbox (which validates every request
against the konnector's own XSD), on both stores."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest

from framework.store import CouchBackend, DocumentStore, SqliteBackend
from konnectors.enedis_sge.sandbox import POINT, SgeSandbox
from tests.conftest import write_json

P = "com.grandlyon.enedis"
TODAY = date(2024, 11, 5)
SMALL = {"curve_history_days": 14, "daily_history_days": 60, "max_power_history_days": 60}


@pytest.fixture
def sge():
    with SgeSandbox(seed=3) as sandbox:
        sandbox.today = TODAY
        yield sandbox


def configure(tmp_path, sandbox, **fields) -> None:
    config = sandbox.dev_config()
    config["fields"].update(fields)
    write_json(tmp_path / "dev.json", {**config, "parameters": SMALL})


def run(cli, *args, target=()):
    env = {"KONNECTOR_NOW": f"{TODAY.isoformat()}T12:00:00+01:00", **dict((target[1:2] and target[1]) or {})}
    return cli(*args, "--config", "dev.json", "--log-format", "json", *(target[0] if target else ()), env=env)


def store(tmp_path) -> DocumentStore:
    return DocumentStore(SqliteBackend(tmp_path / "konnector-data" / "store.sqlite3"))


def operations(sandbox) -> list[str]:
    return [element.tag.rpartition("}")[2] for element in sandbox.received]


@pytest.mark.parametrize("backend_kind", ["embedded", "couchdb"])
def test_first_run_finds_the_point_records_consent_orders_collection_and_loads(
    cli, tmp_path, sge, backend_kind, request, db_prefix
):
    configure(tmp_path, sge)
    target = ()
    reader = store
    if backend_kind == "couchdb":
        url = request.getfixturevalue("couchdb_url")
        target = (["--couchdb", url], {"KONNECTOR_DB_PREFIX": db_prefix})
        reader = lambda _: DocumentStore(CouchBackend(url, db_prefix))  # noqa: E731
    result = run(cli, "run", "enedis-sge", target=target)
    assert result.status == 0, result.output
    assert operations(sge)[:4] == [
        "rechercherPoint",
        "consulterDonneesTechniquesContractuelles",
        "commanderCollectePublicationMesures",
        "rechercherServicesSouscritsMesures",
    ]
    [consent] = sge.consents.values()
    assert consent["pointId"] == POINT and consent["serviceId"].startswith("SRV") and consent["status"] == "open"
    days = {d["_id"]: d["load"] for d in reader(tmp_path).id_range(f"{P}.day")}
    assert len(days) == 60
    assert days["2024-10-27"] == round(sum(w / 2 for _, w in sge.curve(date(2024, 10, 27)))) / 1000
    hours = Counter(h["_id"][:10] for h in reader(tmp_path).id_range(f"{P}.hour"))
    assert hours["2024-10-27"] == 25 and len(hours) == 14
    assert len(list(reader(tmp_path).id_range(f"{P}.maxpower"))) == 60


def test_second_run_is_incremental_and_does_not_consent_again(cli, tmp_path, sge):
    configure(tmp_path, sge)
    assert run(cli, "run", "enedis-sge").status == 0
    calls = len(sge.received)
    second = run(cli, "run", "enedis-sge")
    assert second.status == 0
    assert operations(sge)[calls:] == ["rechercherServicesSouscritsMesures"] + ["consulterMesuresDetailleesV3"] * 3
    assert len(sge.consents) == 1


def test_v2_is_selectable(cli, tmp_path, sge):
    configure(tmp_path, sge, cmd_version="v2")
    assert run(cli, "run", "enedis-sge").status == 0
    assert "consulterMesuresDetaillees" in operations(sge) and "consulterMesuresDetailleesV3" not in operations(sge)
    assert len(list(store(tmp_path).id_range(f"{P}.minute"))) == 14 * 48 + 2


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("lastname", "MARTIN", "the last name does not match"),
        ("address", "1 PLACE BELLECOUR", "the address (street, postal code, INSEE code) does not match"),
    ],
)
def test_identity_mismatch_says_which_field_disagrees(cli, tmp_path, sge, field, value, says):
    configure(tmp_path, sge, **{field: value})
    result = run(cli, "run", "enedis-sge")
    assert result.error_code == "LOGIN_FAILED" and says in result.lines[-2]["message"]
    assert sge.consents == {}


def test_opposition_to_curve_recording_asks_the_user(cli, tmp_path, sge):
    configure(tmp_path, sge)
    sge.oppose()
    result = run(cli, "run", "enedis-sge")
    assert result.error_code == "USER_ACTION_NEEDED" and "OPPENR" in result.lines[-2]["message"]


def test_consent_fault_keeps_the_code_and_french_text(cli, tmp_path, sge):
    configure(tmp_path, sge)
    sge.fail("consulterMesuresDetailleesV3", "SGT4K2", "L'accord du client est requis")
    result = run(cli, "run", "enedis-sge")
    assert result.error_code == "USER_ACTION_NEEDED"
    assert "SGT4K2: L'accord du client est requis" in result.lines[-2]["message"]


@pytest.mark.parametrize(
    ("code", "expected"), [("SGT401", "LOGIN_FAILED"), ("SGT500", "VENDOR_DOWN"), ("SGT4G2", "USER_ACTION_NEEDED")]
)
def test_fault_mapping(cli, tmp_path, sge, code, expected):
    configure(tmp_path, sge)
    sge.fail("rechercherPoint", code)
    assert run(cli, "run", "enedis-sge").error_code == expected


def test_period_too_long_is_chunked(cli, tmp_path, sge):
    configure(tmp_path, sge)
    sge.fail("consulterMesuresDetailleesV3", "SGT4L8", "Période trop longue", times=2)
    assert run(cli, "run", "enedis-sge").status == 0
    assert len(list(store(tmp_path).id_range(f"{P}.day"))) == 60


def test_ended_collection_is_ordered_again_and_stopped_today_waits(cli, tmp_path, sge):
    configure(tmp_path, sge)
    assert run(cli, "run", "enedis-sge").status == 0
    sge.terminate_collection()
    again = run(cli, "run", "enedis-sge")
    assert again.status == 0 and any("ordered again" in line["message"] for line in again.lines)
    sge.terminate_collection(today=True)
    waiting = run(cli, "run", "enedis-sge")
    assert waiting.status == 0 and any("accepts a new order tomorrow" in line["message"] for line in waiting.lines)


def test_delete_account_stops_collection_closes_consent_and_is_idempotent(cli, tmp_path, sge):
    configure(tmp_path, sge)
    assert run(cli, "run", "enedis-sge").status == 0
    assert run(cli, "delete-account", "enedis-sge").status == 0
    assert {s.state for s in sge.services} == {"TERMINE"}
    assert [c["status"] for c in sge.consents.values()] == ["closed"]
    assert run(cli, "run", "enedis-sge").status == 0  # consent state kept: re-created account, collection re-ordered
    sge.terminate_collection()
    second = run(cli, "delete-account", "enedis-sge")
    assert second.status == 0 and any("already stopped" in line["message"] for line in second.lines)


def test_invalid_request_gets_a_fault_like_the_real_service(sge):
    import requests

    body = (
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        '<r:rechercherPoint xmlns:r="http://www.enedis.fr/sge/b2b/services/rechercherpoint/v2.0">'
        "<criteres/></r:rechercherPoint></soap:Body></soap:Envelope>"
    )
    answer = requests.post(
        sge.url + "/RecherchePoint/v2.0",
        data=body,
        timeout=5,
        headers={"Authorization": "Bearer sge-sandbox-api-token", "Content-Type": "text/xml"},
    )
    assert answer.status_code == 500 and "Requête invalide" in answer.text and "soap:Client" in answer.text
