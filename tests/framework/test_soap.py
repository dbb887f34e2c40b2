"""SOAP through zeep on our session, against a SOAP sandbox over a real socket."""

from __future__ import annotations

from pathlib import Path

import pytest

from framework import soap
from framework.errors import LoginFailed, UserActionNeeded, VendorDown
from framework.http import ProviderSession, RetryPolicy
from framework.safexml import parse
from framework.sandbox import Request, Response, Sandbox, route

WSDL = Path(__file__).parents[1] / "fixtures" / "soap" / "meter.wsdl"
ENVELOPE = "http://schemas.xmlsoap.org/soap/envelope/"
NS = "urn:konnectors:test:meter"


def envelope(body: str) -> Response:
    return Response(
        200,
        f'<?xml version="1.0"?><s:Envelope xmlns:s="{ENVELOPE}"><s:Body>{body}</s:Body></s:Envelope>',
        {"Content-Type": "text/xml; charset=utf-8"},
    )


class MeterService(Sandbox):
    name = "meter-soap"

    @route("POST", "/soap")
    def read(self, request: Request) -> Response:
        root = parse(request.body, name="request")
        point = root.findtext(f".//{{{NS}}}lireIndex/pointId")
        days = int(root.findtext(f".//{{{NS}}}lireIndex/jours"))
        if point == "00000000000000":
            fault = (
                "<s:Fault><faultcode>s:Client</faultcode><faultstring>Erreur</faultstring><detail>"
                '<e:erreur xmlns:e="urn:test:technique"><resultat code="SGT4K2">'
                "Accord client requis</resultat></e:erreur></detail></s:Fault>"
            )
            return Response(500, envelope(fault).body, {"Content-Type": "text/xml"})
        values = "".join(f"<valeur>{10 * n}</valeur>" for n in range(days))
        return envelope(f'<m:lireIndexResponse xmlns:m="{NS}">{values}</m:lireIndexResponse>')


@pytest.fixture
def meter():
    with MeterService() as sandbox:
        session = ProviderSession("meter", retry=RetryPolicy(attempts=2, backoff=0.01))
        yield sandbox, soap.service(soap.client(WSDL, session), f"{sandbox.url}/soap")


def test_operation_round_trip(meter):
    sandbox, service = meter
    assert soap.call(service.lireIndex, pointId="12345678901234", jours=3) == [0, 10, 20]
    assert sandbox.requests[0].header("SOAPAction") == '"urn:lireIndex"'


def test_fault_maps_to_the_typed_error_with_code_and_text(meter):
    _, service = meter
    with pytest.raises(UserActionNeeded, match="SGT4K2: Accord client requis"):
        soap.call(service.lireIndex, faults={"SGT4K2": UserActionNeeded}, pointId="00000000000000", jours=1)
    with pytest.raises(soap.SoapFault) as raised:
        soap.call(service.lireIndex, pointId="00000000000000", jours=1)
    assert raised.value.provider_code == "SGT4K2" and raised.value.code == "VENDOR_DOWN"


def test_malformed_answer_is_vendor_down(meter):
    sandbox, service = meter
    sandbox.inject(200, "<not-soap", headers={"Content-Type": "text/xml"}, path="/soap")
    with pytest.raises(VendorDown):
        soap.call(service.lireIndex, pointId="1", jours=1)


def test_answer_with_a_dtd_is_refused(meter):
    sandbox, service = meter
    hostile = f'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]><s:Envelope xmlns:s="{ENVELOPE}"/>'
    sandbox.inject(200, hostile, headers={"Content-Type": "text/xml"}, path="/soap")
    with pytest.raises(VendorDown, match="refused for safety"):
        soap.call(service.lireIndex, pointId="1", jours=1)


def test_send_reads_the_answer_by_name_whatever_else_it_holds(meter):
    sandbox, service = meter
    richer = (
        f'<?xml version="1.0"?><s:Envelope xmlns:s="{ENVELOPE}"><s:Header><h:ack xmlns:h="urn:h"/></s:Header>'
        f'<s:Body><m:lireIndexResponse xmlns:m="{NS}" nouveau="1"><ajout><x/></ajout><valeur>7</valeur>'
        "</m:lireIndexResponse></s:Body></s:Envelope>"
    )
    sandbox.inject(200, richer, headers={"Content-Type": "text/xml"}, path="/soap")
    answer = soap.send(service, "lireIndex", pointId="12345678901234", jours=1)
    assert soap.need_text(answer, "valeur", "lireIndex") == "7"
    with pytest.raises(VendorDown, match="the lireIndex answer has no unite element, which we need"):
        soap.need(answer, "unite", "lireIndex")


def test_send_maps_faults_and_refused_credentials(meter):
    sandbox, service = meter
    with pytest.raises(UserActionNeeded, match="SGT4K2: Accord client requis"):
        soap.send(service, "lireIndex", faults={"SGT4K2": UserActionNeeded}, pointId="00000000000000", jours=1)
    sandbox.inject(401, "Unauthorized", headers={"Content-Type": "text/plain"}, path="/soap")
    with pytest.raises(LoginFailed, match="HTTP 401"):
        soap.send(service, "lireIndex", pointId="12345678901234", jours=1)
    sandbox.inject(502, "<html>bad gateway</html>", headers={"Content-Type": "text/html"}, path="/soap", times=2)
    with pytest.raises(VendorDown):
        soap.send(service, "lireIndex", pointId="12345678901234", jours=1)
