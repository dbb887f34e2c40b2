"""A local Enedis SGE (B2B SOAP services) and an operator's consent back-office.

- SOAP 1.1 document/literal on one path per service (``…/ConsultationMesuresDetaillees/v3.0``
  and so on), from the konnector's own WSDL. Every incoming envelope is validated against
  the WSDL's XSD: an invalid one gets a SOAP fault, as the real service answers.
- Faults are ``soap:Fault/detail/erreur/resultat@code`` with French text, on HTTP 500:
  SGT401 unknown point, SGT4F7 search criteria, SGT4L8 period too long for the measure type,
  SGT4H4 end date more than a year ahead, SGT570 service already active, SGT4K2/SGT566
  consent required, SGT4G2 not eligible, SGT583 wrong direction, SGT500 technical error;
  ``fail(operation, code)`` injects any of them. A schema-invalid request gets a ``soap:Client``
  fault naming the violation.
- The gateway wants ``Authorization: Bearer <API token>`` (401 otherwise).
- Measures: the half-hour curve (average W, dated at the end of the step, local time), daily
  energy (Wh, the sum of the curve) and daily max power (VA); DST days have 46 or 50 steps.
- Back-office REST: ``POST /consent`` creates a consent, ``PUT /consent/{id}`` updates it
  (``Authorization: Bearer <back-office token>``).
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from lxml import etree

from framework.safexml import UnsafeXml, parse
from framework.sandbox import Request, Response, Sandbox, json_response, route
from framework.testing.household import day_steps, load_kwh

from .konnector import PATHS, WSDL

PARIS = ZoneInfo("Europe/Paris")
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
TECHNIQUE = "http://www.enedis.fr/sge/b2b/technique/v1.0"
API_TOKEN, BO_TOKEN = "sge-sandbox-api-token", "sge-sandbox-backoffice-token"
POINT = "30000000000001"
XML = {"Content-Type": "text/xml; charset=utf-8"}


@dataclass
class Point:
    lastname: str
    address: str
    postal_code: str
    insee: str
    segment: str = "C5"
    in_service: date = date(2015, 3, 1)


@dataclass
class Service:
    id: str
    code: str
    state: str = "ACTIF"
    start: date = date(2020, 1, 1)
    end: date | None = None


@dataclass
class Faults:
    pending: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def take(self, operation: str) -> tuple[str, str] | None:
        queue = self.pending.get(operation)
        return queue.pop(0) if queue else None


def _schemas() -> dict[str, etree.XMLSchema]:
    """One XMLSchema per namespace, from the WSDL's inline schemas (with the prefixes they inherit)."""
    definitions = parse(WSDL.read_bytes(), name=WSDL.name)
    found = {}
    for schema in definitions.iter("{http://www.w3.org/2001/XMLSchema}schema"):
        prefixes = {k: v for k, v in {**definitions.nsmap, **schema.nsmap}.items() if k}
        standalone = etree.Element(schema.tag, attrib=dict(schema.attrib), nsmap=prefixes)
        standalone.extend(copy.deepcopy(child) for child in schema)
        found[schema.get("targetNamespace")] = etree.XMLSchema(etree.ElementTree(standalone))
    return found


class SgeSandbox(Sandbox):
    name = "enedis-sge"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.schemas = _schemas()
        self.points = {POINT: Point("DUPONT", "12 RUE DE LA REPUBLIQUE", "69002", "69382")}
        self.services: list[Service] = []
        self.consents: dict[str, dict[str, Any]] = {}
        self.faults = Faults()
        self.today: date | None = None
        self.received: list[etree._Element] = []
        """Every valid request body received, for tests to inspect."""
        self._ids = itertools.count(1)

    def day(self) -> date:
        return self.today or datetime.now(PARIS).date()

    def dev_config(self) -> dict[str, Any]:
        point = self.points[POINT]
        fields = {
            "pointId": POINT,
            "lastname": point.lastname,
            "firstname": "Marie",
            "address": point.address,
            "postalCode": point.postal_code,
            "inseeCode": point.insee,
            "sgeLogin": "operator@example.org",
            "contractId": "1111111",
            "wso2BaseUrl": self.url,
            "apiToken": API_TOKEN,
            "boBaseUrl": self.url + "/backoffice/v1",
            "boToken": BO_TOKEN,
        }
        return {"fields": fields}

    def fail(self, operation: str, code: str, text: str = "Erreur simulée", times: int = 1) -> None:
        self.faults.pending.setdefault(operation, []).extend([(code, text)] * times)

    def oppose(self) -> None:
        """The customer opposes load-curve recording in their Enedis account."""
        self.services.append(Service(f"OPP{next(self._ids)}", "OPPENR", start=self.day()))

    def terminate_collection(self, today: bool = False) -> None:
        for service in self.services:
            if service.code == "CDC" and service.state == "ACTIF":
                service.state, service.end = "TERMINE", self.day() if today else self.day() - timedelta(1)

    # back-office

    @route("POST", "/backoffice/v1/consent")
    def consent_create(self, request: Request) -> Response:
        if request.bearer() != BO_TOKEN:
            return json_response({"error": "unauthorized"}, 401)
        consent_id = str(next(self._ids))
        self.consents[consent_id] = {**(request.json() or {}), "status": "open"}
        return json_response({"id": consent_id}, 201)

    @route("PUT", "/backoffice/v1/consent/{consent_id}")
    def consent_update(self, request: Request) -> Response:
        if request.bearer() != BO_TOKEN:
            return json_response({"error": "unauthorized"}, 401)
        consent = self.consents.get(request.params["consent_id"])
        if consent is None:
            return json_response({"error": "not found"}, 404)
        consent.update(request.json() or {})
        return json_response(consent)

    # SOAP

    def handle(self, request: Request) -> Response:
        gateway = request.method == "POST" and request.path in PATHS.values()
        if gateway and request.header("Authorization") != f"Bearer {API_TOKEN}":
            self.requests.append(request)
            return Response(401, "Unauthorized", {"Content-Type": "text/plain"})
        return super().handle(request)

    @route("POST", "/{service}/{version}")
    def soap_service(self, request: Request) -> Response:
        if request.path not in PATHS.values():
            return Response(404, "Unknown service", {"Content-Type": "text/plain"})
        try:
            envelope = parse(request.body, name="SOAP request")
            body = envelope.find(f"{{{SOAP}}}Body")
            operation = body[0]
        except (UnsafeXml, TypeError, IndexError):
            return self._fault(None, "Requête SOAP illisible", "soap:Client")
        namespace = etree.QName(operation).namespace
        schema = self.schemas.get(namespace)
        if schema is None or not schema.validate(etree.ElementTree(copy.deepcopy(operation))):
            reason = schema.error_log.last_error.message if schema is not None else f"unknown namespace {namespace}"
            return self._fault(None, f"Requête invalide : {reason}", "soap:Client")
        self.received.append(operation)
        name = etree.QName(operation).localname
        if injected := self.faults.take(name):
            return self._fault(*injected)
        return getattr(self, f"_{name}")(operation, namespace)

    def _fault(self, code: str | None, text: str, faultcode: str = "soap:Server") -> Response:
        """A SOAP fault; with a code, SGE's ``detail/erreur/resultat@code``."""
        detail = (
            (
                f'<detail><tech:erreur xmlns:tech="{TECHNIQUE}"><resultat code="{code}">{text}</resultat>'
                "</tech:erreur></detail>"
            )
            if code
            else ""
        )
        body = f"<soap:Fault><faultcode>{faultcode}</faultcode><faultstring>{text}</faultstring>{detail}</soap:Fault>"
        return Response(500, self._envelope(body), XML)

    @staticmethod
    def _envelope(body: str) -> str:
        opening = f'<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="{SOAP}"><soap:Body>'
        return f"{opening}{body}</soap:Body></soap:Envelope>"

    def _answer(self, namespace: str, element: str, inner: str) -> Response:
        return Response(200, self._envelope(f'<r:{element} xmlns:r="{namespace}">{inner}</r:{element}>'), XML)

    def _point(self, point_id: str) -> Point | Response:
        point = self.points.get(point_id)
        return point if point is not None else self._fault("SGT401", "Le point demandé est inconnu")

    def _rechercherPoint(self, operation, namespace: str) -> Response:
        address = operation.find("criteres/adresseInstallation")
        name = operation.findtext("criteres/nomClientFinalOuDenominationSociale")
        found = [
            pid
            for pid, p in self.points.items()
            if p.address == address.findtext("numeroEtNomVoie").upper()
            and p.postal_code == address.findtext("codePostal")
            and p.insee == address.findtext("codeInseeCommune")
            and (name is None or p.lastname == name.upper())
        ]
        points = "".join(f'<point id="{pid}"><etatContractuelCode>SERVC</etatContractuelCode></point>' for pid in found)
        return self._answer(namespace, "rechercherPointResponse", f"<points>{points}</points>")

    def _consulterDonneesTechniquesContractuelles(self, operation, namespace: str) -> Response:
        point = self._point(operation.findtext("pointId"))
        if isinstance(point, Response):
            return point
        general = (
            f"<etatContractuel>SERVC</etatContractuel><segment>{point.segment}</segment>"
            f"<dateMiseEnService>{point.in_service.isoformat()}</dateMiseEnService><adresseInstallation>"
            f"<numeroEtNomVoie>{point.address}</numeroEtNomVoie><codePostal>{point.postal_code}</codePostal>"
            f"<commune>{point.insee}</commune></adresseInstallation>"
        )
        return self._answer(
            namespace,
            "consulterDonneesTechniquesContractuellesResponse",
            f"<point><donneesGenerales>{general}</donneesGenerales></point>",
        )

    def _rechercherServicesSouscritsMesures(self, operation, namespace: str) -> Response:
        items = ""
        for s in self.services:
            end = f"<dateFin>{s.end.isoformat()}</dateFin>" if s.end else ""
            items += (
                f"<serviceSouscritMesures><serviceSouscritId>{s.id}</serviceSouscritId>"
                f'<serviceSouscritType code="{s.code}">{s.code}</serviceSouscritType><etatCode>{s.state}</etatCode>'
                f"<dateDebut>{s.start.isoformat()}</dateDebut>{end}</serviceSouscritMesures>"
            )
        return self._answer(
            namespace,
            "rechercherServicesSouscritsMesuresResponse",
            f"<servicesSouscritsMesures>{items}</servicesSouscritsMesures>",
        )

    def _commanderCollectePublicationMesures(self, operation, namespace: str) -> Response:
        point = self._point(operation.findtext("demande/donneesGenerales/pointId"))
        if isinstance(point, Response):
            return point
        access = operation.find("demande/accesMesures")
        start, end = (date.fromisoformat(access.findtext(n)) for n in ("dateDebut", "dateFin"))
        if end > start + timedelta(days=365):
            return self._fault("SGT4H4", "La date de fin ne peut pas dépasser un an")
        if any(s.code == "CDC" and s.state == "ACTIF" for s in self.services):
            return self._fault("SGT570", "Un service identique est déjà actif")
        if any(s.code == "CDC" and s.end == self.day() for s in self.services):
            return self._fault("SGT570", "Le service a été arrêté aujourd'hui : nouvelle demande possible demain")
        service = Service(f"SRV{next(self._ids)}", "CDC", start=start)
        self.services.append(service)
        return self._answer(
            namespace,
            "commanderCollectePublicationMesuresResponse",
            f"<serviceSouscritId>{service.id}</serviceSouscritId>",
        )

    def _commanderArretServiceSouscritMesures(self, operation, namespace: str) -> Response:
        wanted = operation.findtext("demande/arretServiceSouscrit/serviceSouscritId")
        service = next((s for s in self.services if s.id == wanted and s.state == "ACTIF"), None)
        if service is None:
            return self._fault("SGT401", "Service souscrit inconnu ou déjà arrêté")
        service.state, service.end = "TERMINE", self.day()
        return self._answer(
            namespace, "commanderArretServiceSouscritMesuresResponse", f"<affaireId>A{next(self._ids)}</affaireId>"
        )

    # measures

    def _consulterMesuresDetaillees(self, operation, namespace: str) -> Response:
        return self._measures(operation.find("demande"), namespace, v3=False)

    def _consulterMesuresDetailleesV3(self, operation, namespace: str) -> Response:
        return self._measures(operation.find("demande"), namespace, v3=True)

    def _measures(self, demande, namespace: str, v3: bool) -> Response:
        point = self._point(demande.findtext("pointId"))
        if isinstance(point, Response):
            return point
        kind = demande.findtext("mesuresTypeCode")
        start, end = (date.fromisoformat(demande.findtext(n)) for n in ("dateDebut", "dateFin"))
        limit = 7 if kind == "COURBE" else 365 * 3
        if (end - start).days > limit:
            return self._fault("SGT4L8", f"La période demandée est trop longue pour le type de mesure {kind}")
        days = [start + timedelta(n) for n in range((min(end, self.day()) - start).days)]
        rows = [row for day in days for row in self.rows(kind, day)]
        inner = "".join(self._row(when, value, v3) for when, value in rows)
        unit = {"COURBE": "W", "ENERGIE": "Wh", "PMAX": "VA"}[kind]
        quantity = demande.findtext("grandeurPhysique")
        tag = "points" if v3 else "mesure"
        grandeur = f"<grandeur><grandeurPhysique>{quantity}</grandeurPhysique><unite>{unit}</unite>{inner}</grandeur>"
        if v3:
            return self._answer(
                namespace,
                "consulterMesuresDetailleesResponseV3",
                f"<pointId>{demande.findtext('pointId')}</pointId>{grandeur}",
            )
        return self._answer(namespace, "consulterMesuresDetailleesResponse", grandeur.replace("points>", f"{tag}>"))

    @staticmethod
    def _row(when: datetime, value: float, v3: bool) -> str:
        tag = "points" if v3 else "mesure"
        stamp = when.strftime("%Y-%m-%d %H:%M:%S") if v3 else when.isoformat()
        return f"<{tag}><v>{value:g}</v><d>{stamp}</d></{tag}>"

    def curve(self, day: date) -> list[tuple[datetime, int]]:
        """(local end of step, average W) of every half hour of ``day``."""
        step = timedelta(minutes=30)
        return [
            (
                (local.astimezone(UTC) + step).astimezone(PARIS),
                round(load_kwh(local, minutes=30, seed=self.seed) * 2000),
            )
            for local in day_steps(day, 30, PARIS)
        ]

    def rows(self, kind: str, day: date) -> list[tuple[datetime, float]]:
        curve = self.curve(day)
        midnight = datetime(day.year, day.month, day.day, tzinfo=PARIS)
        if kind == "COURBE":
            return curve
        if kind == "ENERGIE":
            return [(midnight, round(sum(w / 2 for _, w in curve)))]
        return [(midnight, round(max(w for _, w in curve) * 1.15))]
