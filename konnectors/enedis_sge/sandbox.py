"""A local Enedis SGE (B2B SOAP services) and an operator's consent back-office.

Facts, from the provider's material only (never from the konnector):

- Answers have the shapes of Enedis's own XSDs (the ``enedis-sge`` 0.1.0 wheel):
  ``RechercherPoint-v2.0.xsd`` (``adresseInstallationNormalisee``, ``etatContractuel@code``),
  ``ConsulterDonneesTechniquesContractuelles-v1.0.xsd`` (``segment@code``, the commune's code and
  name, no commissioning date), ``ADAM.ConsulterMesuresDetailleesCommun_v1.2.xsd`` (``periode``,
  ``grandeurMetier``, ``points`` with ``v``/``d``/``iv``, ``modeCalcul``, ``pas``),
  ``CommanderArretServiceSouscritMesures-v1.0.xsd`` (``affaireId``, ``prestations``), with the
  ``acquittement`` header their bindings declare and children in XSD order. Services the wheel
  lacks answer as the Ecolyo SGE documentation quotes them (seed 002): the subscribed-services
  search (``pointId``, ``serviceSouscritLibelle``, ``injection``, ``soutirage``, ``motifFinLibelle``),
  the collection order (``serviceSouscritId``), v2 measures (``grandeur/mesure``).
- Two address layouts, from this module's own table: Enedis's direct paths (the official WSDLs'
  ``soap:address``, no token: SGE authenticates the certificate) and the WSO2 gateway routes
  ``enedis_SGE_<Service>/1.0`` of the seed's deployment (``Authorization: Bearer <API token>``,
  401 otherwise), one route serving both searches as the seed documents.
- Faults are ``soap:Fault/detail/erreur/resultat@code`` with French text, on HTTP 500:
  SGT401 unknown point, SGT4F7 search criteria, SGT4L8 period too long for the measure type,
  SGT4H4 end date more than a year ahead, SGT570 service already active, SGT4K2/SGT566
  consent required, SGT4G2 not eligible, SGT583 wrong direction, SGT500 technical error;
  ``fail(operation, code)`` injects any of them. A request missing an element the service
  needs, or posted to a route that does not serve it, gets a ``soap:Client`` fault.
- ``extras = True`` adds unknown optional elements and attributes to every answer, as later
  service versions do; ``exchanges`` keeps every (operation, request, answer) for inspection.
- Measures: the half-hour curve (average W, dated at the end of the step, local time), daily
  energy (Wh, the sum of the curve) and daily max power (VA); DST days have 46 or 50 steps.
- Back-office REST (the operator's, not Enedis's): ``GET /consent?key=`` lists an account's
  consents, ``POST /consent`` creates one (409 with the existing id when the key is taken),
  ``PUT /consent/{id}`` updates it (``Authorization: Bearer <back-office token>``).
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from lxml import etree

from framework.safexml import UnsafeXml, parse
from framework.sandbox import Request, Response, Sandbox, json_response, route
from framework.testing.household import day_loads_kwh, day_steps

PARIS = ZoneInfo("Europe/Paris")
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
TECHNIQUE = "http://www.enedis.fr/sge/b2b/technique/v1.0"
API_TOKEN, BO_TOKEN = "sge-sandbox-api-token", "sge-sandbox-backoffice-token"
POINT = "30000000000001"
XML = {"Content-Type": "text/xml; charset=utf-8"}

NAMESPACES = {
    "consulterMesuresDetaillees": "http://www.enedis.fr/sge/b2b/services/consultationmesuresdetaillees/v2.0",
    "consulterMesuresDetailleesV3": "http://www.enedis.fr/sge/b2b/services/consultationmesuresdetaillees/common",
    "consulterDonneesTechniquesContractuelles": (
        "http://www.enedis.fr/sge/b2b/services/consulterdonneestechniquescontractuelles/v1.0"
    ),
    "rechercherPoint": "http://www.enedis.fr/sge/b2b/services/rechercherpoint/v2.0",
    "rechercherServicesSouscritsMesures": "http://www.enedis.fr/sge/b2b/rechercherservicessouscritsmesures/v1.0",
    "commanderCollectePublicationMesures": "http://www.enedis.fr/sge/b2b/commandercollectepublicationmesures/v3.0",
    "commanderArretServiceSouscritMesures": "http://www.enedis.fr/sge/b2b/commanderarretservicesouscritmesures/v1.0",
}
RESPONSES = {
    "consulterMesuresDetailleesV3": "consulterMesuresDetailleesResponseV3",
}
DIRECT = {
    "/ConsultationMesuresDetaillees/v2.0": {"consulterMesuresDetaillees"},
    "/ConsultationMesuresDetaillees/v3.0": {"consulterMesuresDetailleesV3"},
    "/ConsultationDonneesTechniquesContractuelles/v1.0": {"consulterDonneesTechniquesContractuelles"},
    "/RecherchePoint/v2.0": {"rechercherPoint"},
    "/RechercheServicesSouscritsMesures/v1.0": {"rechercherServicesSouscritsMesures"},
    "/CommandeCollectePublicationMesures/v3.0": {"commanderCollectePublicationMesures"},
    "/CommandeArretServiceSouscritMesures/v1.0": {"commanderArretServiceSouscritMesures"},
}
GATEWAY = {
    "/enedis_SGE_ConsultationMesuresDetaillees/1.0": {"consulterMesuresDetaillees", "consulterMesuresDetailleesV3"},
    "/enedis_SGE_ConsultationDonneesTechniquesContractuelles/1.0": {"consulterDonneesTechniquesContractuelles"},
    "/enedis_SGE_RechercheServicesMesures/1.0": {"rechercherPoint", "rechercherServicesSouscritsMesures"},
    "/enedis_SGE_CommandeCollectePublicationMesures/1.0": {"commanderCollectePublicationMesures"},
    "/enedis_SGE_CommandeArretServiceSouscritMesures/1.0": {"commanderArretServiceSouscritMesures"},
}
MEASURE_REQUEST = ("initiateurLogin", "pointId", "mesuresTypeCode", "grandeurPhysique", "dateDebut", "dateFin")
REQUIRED = {
    "rechercherPoint": ("criteres", "loginUtilisateur"),
    "consulterDonneesTechniquesContractuelles": ("pointId", "loginUtilisateur"),
    "rechercherServicesSouscritsMesures": ("criteres/pointId", "criteres/contratId", "loginUtilisateur"),
    "commanderCollectePublicationMesures": (
        "demande/donneesGenerales/objetCode",
        "demande/donneesGenerales/pointId",
        "demande/donneesGenerales/initiateurLogin",
        "demande/donneesGenerales/contratId",
        "demande/accesMesures/dateDebut",
        "demande/accesMesures/dateFin",
        "demande/accesMesures/declarationAccordClient/accord",
        "demande/accesMesures/mesuresTypeCode",
    ),
    "commanderArretServiceSouscritMesures": (
        "demande/donneesGenerales/objetCode",
        "demande/donneesGenerales/pointId",
        "demande/donneesGenerales/contratId",
        "demande/arretServiceSouscrit/serviceSouscritId",
    ),
    "consulterMesuresDetaillees": tuple(f"demande/{n}" for n in (*MEASURE_REQUEST, "soutirage", "injection")),
    "consulterMesuresDetailleesV3": tuple(f"demande/{n}" for n in (*MEASURE_REQUEST, "sens", "cadreAcces")),
}
GRANDEUR_METIER = {"COURBE": "CONS", "ENERGIE": "CONS", "PMAX": "CONS"}
UNITS = {"COURBE": "W", "ENERGIE": "Wh", "PMAX": "VA"}


@dataclass
class Point:
    lastname: str
    address: str
    postal_code: str
    insee: str
    city: str
    segment: str = "C5"
    tariff_changed: date = date(2015, 3, 1)

    @property
    def last_line(self) -> str:
        """The AFNOR address's last line: postal code and city."""
        return f"{self.postal_code} {self.city}"


@dataclass
class Service:
    id: str
    code: str
    label: str
    state: str = "ACTIF"
    start: date = date(2020, 1, 1)
    end: date | None = None
    end_reason: str | None = None


@dataclass
class Faults:
    pending: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def take(self, operation: str) -> tuple[str, str] | None:
        queue = self.pending.get(operation)
        return queue.pop(0) if queue else None


def E(tag: str, *children: Any, **attributes: str) -> etree._Element:
    """An element with children (elements, or text when a str; None is left out)."""
    element = etree.Element(tag, {k: v for k, v in attributes.items() if v is not None})
    for child in children:
        if child is None:
            continue
        if isinstance(child, str):
            element.text = child
        else:
            element.append(child)
    return element


def _absent(element: etree._Element, path: str) -> bool:
    found = element.find(path)
    return found is None or (len(found) == 0 and not (found.text or "").strip())


def _decorate(element: etree._Element) -> None:
    """Unknown optional content as a later version might add: first and last child, one attribute."""
    for node in list(element.iter()):
        if not isinstance(node.tag, str):
            continue
        node.set("versionFuture", "2.1")
        if len(node) == 0:
            continue
        node.insert(0, E("champAjouteAvant", E("detail", "inconnu"), code="X1"))
        node.append(E("champAjouteApres", "inconnu"))


class SgeSandbox(Sandbox):
    name = "enedis-sge"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.points = {POINT: Point("DUPONT", "12 RUE DE LA REPUBLIQUE", "69002", "69382", "LYON")}
        self.services: list[Service] = []
        self.consents: dict[str, dict[str, Any]] = {}
        self.faults = Faults()
        self.today: date | None = None
        self.data_from: date | None = None
        """No measure before this day (a meter that is new, or data Enedis does not have)."""
        self.extras = False
        """Add unknown optional elements and attributes to every answer."""
        self.received: list[etree._Element] = []
        """Every accepted request body element, for tests to inspect."""
        self.exchanges: list[tuple[str, bytes, bytes]] = []
        """(operation, request envelope, answer envelope) of every SOAP call answered."""
        self._ids = itertools.count(1)
        self._consent_lock = threading.Lock()

    def day(self) -> date:
        return self.today or datetime.now(PARIS).date()

    def dev_config(self, layout: str = "gateway") -> dict[str, Any]:
        """The seed's dev-config, as it is (``city``, no ``inseeCode``), for the gateway layout;
        the direct layout names ``sgeBaseUrl`` instead."""
        point = self.points[POINT]
        fields = {
            "pointId": POINT,
            "lastname": point.lastname,
            "firstname": "Marie",
            "address": point.address,
            "sgeLogin": "operator@example.org",
            "postalCode": point.postal_code,
            "city": point.city.title(),
            "contractId": "1111111",
            "boBaseUrl": self.url + "/backoffice/v1",
            "boToken": BO_TOKEN,
        }
        if layout == "gateway":
            fields |= {"wso2BaseUrl": self.url, "apiToken": API_TOKEN}
        else:
            fields |= {"sgeBaseUrl": self.url, "routes": "direct"}
        return {"fields": fields}

    def fail(self, operation: str, code: str, text: str = "Erreur simulée", times: int = 1) -> None:
        self.faults.pending.setdefault(operation, []).extend([(code, text)] * times)

    def oppose(self) -> None:
        """The customer opposes load-curve recording in their Enedis account (the seed's example)."""
        label = "Opposition à l'enregistrement de la courbe de charge"
        self.services.append(Service(f"{next(self._ids):08d}", "OPPENR", label, start=self.day()))

    def terminate_collection(self, today: bool = False) -> None:
        for service in self.services:
            if service.code == "CDC" and service.state == "ACTIF":
                service.state, service.end = "TERMINE", self.day() if today else self.day() - timedelta(1)
                service.end_reason = "Arrêt par le client"

    # back-office

    def _bo_refused(self, request: Request) -> Response | None:
        return None if request.bearer() == BO_TOKEN else json_response({"error": "unauthorized"}, 401)

    @route("GET", "/backoffice/v1/consent")
    def consent_search(self, request: Request) -> Response:
        if refused := self._bo_refused(request):
            return refused
        key = request.query.get("key")
        return json_response([{"id": i, **c} for i, c in self.consents.items() if key and c.get("key") == key])

    @route("POST", "/backoffice/v1/consent")
    def consent_create(self, request: Request) -> Response:
        if refused := self._bo_refused(request):
            return refused
        body = request.json() or {}
        with self._consent_lock:
            taken = next((i for i, c in self.consents.items() if body.get("key") and c.get("key") == body["key"]), None)
            if taken is not None:
                return json_response({"error": "conflict", "id": taken}, 409)
            consent_id = str(next(self._ids))
            self.consents[consent_id] = {**body, "status": "open"}
        return json_response({"id": consent_id}, 201)

    @route("PUT", "/backoffice/v1/consent/{consent_id}")
    def consent_update(self, request: Request) -> Response:
        if refused := self._bo_refused(request):
            return refused
        consent = self.consents.get(request.params["consent_id"])
        if consent is None:
            return json_response({"error": "not found"}, 404)
        consent.update(request.json() or {})
        return json_response(consent)

    # SOAP

    def handle(self, request: Request) -> Response:
        if request.method == "POST" and request.path in GATEWAY and request.bearer() != API_TOKEN:
            self.requests.append(request)
            return Response(401, "Unauthorized", {"Content-Type": "text/plain"})
        return super().handle(request)

    @route("POST", "/{service}/{version}")
    def soap_service(self, request: Request) -> Response:
        served = DIRECT.get(request.path) or GATEWAY.get(request.path)
        if served is None:
            return Response(404, "Unknown service", {"Content-Type": "text/plain"})
        try:
            envelope = parse(request.body, name="SOAP request")
            operation = envelope.find(f"{{{SOAP}}}Body")[0]
        except (UnsafeXml, TypeError, IndexError):
            return self._fault(None, "Requête SOAP illisible", "soap:Client")
        name = etree.QName(operation).localname
        if name not in served or etree.QName(operation).namespace != NAMESPACES.get(name):
            return self._fault(None, f"Opération {operation.tag} inconnue pour {request.path}", "soap:Client")
        missing = next((path for path in REQUIRED[name] if _absent(operation, path)), None)
        if missing:
            return self._fault(None, f"Requête invalide : élément {missing} manquant", "soap:Client")
        self.received.append(operation)
        if injected := self.faults.take(name):
            response = self._fault(*injected)
        else:
            response = getattr(self, f"_{name}")(operation)
        self.exchanges.append((name, request.body, response.encoded()))
        return response

    def _fault(self, code: str | None, text: str, faultcode: str = "soap:Server") -> Response:
        """A SOAP fault; with a code, SGE's ``detail/erreur/resultat@code``."""
        fault = E(f"{{{SOAP}}}Fault", E("faultcode", faultcode), E("faultstring", text))
        if code:
            fault.append(E("detail", E(f"{{{TECHNIQUE}}}erreur", E("resultat", text, code=code))))
        return Response(500, self._envelope(fault, header=False), XML)

    def _envelope(self, body: etree._Element, header: bool = True) -> bytes:
        envelope = etree.Element(f"{{{SOAP}}}Envelope", nsmap={"soap": SOAP})
        if header:
            acknowledgement = E(f"{{{TECHNIQUE}}}acquittement", E("resultat", "Succès", code="SGT200"))
            envelope.append(E(f"{{{SOAP}}}Header", acknowledgement))
        envelope.append(E(f"{{{SOAP}}}Body", body))
        return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")

    def _answer(self, operation: str, *children: Any) -> Response:
        tag = RESPONSES.get(operation, f"{operation}Response")
        root = etree.Element(f"{{{NAMESPACES[operation]}}}{tag}", nsmap={"r": NAMESPACES[operation]})
        for child in children:
            if child is not None:
                root.append(child)
        if self.extras:
            _decorate(root)
        return Response(200, self._envelope(root), XML)

    def _point(self, point_id: str | None) -> Point | Response:
        point = self.points.get(point_id or "")
        return point if point is not None else self._fault("SGT401", "Le point demandé est inconnu")

    def _rechercherPoint(self, operation) -> Response:
        address = operation.find("criteres/adresseInstallation")
        if address is None:
            return self._fault("SGT4F7", "Les critères de recherche sont insuffisants")
        name = operation.findtext("criteres/nomClientFinalOuDenominationSociale")
        insee = address.findtext("codeInseeCommune")
        found = [
            (pid, p)
            for pid, p in self.points.items()
            if p.address == (address.findtext("numeroEtNomVoie") or "").upper()
            and p.postal_code == address.findtext("codePostal")
            and (insee is None or p.insee == insee)
            and (name is None or p.lastname == name.upper())
        ]
        if not found:
            return self._answer("rechercherPoint")
        points = E("points")
        for pid, p in found:
            points.append(
                E(
                    "point",
                    E(
                        "adresseInstallationNormalisee",
                        E("ligne4", p.address),
                        E("ligne6", f"{p.postal_code} {p.city}"),
                    ),
                    E("matricule", "041"),
                    E("typeComptage", E("libelle", "Compteur Linky"), code="LINKY"),
                    E("etatContractuel", E("libelle", "En service"), code="SERVC"),
                    id=pid,
                )
            )
        return self._answer("rechercherPoint", points)

    def _consulterDonneesTechniquesContractuelles(self, operation) -> Response:
        point = self._point(operation.findtext("pointId"))
        if isinstance(point, Response):
            return point
        general = E(
            "donneesGenerales",
            E("etatContractuel", E("libelle", "En service"), code="SERVC"),
            E(
                "adresseInstallation",
                E("numeroEtNomVoie", point.address),
                E("codePostal", point.postal_code),
                E("commune", E("libelle", point.city), code=point.insee),
            ),
            E("dateDerniereModificationFormuleTarifaireAcheminement", point.tariff_changed.isoformat()),
            E("segment", E("libelle", "Segment C5"), code=point.segment),
            E("niveauOuvertureServices", "2"),
        )
        power = E("puissanceSouscriteMax", E("valeur", "9"), E("unite", "kVA"))
        situation = E("situationContractuelle", E("structureTarifaire", power))
        return self._answer(
            "consulterDonneesTechniquesContractuelles",
            E("point", general, situation, id=operation.findtext("pointId")),
        )

    def _rechercherServicesSouscritsMesures(self, operation) -> Response:
        point_id = operation.findtext("criteres/pointId")
        found = E("servicesSouscritsMesures")
        for s in self.services:
            found.append(
                E(
                    "serviceSouscritMesures",
                    E("serviceSouscritId", s.id),
                    E("pointId", point_id),
                    E("serviceSouscritType", code=s.code),
                    E("serviceSouscritLibelle", s.label),
                    E("injection", "false"),
                    E("soutirage", "true"),
                    E("etatCode", s.state),
                    E("dateDebut", s.start.isoformat() + "+01:00"),
                    E("dateFin", s.end.isoformat() + "+01:00") if s.end else None,
                    E("motifFinLibelle", s.end_reason) if s.end_reason else None,
                )
            )
        return self._answer("rechercherServicesSouscritsMesures", found)

    def _commanderCollectePublicationMesures(self, operation) -> Response:
        point = self._point(operation.findtext("demande/donneesGenerales/pointId"))
        if isinstance(point, Response):
            return point
        access = operation.find("demande/accesMesures")
        start, end = (date.fromisoformat(access.findtext(n)) for n in ("dateDebut", "dateFin"))
        if end > start + timedelta(days=365):
            return self._fault("SGT4H4", "La date de fin ne peut pas dépasser un an")
        with self._consent_lock:
            if any(s.code == "CDC" and s.state == "ACTIF" for s in self.services):
                return self._fault("SGT570", "Un service identique est déjà actif")
            if any(s.code == "CDC" and s.end == self.day() for s in self.services):
                return self._fault("SGT570", "Le service a été arrêté aujourd'hui : nouvelle demande possible demain")
            label = "Collecte de la courbe de charge"
            service = Service(f"{next(self._ids):08d}", "CDC", label, start=start)
            self.services.append(service)
        return self._answer("commanderCollectePublicationMesures", E("serviceSouscritId", service.id))

    def _commanderArretServiceSouscritMesures(self, operation) -> Response:
        wanted = operation.findtext("demande/arretServiceSouscrit/serviceSouscritId")
        service = next((s for s in self.services if s.id == wanted and s.state == "ACTIF"), None)
        if service is None:
            return self._fault("SGT401", "Service souscrit inconnu ou déjà arrêté")
        service.state, service.end, service.end_reason = "TERMINE", self.day(), "Arrêt à la demande du fournisseur"
        prestation = E("prestation", E("rang", "1"), E("fiche", E("libelle", "Arrêt de service"), code="F185"))
        return self._answer(
            "commanderArretServiceSouscritMesures",
            E("affaireId", f"A{next(self._ids):07d}"),
            E("prestations", prestation),
        )

    # measures

    def _consulterMesuresDetaillees(self, operation) -> Response:
        return self._measures(operation.find("demande"), v3=False)

    def _consulterMesuresDetailleesV3(self, operation) -> Response:
        return self._measures(operation.find("demande"), v3=True)

    def _measures(self, demande, v3: bool) -> Response:
        point_id = demande.findtext("pointId")
        point = self._point(point_id)
        if isinstance(point, Response):
            return point
        kind = demande.findtext("mesuresTypeCode")
        if kind not in UNITS:
            return self._fault("SGT4F7", f"Type de mesure {kind} non pris en charge")
        start, end = (date.fromisoformat(demande.findtext(n)) for n in ("dateDebut", "dateFin"))
        limit = 7 if kind == "COURBE" else 365 * 3
        if (end - start).days > limit:
            return self._fault("SGT4L8", f"La période demandée est trop longue pour le type de mesure {kind}")
        first = max(start, self.data_from or start)
        days = [first + timedelta(n) for n in range((min(end, self.day()) - first).days)]
        rows = [self._row(when, value, v3) for day in days for when, value in self.rows(kind, day)]
        quantity = demande.findtext("grandeurPhysique")
        if not v3:
            grandeur = E("grandeur", E("grandeurPhysique", quantity), E("unite", UNITS[kind]), *rows)
            return self._answer("consulterMesuresDetaillees", grandeur if rows else None)
        grandeur = None
        if rows:
            grandeur = E("grandeur", E("grandeurMetier", GRANDEUR_METIER[kind]), E("grandeurPhysique", quantity))
            grandeur.extend([E("unite", UNITS[kind]), *rows])
        return self._answer(
            "consulterMesuresDetailleesV3",
            E("pointId", point_id),
            E("mesuresCorrigees", "BRUT"),
            E("periode", E("dateDebut", start.isoformat()), E("dateFin", end.isoformat())),
            grandeur,
            E("modeCalcul", "MOYENNE") if kind == "COURBE" else None,
            E("pas", "P1D") if kind != "COURBE" else None,
        )

    @staticmethod
    def _row(when: datetime, value: float, v3: bool) -> etree._Element:
        if v3:
            return E("points", E("v", f"{value:g}"), E("d", when.strftime("%Y-%m-%d %H:%M:%S")), E("iv", "0"))
        return E("mesure", E("v", f"{value:g}"), E("d", when.isoformat()))

    def curve(self, day: date) -> list[tuple[datetime, int]]:
        """(local end of step, average W) of every half hour of ``day``: the same meter as the Data
        Connect sandbox's (same household values), as both APIs read one Linky."""
        step = timedelta(minutes=30)
        loads = day_loads_kwh(day, 30, PARIS, self.seed)
        return [
            ((local.astimezone(UTC) + step).astimezone(PARIS), round(kwh * 2000))
            for local, kwh in zip(day_steps(day, 30, PARIS), loads, strict=True)
        ]

    def rows(self, kind: str, day: date) -> list[tuple[datetime, float]]:
        curve = self.curve(day)
        midnight = datetime(day.year, day.month, day.day, tzinfo=PARIS)
        if kind == "COURBE":
            return curve
        if kind == "ENERGIE":
            return [(midnight, round(sum(w / 2 for _, w in curve)))]
        return [(midnight, round(max(w for _, w in curve) * 1.15))]
