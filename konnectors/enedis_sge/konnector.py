"""``enedis-sge``: one delivery point's electricity through Enedis' SGE B2B SOAP services.

The operator holds SGE access (a client certificate, or an API gateway token); the
customer's name and address prove the consent. The first run finds the point
from them (and says which field disagrees), reads the contract and records the
consent in the operator's back-office, once per account whatever happens (a
deterministic key, looked up before it is created). Every run checks the subscribed
services: an ``OPPENR`` opposition stops the load curve only, a missing or ended
collection is ordered; then it reads daily energy, max power and the curve within
SGE's limits, from bookmarks. Answers are read by element name (see ``framework.soap.send``).
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, ClassVar

import requests
from lxml import etree

from framework import Chunk, Context, Documents, Konnector, LoginFailed, UserActionNeeded, VendorDown, soap
from framework.errors import KonnectorError
from framework.http import RateLimiter

from . import measures, routes

WSDL = Path(__file__).parent / "wsdl" / "sge.wsdl"
FAULTS: dict[str, type[KonnectorError]] = {
    "SGT401": LoginFailed,  # unknown point
    "SGT4F7": LoginFailed,  # search criteria
    "SGT4F8": LoginFailed,
    "SGT4G2": UserActionNeeded,  # point not eligible
    "SGT4K2": UserActionNeeded,  # consent required
    "SGT566": UserActionNeeded,
    "SGT583": LoginFailed,  # wrong direction
    "SGT500": VendorDown,  # technical error
}
ALREADY_ACTIVE = "SGT570"
PERIOD_TOO_LONG = {"SGT4L8", "SGT4H4"}
CONSENT_KEYS = uuid.UUID("4f1d7c0e-3b7a-5e55-9c1e-6a8f0e2d5b17")
OPPOSITION = (
    "the customer opposed the recording of the load curve (OPPENR): the half-hour curve cannot be "
    "collected; daily energy and max power still are. To share the curve, re-enable its recording "
    "in the Enedis customer account"
)


@dataclass(frozen=True)
class Stream:
    name: str
    type_code: str
    quantity: str
    window_days: int
    history_days: int
    look_back_days: int
    parse: Callable[..., list[dict[str, Any]]]
    doctype: str
    step: str | None = None


STREAMS = (
    Stream("daily", "ENERGIE", "EA", 365, 3 * 365, 7, measures.daily, measures.DAY),
    Stream("max_power", "PMAX", "PMA", 365, 3 * 365, 7, measures.max_power, measures.MAX_POWER, step="P1D"),
    Stream("curve", "COURBE", "PA", 7, 2 * 365, 2, measures.curve, measures.MINUTE),
)


class EnedisSge(Konnector):
    series = (measures.SERIES,)
    dedup_keys: ClassVar = {measures.MAX_POWER: ("_id",)}

    def fetch(self, ctx: Context) -> Iterator[Chunk]:
        sge = _Sge(ctx)
        if "consent" not in ctx.state:
            self._first_run(ctx, sge)
        curve_allowed, opposed = self._check_services(ctx, sge)
        today = ctx.now().astimezone(measures.PARIS).date()
        bookmarks: dict[str, Any] = dict(ctx.state.get("bookmark") or {})
        known_start = ctx.state["consent"].get("contract_start")
        measured = 0
        for stream in STREAMS:
            if stream.name == "curve" and not curve_allowed:
                continue
            start = today - timedelta(int(ctx.parameters.get(f"{stream.name}_history_days", stream.history_days)))
            if known_start:
                start = max(start, date.fromisoformat(known_start))
            if stream.name in bookmarks:
                start = max(start, date.fromisoformat(bookmarks[stream.name]) - timedelta(stream.look_back_days))
            window = stream.window_days
            while start < today:
                end = min(start + timedelta(window), today)
                try:
                    answer = sge.measures(stream, start, end)
                except soap.SoapFault as fault:
                    if fault.provider_code in PERIOD_TOO_LONG and window > 1:
                        window //= 2
                        continue
                    raise
                found = len(answer.findall("grandeur/points")) + len(answer.findall("grandeur/mesure"))
                measured += found
                bookmarks[stream.name] = end.isoformat()
                if found:
                    bookmarks["measured"] = True
                yield Chunk((stream, answer), bookmark=dict(bookmarks))
                start = end
        if opposed and not measured and not bookmarks.get("measured"):
            raise UserActionNeeded(f"{OPPOSITION}; no daily energy or max power could be read either")

    def process(self, ctx: Context, raw: tuple[Stream, etree._Element]) -> Documents:
        stream, answer = raw
        return {stream.doctype: stream.parse(answer, ctx.log.warning)}

    def _first_run(self, ctx: Context, sge: _Sge) -> None:
        """Check the identity, read the contract, record the consent (once): saved before any order."""
        point_id = ctx.fields["pointId"]
        found = sge.search_points(with_name=True)
        if point_id not in found:
            if point_id in sge.search_points(with_name=False):
                raise LoginFailed("the last name does not match the one Enedis has for this delivery point")
            raise LoginFailed(
                "the address (street, postal code, INSEE code) does not match the delivery point "
                f"{point_id}: check pointId and the address fields"
            )
        _check_city(ctx.fields.get("city"), found[point_id])
        contract = sge.contract()
        consent_id = sge.backoffice_consent()
        ctx.state["consent"] = {"id": consent_id, "service": None, **contract}
        ctx.save_state()
        ctx.log.info(f"consent {consent_id} recorded for {point_id}")

    def _check_services(self, ctx: Context, sge: _Sge) -> tuple[bool, bool]:
        """(whether the half-hour curve can be read, whether the customer opposes its recording).

        Orders the collection when ours is missing or ended (not under an opposition).
        """
        services = sge.services()
        if any(s["code"] == "OPPENR" and s["etatCode"] == "ACTIF" for s in services):
            ctx.log.warning(OPPOSITION)
            return False, True
        consent = ctx.state["consent"]
        ours = next((s for s in services if s["serviceSouscritId"] == consent["service"]), None)
        if ours is not None and ours["etatCode"] == "ACTIF":
            return True, False
        ordered = sge.order_collection()
        if ordered is None:
            ctx.log.warning(
                "the half-hour collection was stopped today and SGE accepts a new order tomorrow: "
                "the next run orders it; daily data is read meanwhile"
            )
            return False, False
        again = consent["service"] is not None
        consent["service"] = ordered
        sge.backoffice_update(consent["id"], {"serviceId": ordered})
        ctx.save_state()
        ctx.log.info(
            f"the half-hour collection had ended: ordered again ({ordered})"
            if again
            else f"collection {ordered} ordered"
        )
        return True, False

    def on_delete_account(self, ctx: Context) -> None:
        """Stop the collection (unless already stopped) and close every consent of the account.

        Consents are found by the account's key at the back-office, so one recorded by a run
        that crashed before saving its state is closed too. Safe to repeat; fails if a consent
        cannot be closed.
        """
        sge = _Sge(ctx)
        ours = (ctx.state.get("consent") or {}).get("service")
        active = [s["serviceSouscritId"] for s in sge.services() if s["etatCode"] == "ACTIF" and s["code"] != "OPPENR"]
        # the state may not know a collection ordered by a run that crashed: stop what is active then
        for service in [ours] if ours else active:
            if service in active:
                sge.stop_collection(service)
                ctx.log.info(f"collection {service} stopped")
            else:
                ctx.log.info(f"collection {service} was already stopped")
        consents = sge.backoffice_find()
        if not consents:
            ctx.log.info("no consent was recorded for this account")
        for consent in consents:
            if consent.get("status") != "closed":
                sge.backoffice_update(str(consent["id"]), {"status": "closed"})
            ctx.log.info(f"consent {consent['id']} closed")


def _normalised(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().upper()
    words = "".join(c if c.isalnum() else " " for c in plain).split()
    return " ".join("ST" if w == "SAINT" else "STE" if w == "SAINTE" else w for w in words if w != "CEDEX")


def _check_city(city: str | None, last_line: str) -> None:
    """The ``city`` field against the point's AFNOR last line ("69002 LYON"), when both are known."""
    if not city or not last_line:
        return
    theirs = _normalised(last_line.split(" ", 1)[-1] if last_line[:5].isdigit() else last_line)
    ours = _normalised(city)
    if not (theirs.startswith(ours) or ours.startswith(theirs)):
        raise LoginFailed(f"the city does not match the one Enedis has for this delivery point ({theirs})")


class _Sge:
    def __init__(self, ctx: Context) -> None:
        fields = ctx.fields
        self.ctx, self.fields = ctx, fields
        cert = (fields["cert_path"], fields["key_path"]) if fields.get("cert_path") else None
        session = ctx.http("enedis-sge", cert=cert, limiter=RateLimiter(5, capacity=1))
        if fields.get("apiToken"):
            name = fields["apiTokenHeader"]
            session.headers[name] = ("Bearer " if name.lower() == "authorization" else "") + fields["apiToken"]
        self.client = soap.client(WSDL, session)
        self.addresses = routes.addresses(fields, ctx.parameters.get("sge_routes"))
        self._services: dict[str, Any] = {}
        self.backoffice = ctx.http("backoffice", base_url=fields["boBaseUrl"].rstrip("/") + "/")
        self.backoffice.headers["Authorization"] = f"Bearer {fields['boToken']}"
        self.today = ctx.now().astimezone(measures.PARIS).date()
        self.key = str(uuid.uuid5(CONSENT_KEYS, f"{ctx.account.id}:{fields['pointId']}"))

    def _call(self, operation: str, **arguments: Any) -> etree._Element:
        address = self.addresses[operation]
        if address not in self._services:
            self._services[address] = soap.service(self.client, address)
        return soap.send(self._services[address], operation, faults=FAULTS, **arguments)

    def search_points(self, with_name: bool) -> dict[str, str]:
        """Point id -> the last line of its normalised address, for the address (and name)."""
        fields = self.fields
        address = {"numeroEtNomVoie": fields["address"], "codePostal": fields["postalCode"]}
        if fields.get("inseeCode"):
            address["codeInseeCommune"] = fields["inseeCode"]
        criteria: dict[str, Any] = {"adresseInstallation": address}
        if with_name:
            criteria["nomClientFinalOuDenominationSociale"] = fields["lastname"]
        criteria["rechercheHorsPerimetre"] = True
        answer = self._call("rechercherPoint", criteres=criteria, loginUtilisateur=fields["sgeLogin"])
        found = {}
        for point in answer.findall("points/point"):
            if not point.get("id"):
                raise VendorDown("the rechercherPoint answer has a point without its id attribute, which we need")
            found[point.get("id")] = (point.findtext("adresseInstallationNormalisee/ligne6") or "").strip()
        return found

    def contract(self) -> dict[str, str | None]:
        operation = "consulterDonneesTechniquesContractuelles"
        answer = self._call(
            operation, pointId=self.fields["pointId"], loginUtilisateur=self.fields["sgeLogin"], autorisationClient=True
        )
        general = soap.need(answer, "point/donneesGenerales", operation)
        segment = general.find("segment")
        start = (general.findtext("dateDerniereModificationFormuleTarifaireAcheminement") or "").strip()[:10]
        try:
            start = date.fromisoformat(start).isoformat() if start else None
        except ValueError:
            self.ctx.log.warning(f"contract start {start!r} is not a date: the full history is read")
            start = None
        return {"segment": segment.get("code") if segment is not None else None, "contract_start": start}

    def services(self) -> list[dict[str, Any]]:
        operation = "rechercherServicesSouscritsMesures"
        answer = self._call(
            operation,
            loginUtilisateur=self.fields["sgeLogin"],
            criteres={"pointId": self.fields["pointId"], "contratId": self.fields["contractId"]},
        )
        found = []
        for service in answer.findall("servicesSouscritsMesures/serviceSouscritMesures"):
            kind = soap.need(service, "serviceSouscritType", operation).get("code")
            if not kind:
                raise VendorDown(f"the {operation} answer has a serviceSouscritType without its code, which we need")
            found.append(
                {
                    "serviceSouscritId": soap.need_text(service, "serviceSouscritId", operation),
                    "etatCode": soap.need_text(service, "etatCode", operation),
                    "code": kind,
                }
            )
        return found

    def _general(self, object_code: str) -> dict[str, str]:
        fields = self.fields
        return {
            "objetCode": object_code,
            "pointId": fields["pointId"],
            "initiateurLogin": fields["sgeLogin"],
            "contratId": fields["contractId"],
        }

    def order_collection(self) -> str | None:
        """Order the half-hour collection; its id, or None when SGE refuses a restart until tomorrow."""
        fields = self.fields
        person = {"nom": fields["lastname"]}
        if fields.get("firstname"):
            person["prenom"] = fields["firstname"]
        request = {
            "donneesGenerales": self._general("AME"),
            "accesMesures": {
                "dateDebut": self.today,
                "dateFin": self.today + timedelta(days=364),
                "declarationAccordClient": {"accord": True, "personnePhysique": person},
                "mesuresTypeCode": "CDC",
                "soutirage": True,
                "injection": False,
                "mesuresPas": "PT30M",
                "mesuresCorrigees": False,
                "transmissionRecurrente": True,
                "periodiciteTransmission": "P1D",
            },
        }
        operation = "commanderCollectePublicationMesures"
        try:
            return soap.need_text(self._call(operation, demande=request), "serviceSouscritId", operation)
        except soap.SoapFault as fault:
            if fault.provider_code != ALREADY_ACTIVE:
                raise
        active = [s for s in self.services() if s["code"] != "OPPENR" and s["etatCode"] == "ACTIF"]
        return active[0]["serviceSouscritId"] if active else None

    def stop_collection(self, service_id: str) -> None:
        request = {
            "donneesGenerales": self._general("ASS"),
            "arretServiceSouscrit": {"serviceSouscritId": service_id},
        }
        self._call("commanderArretServiceSouscritMesures", demande=request)

    def measures(self, stream: Stream, start: date, end: date) -> etree._Element:
        common = {
            "initiateurLogin": self.fields["sgeLogin"],
            "pointId": self.fields["pointId"],
            "mesuresTypeCode": stream.type_code,
            "grandeurPhysique": stream.quantity,
        }
        if self.fields["cmd_version"] == "v2":
            demande = {**common, "soutirage": True, "injection": False, "dateDebut": start, "dateFin": end}
            if stream.step:
                demande["mesuresPas"] = stream.step
            demande |= {"mesuresCorrigees": False, "accordClient": True}
            return self._call("consulterMesuresDetaillees", demande=demande)
        demande = {**common, "dateDebut": start, "dateFin": end}
        if stream.step:
            demande["mesuresPas"] = stream.step
        demande |= {"mesuresCorrigees": False, "sens": "SOUTIRAGE", "cadreAcces": "ACCORD_CLIENT"}
        return self._call("consulterMesuresDetailleesV3", demande=demande)

    # The operator's consent back-office (REST): consents carry the account's key, so a
    # consent recorded by a run that crashed before saving its state is found, not doubled.

    def backoffice_find(self) -> list[dict[str, Any]]:
        found = self._backoffice("get", f"consent?key={self.key}").json()
        if not isinstance(found, list):
            raise VendorDown("the consent back-office did not answer a list to a consent search")
        return [c for c in found if isinstance(c, dict) and c.get("key") == self.key and "id" in c]

    def backoffice_consent(self) -> str:
        """The account's consent: the one recorded already, else a new one."""
        existing = self.backoffice_find()
        if existing:
            return self._reopened(existing)
        fields = self.fields
        body = {key: fields.get(key) for key in ("pointId", "firstname", "lastname", "address", "postalCode")}
        body |= {"city": fields.get("city"), "inseeCode": fields.get("inseeCode"), "key": self.key}
        body |= {"startDate": self.today.isoformat(), "endDate": (self.today + timedelta(days=365)).isoformat()}
        response = self._backoffice("post", "consent", body, conflict_ok=True)
        if response.status_code == 409:  # a concurrent first run (or a retried POST) recorded it just now
            existing = self.backoffice_find()
            if not existing:
                raise VendorDown("the consent back-office refused a consent as a duplicate but lists none")
            return self._reopened(existing)
        return str(response.json()["id"])

    def _reopened(self, consents: list[dict[str, Any]]) -> str:
        """An open one of the account's consents; a closed one (the account was deleted) is reopened."""
        open_ones = [c for c in consents if c.get("status") != "closed"]
        if open_ones:
            return str(open_ones[0]["id"])
        consent_id = str(consents[0]["id"])
        dates = {"startDate": self.today.isoformat(), "endDate": (self.today + timedelta(days=365)).isoformat()}
        self.backoffice_update(consent_id, {"status": "open", **dates})
        return consent_id

    def backoffice_update(self, consent_id: str, changes: dict[str, Any]) -> None:
        self._backoffice("put", f"consent/{consent_id}", changes)

    def _backoffice(
        self, method: str, path: str, body: dict[str, Any] | None = None, conflict_ok: bool = False
    ) -> requests.Response:
        # a POST is safe to retry: the key makes a second create a 409, not a second consent
        response = self.backoffice.request(method.upper(), path, json=body)
        if response.status_code in (401, 403):
            raise LoginFailed("the consent back-office refused boToken")
        if response.status_code == 409 and conflict_ok:
            return response
        if response.status_code >= 400:
            raise VendorDown(f"the consent back-office answered {response.status_code} on {path.split('?')[0]}")
        try:
            response.json()
        except ValueError:
            raise VendorDown(f"the consent back-office sent no JSON on {path.split('?')[0]}") from None
        return response
