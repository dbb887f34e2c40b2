"""``enedis-sge`` through the CLI against its SOAP sandbox, on both stores and both route layouts.

The sandbox answers the official shapes (see test_conformance for their validation against
Enedis's own XSDs); here: the flow, the seed's configuration, tolerance, opposition and consent.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

import pytest
import requests

from framework.store import CouchBackend, DocumentStore, SqliteBackend
from konnectors.enedis_sge.sandbox import POINT, SgeSandbox
from tests.conftest import write_json

P = "com.grandlyon.enedis"
TODAY = date(2024, 11, 5)
SMALL = {"curve_history_days": 14, "daily_history_days": 60, "max_power_history_days": 60}
SEED_FIELDS = {  # the "fields" of the Ecolyo SGE konnector's dev-config (seed 002), as it is
    "pointId", "lastname", "firstname", "address", "sgeLogin", "postalCode", "city",
    "contractId", "wso2BaseUrl", "boBaseUrl", "boToken", "apiToken",
}  # fmt: skip
V3_ACTION = '"http://www.enedis.fr/sge/b2b/services/consultationmesuresdetaillees/v3.0"'


@pytest.fixture
def sge():
    with SgeSandbox(seed=3) as sandbox:
        sandbox.today = TODAY
        yield sandbox


def configure(tmp_path, sandbox, layout="gateway", **fields) -> None:
    config = sandbox.dev_config(layout)
    config["fields"].update(fields)
    write_json(tmp_path / "dev.json", {**config, "parameters": SMALL})


def run(cli, *args, target=()):
    env = {"KONNECTOR_NOW": f"{TODAY.isoformat()}T12:00:00+01:00", **dict((target[1:2] and target[1]) or {})}
    return cli(*args, "--config", "dev.json", "--log-format", "json", *(target[0] if target else ()), env=env)


def store(tmp_path) -> DocumentStore:
    return DocumentStore(SqliteBackend(tmp_path / "konnector-data" / "store.sqlite3"))


def operations(sandbox) -> list[str]:
    return [element.tag.rpartition("}")[2] for element in sandbox.received]


def messages(result) -> str:
    return "\n".join(line.get("message", "") for line in result.lines)


def test_the_seed_dev_config_is_the_sandbox_gateway_config():
    with SgeSandbox() as sandbox:
        assert set(sandbox.dev_config()["fields"]) == SEED_FIELDS


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
        "rechercherServicesSouscritsMesures",
        "commanderCollectePublicationMesures",
    ]
    [consent] = sge.consents.values()
    assert consent["pointId"] == POINT and consent["status"] == "open" and consent["city"] == "Lyon"
    assert consent["serviceId"] == next(s.id for s in sge.services if s.code == "CDC")
    days = {d["_id"]: d["load"] for d in reader(tmp_path).id_range(f"{P}.day")}
    assert len(days) == 60
    assert days["2024-10-27"] == round(sum(w / 2 for _, w in sge.curve(date(2024, 10, 27)))) / 1000
    hours = Counter(h["_id"][:10] for h in reader(tmp_path).id_range(f"{P}.hour"))
    assert hours["2024-10-27"] == 25 and len(hours) == 14
    assert len(list(reader(tmp_path).id_range(f"{P}.maxpower"))) == 60


@pytest.mark.parametrize(
    ("layout", "prefix", "token"), [("gateway", "/enedis_SGE_", "Bearer sge-sandbox-api-token"), ("direct", "/", None)]
)
def test_both_route_layouts_run_end_to_end(cli, tmp_path, sge, layout, prefix, token):
    configure(tmp_path, sge, layout)
    assert run(cli, "run", "enedis-sge").status == 0
    soap_calls = [r for r in sge.requests if not r.path.startswith("/backoffice")]
    assert soap_calls and all(r.path.startswith(prefix) for r in soap_calls)
    if layout == "direct":
        assert not any(r.path.startswith("/enedis_SGE_") for r in soap_calls)
        assert {r.header("Authorization") for r in soap_calls} == {None}
    paths = {etree_name(r.body): r.path for r in soap_calls}
    if layout == "gateway":  # the seed's routes
        assert paths["rechercherPoint"] == paths["rechercherServicesSouscritsMesures"]
        assert paths["consulterMesuresDetailleesV3"] == "/enedis_SGE_ConsultationMesuresDetaillees/1.0"
    assert len(list(store(tmp_path).id_range(f"{P}.day"))) == 60


def etree_name(body: bytes) -> str:
    from lxml import etree

    return etree.QName(etree.fromstring(body).find("{http://schemas.xmlsoap.org/soap/envelope/}Body")[0]).localname


def test_soap_action_is_empty_except_the_v3_namespace(cli, tmp_path, sge):
    configure(tmp_path, sge)
    assert run(cli, "run", "enedis-sge").status == 0
    actions = {
        etree_name(r.body): r.header("SOAPAction") for r in sge.requests if r.method == "POST" and r.body[:1] == b"<"
    }
    assert actions.pop("consulterMesuresDetailleesV3") == V3_ACTION
    assert set(actions.values()) == {'""'}


def test_second_run_is_incremental_and_does_not_consent_again(cli, tmp_path, sge):
    configure(tmp_path, sge)
    assert run(cli, "run", "enedis-sge").status == 0
    calls = len(sge.received)
    second = run(cli, "run", "enedis-sge")
    assert second.status == 0
    assert operations(sge)[calls:] == ["rechercherServicesSouscritsMesures"] + ["consulterMesuresDetailleesV3"] * 3
    assert len(sge.consents) == 1


@pytest.mark.parametrize("version", ["v3", "v2"])
def test_unknown_elements_and_attributes_in_every_answer_are_accepted(cli, tmp_path, sge, version):
    sge.extras = True
    configure(tmp_path, sge, cmd_version=version)
    result = run(cli, "run", "enedis-sge")
    assert result.status == 0, result.output
    assert b"champAjouteAvant" in sge.exchanges[0][2] and len(sge.exchanges) >= 7
    assert len(list(store(tmp_path).id_range(f"{P}.day"))) == 60
    assert len(list(store(tmp_path).id_range(f"{P}.minute"))) == 14 * 48 + 2
    assert run(cli, "delete-account", "enedis-sge").status == 0
    assert [c["status"] for c in sge.consents.values()] == ["closed"]


def test_the_sandbox_serves_the_seed_quoted_services_answer(cli, tmp_path, sge):
    configure(tmp_path, sge)
    sge.oppose()
    sge.terminate_collection()
    assert run(cli, "run", "enedis-sge").status == 0
    answer = next(a for op, _, a in sge.exchanges if op == "rechercherServicesSouscritsMesures").decode()
    seed_order = ["serviceSouscritId", "pointId", "serviceSouscritType code=", "serviceSouscritLibelle", "injection"]
    seed_order += ["soutirage", "etatCode", "dateDebut"]
    positions = [answer.index(f"<{name}") for name in seed_order]
    assert positions == sorted(positions) and "Opposition à l'enregistrement de la courbe de charge" in answer


def test_the_seed_quoted_services_answer_is_accepted(cli, tmp_path, sge):
    """The subscribed-services answer as the seed quotes it, OPPENR with every element it shows."""
    seed_answer = (
        '<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
        "<soap:Body><ns:rechercherServicesSouscritsMesuresResponse "
        'xmlns:ns="http://www.enedis.fr/sge/b2b/rechercherservicessouscritsmesures/v1.0"><servicesSouscritsMesures>'
        "<serviceSouscritMesures><serviceSouscritId>74472322</serviceSouscritId><pointId>19176410771132</pointId>"
        '<serviceSouscritType code="OPPENR"/>'
        "<serviceSouscritLibelle>Opposition à l'enregistrement de la courbe de charge</serviceSouscritLibelle>"
        "<injection>false</injection><soutirage>true</soutirage><etatCode>ACTIF</etatCode>"
        "<dateDebut>2022-06-24+02:00</dateDebut><dateFin>2022-08-10+02:00</dateFin>"
        "<motifFinLibelle>Arrêt par le client</motifFinLibelle></serviceSouscritMesures>"
        "</servicesSouscritsMesures></ns:rechercherServicesSouscritsMesuresResponse></soap:Body></soap:Envelope>"
    )
    configure(tmp_path, sge, "direct")  # where the services search has a path of its own
    xml = {"Content-Type": "text/xml"}
    sge.inject(200, seed_answer.encode(), path="/RechercheServicesSouscritsMesures/", headers=xml, times=1000)
    result = run(cli, "run", "enedis-sge")
    assert result.status == 0, result.output
    assert "OPPENR" in messages(result)
    assert len(list(store(tmp_path).id_range(f"{P}.day"))) == 60
    assert list(store(tmp_path).id_range(f"{P}.minute")) == []


def test_a_missing_needed_element_is_vendor_down_naming_it(cli, tmp_path, sge):
    answer = (
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        '<ns:rechercherServicesSouscritsMesuresResponse xmlns:ns="http://www.enedis.fr/sge/b2b/rechercherservicessouscritsmesures/v1.0">'
        "<servicesSouscritsMesures><serviceSouscritMesures><serviceSouscritId>1</serviceSouscritId>"
        '<serviceSouscritType code="CDC"/></serviceSouscritMesures></servicesSouscritsMesures>'
        "</ns:rechercherServicesSouscritsMesuresResponse></soap:Body></soap:Envelope>"
    )
    configure(tmp_path, sge, "direct")
    sge.inject(200, answer.encode(), path="/RechercheServicesSouscritsMesures/", headers={"Content-Type": "text/xml"})
    result = run(cli, "run", "enedis-sge")
    assert result.error_code == "VENDOR_DOWN"
    assert "rechercherServicesSouscritsMesures answer has no etatCode element" in result.lines[-2]["message"]


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
        ("city", "Villeurbanne", "the city does not match"),
        ("inseeCode", "69123", "the address (street, postal code, INSEE code) does not match"),
    ],
)
def test_identity_mismatch_says_which_field_disagrees(cli, tmp_path, sge, field, value, says):
    configure(tmp_path, sge, **{field: value})
    result = run(cli, "run", "enedis-sge")
    assert result.error_code == "LOGIN_FAILED" and says in result.lines[-2]["message"]
    assert sge.consents == {}


def test_insee_code_narrows_the_search_when_given(cli, tmp_path, sge):
    configure(tmp_path, sge, inseeCode="69382")
    assert run(cli, "run", "enedis-sge").status == 0
    assert sge.received[0].findtext("criteres/adresseInstallation/codeInseeCommune") == "69382"


def test_opposition_stops_only_the_curve(cli, tmp_path, sge):
    configure(tmp_path, sge)
    sge.oppose()
    result = run(cli, "run", "enedis-sge")
    assert result.status == 0, result.output
    assert "OPPENR" in messages(result) and "daily energy and max power still are" in messages(result)
    assert "commanderCollectePublicationMesures" not in operations(sge)
    assert len(list(store(tmp_path).id_range(f"{P}.day"))) == 60
    assert len(list(store(tmp_path).id_range(f"{P}.maxpower"))) == 60
    assert list(store(tmp_path).id_range(f"{P}.minute")) == []


def test_opposition_with_nothing_to_read_asks_the_user(cli, tmp_path, sge):
    configure(tmp_path, sge)
    sge.oppose()
    sge.data_from = TODAY
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
    assert again.status == 0 and "ordered again" in messages(again)
    sge.terminate_collection(today=True)
    waiting = run(cli, "run", "enedis-sge")
    assert waiting.status == 0 and "accepts a new order tomorrow" in messages(waiting)


def test_delete_account_stops_collection_closes_consent_and_is_idempotent(cli, tmp_path, sge):
    configure(tmp_path, sge)
    assert run(cli, "run", "enedis-sge").status == 0
    assert run(cli, "delete-account", "enedis-sge").status == 0
    assert {s.state for s in sge.services} == {"TERMINE"}
    assert [c["status"] for c in sge.consents.values()] == ["closed"]
    assert run(cli, "delete-account", "enedis-sge").status == 0  # again: nothing left to stop, still closed
    assert [c["status"] for c in sge.consents.values()] == ["closed"]
    sge.today = TODAY + timedelta(days=1)
    assert run(cli, "run", "enedis-sge").status == 0  # the account again: its consent reopened, not doubled
    assert [c["status"] for c in sge.consents.values()] == ["open"]
    sge.terminate_collection()
    second = run(cli, "delete-account", "enedis-sge")
    assert second.status == 0 and "already stopped" in messages(second)
    assert [c["status"] for c in sge.consents.values()] == ["closed"]


def test_delete_account_fails_when_a_consent_cannot_be_closed(cli, tmp_path, sge):
    configure(tmp_path, sge)
    assert run(cli, "run", "enedis-sge").status == 0
    sge.inject(400, b"{}", path="/backoffice/v1/consent/1", times=100)
    result = run(cli, "delete-account", "enedis-sge")
    assert result.error_code == "VENDOR_DOWN" and "back-office answered 400" in result.lines[-2]["message"]
    assert [c["status"] for c in sge.consents.values()] == ["open"]


def test_request_missing_a_needed_element_gets_a_fault_like_the_real_service(sge):
    body = (
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        '<r:rechercherPoint xmlns:r="http://www.enedis.fr/sge/b2b/services/rechercherpoint/v2.0">'
        "<criteres/></r:rechercherPoint></soap:Body></soap:Envelope>"
    )
    answer = requests.post(sge.url + "/RecherchePoint/v2.0", data=body, timeout=5, headers={"Content-Type": "text/xml"})
    assert answer.status_code == 500 and "élément criteres manquant" in answer.text and "soap:Client" in answer.text
    wrong_route = requests.post(
        sge.url + "/ConsultationMesuresDetaillees/v3.0", data=body, timeout=5, headers={"Content-Type": "text/xml"}
    )
    assert wrong_route.status_code == 500 and "inconnue" in wrong_route.text


def test_a_measure_without_a_readable_value_or_date_is_skipped_with_a_warning():
    from lxml import etree

    from konnectors.enedis_sge import measures

    answer = etree.fromstring(
        '<r xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><grandeur><grandeurMetier>CONS</grandeurMetier>'
        "<points><v>1000</v><d>2024-11-01 00:00:00</d></points>"
        '<points><v xsi:nil="true"/><d>2024-11-02 00:00:00</d></points>'
        "<points><v>NaN</v><d>2024-11-03 00:00:00</d></points>"
        "<points><v>abc</v><d>2024-11-04 00:00:00</d></points>"
        "<points><v>5</v><d>hier</d></points></grandeur></r>"
    )
    warnings: list[str] = []
    [day] = measures.daily(answer, warnings.append)
    assert day["_id"].startswith("2024-11-01") and day["load"] == 1.0
    assert len(warnings) == 3 and "2024-11-03" in warnings[0] and "'abc'" in warnings[1] and "'hier'" in warnings[2]


def test_a_single_route_can_be_overridden_and_a_wrong_one_is_named(cli, tmp_path, sge):
    config = sge.dev_config()
    override = {"consulterMesuresDetailleesV3": "/ConsultationMesuresDetaillees/v3.0"}
    write_json(tmp_path / "dev.json", {**config, "parameters": {**SMALL, "sge_routes": override}})
    assert run(cli, "run", "enedis-sge").status == 0
    measures = [r.path for r in sge.requests if b"consulterMesuresDetailleesV3" in r.body]
    assert measures and set(measures) == {"/ConsultationMesuresDetaillees/v3.0"}
    write_json(tmp_path / "dev.json", {**config, "parameters": {"sge_routes": {"lireIndex": "/x"}}})
    assert "sge_routes names unknown operations: lireIndex" in run(cli, "run", "enedis-sge").output


def test_a_refused_gateway_token_is_login_failed(cli, tmp_path, sge):
    configure(tmp_path, sge, apiToken="wrong-token")
    result = run(cli, "run", "enedis-sge")
    assert result.error_code == "LOGIN_FAILED" and "HTTP 401" in result.lines[-2]["message"]


def test_an_address_longer_than_an_afnor_line_is_refused_before_any_request(cli, tmp_path, sge):
    configure(tmp_path, sge, address="12 RUE DU DOCTEUR ALBERT SCHWEITZER PROLONGEE")
    result = run(cli, "run", "enedis-sge")
    assert result.status != 0 and "address" in result.output and sge.requests == []
