"""``enedis-sge``: one delivery point's electricity through Enedis' SGE B2B SOAP services.

The operator holds SGE access (a client certificate, or an API gateway token); the
customer's name and address prove the consent. The first run finds the point
from them (and says which field disagrees), reads the contract's start, records
the consent in the operator's back-office and orders the half-hour collection.
Every run checks the subscribed services (an ``OPPENR`` opposition stops the
curve, a terminated collection is ordered again), then reads daily energy,
the curve and max power within SGE's limits, from bookmarks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, ClassVar

import requests
import zeep.helpers

from framework import Chunk, Context, Documents, Konnector, LoginFailed, UserActionNeeded, VendorDown, soap
from framework.errors import KonnectorError
from framework.http import RateLimiter

from . import measures

WSDL = Path(__file__).parent / "wsdl" / "sge.wsdl"
PATHS = {
    "v2": "/ConsultationMesuresDetaillees/v2.0",
    "v3": "/ConsultationMesuresDetaillees/v3.0",
    "dtc": "/ConsultationDonneesTechniquesContractuelles/v1.0",
    "rp": "/RecherchePoint/v2.0",
    "rss": "/RechercherServicesSouscritsMesures/v1.0",
    "ccp": "/CommandeCollectePublicationMesures/v3.0",
    "cas": "/CommandeArretServiceSouscritMesures/v1.0",
}
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


@dataclass(frozen=True)
class Stream:
    name: str
    type_code: str
    quantity: str
    window_days: int
    history_days: int
    look_back_days: int
    parse: Callable[[Any], list[dict[str, Any]]]
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
        curve_allowed = self._check_services(ctx, sge)
        today = ctx.now().astimezone(measures.PARIS).date()
        bookmarks: dict[str, str] = dict(ctx.state.get("bookmark") or {})
        contract_start = date.fromisoformat(ctx.state["consent"]["contract_start"])
        for stream in STREAMS:
            if stream.name == "curve" and not curve_allowed:
                continue
            start = max(
                today - timedelta(int(ctx.parameters.get(f"{stream.name}_history_days", stream.history_days))),
                contract_start,
            )
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
                bookmarks[stream.name] = end.isoformat()
                yield Chunk((stream, answer), bookmark=dict(bookmarks))
                start = end

    def process(self, ctx: Context, raw: tuple[Stream, Any]) -> Documents:
        stream, answer = raw
        return {stream.doctype: stream.parse(answer)}

    def _first_run(self, ctx: Context, sge: _Sge) -> None:
        fields = ctx.fields
        point_id = fields["pointId"]
        if point_id not in sge.search_points(with_name=True):
            if point_id in sge.search_points(with_name=False):
                raise LoginFailed("the last name does not match the one Enedis has for this delivery point")
            raise LoginFailed(
                "the address (street, postal code, INSEE code) does not match the delivery point "
                f"{point_id}: check pointId and the address fields"
            )
        contract = sge.contract()
        consent_id = sge.backoffice_consent()
        service_id = sge.order_collection()  # None when stopped today: the next run orders it
        ctx.state["consent"] = {
            "id": consent_id,
            "service": service_id,
            "segment": contract["segment"],
            "contract_start": contract["start"],
        }
        if service_id:
            sge.backoffice_update(consent_id, {"serviceId": service_id})
        ctx.save_state()
        ctx.log.info(f"consent {consent_id} recorded and collection {service_id} ordered for {point_id}")

    def _check_services(self, ctx: Context, sge: _Sge) -> bool:
        """Whether the half-hour curve can be read; orders the collection again when it ended."""
        services = sge.services()
        if any(s["code"] == "OPPENR" and s["etatCode"] == "ACTIF" for s in services):
            raise UserActionNeeded(
                "the customer opposed the recording of the load curve (OPPENR): to share it, re-enable "
                "the collection in the Enedis customer account"
            )
        consent = ctx.state["consent"]
        ours = next((s for s in services if s["serviceSouscritId"] == consent["service"]), None)
        if ours is not None and ours["etatCode"] == "ACTIF":
            return True
        ordered = sge.order_collection()
        if ordered is None:
            ctx.log.warning(
                "the half-hour collection was stopped today and SGE accepts a new order tomorrow: "
                "the next run orders it; daily data is read meanwhile"
            )
            return False
        consent["service"] = ordered
        ctx.save_state()
        ctx.log.info(f"the half-hour collection had ended: ordered again ({ordered})")
        return True

    def on_delete_account(self, ctx: Context) -> None:
        """Stop the collection (unless already stopped) and close the consent: safe to repeat."""
        consent = ctx.state.get("consent")
        if not consent:
            ctx.log.info("no consent was recorded for this account: nothing to stop")
            return
        sge = _Sge(ctx)
        active = {s["serviceSouscritId"] for s in sge.services() if s["etatCode"] == "ACTIF"}
        if consent["service"] in active:
            sge.stop_collection(consent["service"])
            ctx.log.info(f"collection {consent['service']} stopped")
        else:
            ctx.log.info(f"collection {consent['service']} was already stopped")
        sge.backoffice_update(consent["id"], {"status": "closed"})


class _Sge:
    def __init__(self, ctx: Context) -> None:
        fields = ctx.fields
        self.ctx, self.fields = ctx, fields
        cert = (fields["cert_path"], fields["key_path"]) if fields.get("cert_path") else None
        session = ctx.http("enedis-sge", cert=cert, limiter=RateLimiter(5, capacity=1))
        if fields.get("apiToken"):
            name = fields["apiTokenHeader"]
            session.headers[name] = ("Bearer " if name.lower() == "authorization" else "") + fields["apiToken"]
        client = soap.client(WSDL, session)
        base = fields["wso2BaseUrl"].rstrip("/")
        self.services_by_name = {name: soap.service(client, base + path) for name, path in PATHS.items()}
        self.backoffice = ctx.http("backoffice", base_url=fields["boBaseUrl"].rstrip("/") + "/")
        self.backoffice.headers["Authorization"] = f"Bearer {fields['boToken']}"
        self.today = ctx.now().astimezone(measures.PARIS).date()

    def _call(self, service: str, operation: str, **arguments: Any) -> Any:
        answer = soap.call(getattr(self.services_by_name[service], operation), faults=FAULTS, **arguments)
        return zeep.helpers.serialize_object(answer, dict)

    def search_points(self, with_name: bool) -> set[str]:
        fields = self.fields
        criteria = {
            "adresseInstallation": {
                "numeroEtNomVoie": fields["address"],
                "codePostal": fields["postalCode"],
                "codeInseeCommune": fields["inseeCode"],
            },
            "rechercheHorsPerimetre": True,
        }
        if with_name:
            criteria["nomClientFinalOuDenominationSociale"] = fields["lastname"]
        answer = self._call("rp", "rechercherPoint", criteres=criteria, loginUtilisateur=fields["sgeLogin"])
        return {point["id"] for point in _items(answer, "point")}

    def contract(self) -> dict[str, str]:
        answer = self._call(
            "dtc",
            "consulterDonneesTechniquesContractuelles",
            pointId=self.fields["pointId"],
            loginUtilisateur=self.fields["sgeLogin"],
            autorisationClient=True,
        )
        general = _descend(answer, "point", "donneesGenerales")
        return {"segment": general["segment"], "start": general["dateMiseEnService"].isoformat()}

    def services(self) -> list[dict[str, Any]]:
        answer = self._call(
            "rss",
            "rechercherServicesSouscritsMesures",
            loginUtilisateur=self.fields["sgeLogin"],
            criteres={"pointId": self.fields["pointId"], "contratId": self.fields["contractId"]},
        )
        found = []
        for service in _items(answer, "serviceSouscritMesures"):
            end = service.get("dateFin")
            found.append(
                {
                    "serviceSouscritId": service["serviceSouscritId"],
                    "etatCode": service["etatCode"],
                    "code": service["serviceSouscritType"]["code"],
                    "dateFin": end.isoformat() if end else None,
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
        request = {
            "donneesGenerales": self._general("AME"),
            "accesMesures": {
                "dateDebut": self.today,
                "dateFin": self.today + timedelta(days=364),
                "declarationAccordClient": {
                    "accord": True,
                    "personnePhysique": {"nom": fields["lastname"], "prenom": fields["firstname"]},
                },
                "mesuresTypeCode": "CDC",
                "soutirage": True,
                "injection": False,
                "mesuresPas": "PT30M",
                "mesuresCorrigees": False,
                "transmissionRecurrente": True,
                "periodiciteTransmission": "P1D",
            },
        }
        try:
            return self._call("ccp", "commanderCollectePublicationMesures", demande=request)
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
        self._call("cas", "commanderArretServiceSouscritMesures", demande=request)

    def measures(self, stream: Stream, start: date, end: date) -> Any:
        common = {
            "initiateurLogin": self.fields["sgeLogin"],
            "pointId": self.fields["pointId"],
            "mesuresTypeCode": stream.type_code,
            "grandeurPhysique": stream.quantity,
            "dateDebut": start,
            "dateFin": end,
            "mesuresCorrigees": False,
        }
        if stream.step:
            common["mesuresPas"] = stream.step
        if self.fields["cmd_version"] == "v2":
            demande = {**common, "soutirage": True, "injection": False, "accordClient": True}
            return self._call("v2", "consulterMesuresDetaillees", demande=demande)
        demande = {**common, "sens": "SOUTIRAGE", "cadreAcces": "ACCORD_CLIENT"}
        return self._call("v3", "consulterMesuresDetailleesV3", demande=demande)

    def backoffice_consent(self) -> str:
        fields = self.fields
        body = {key: fields[key] for key in ("pointId", "firstname", "lastname", "address", "postalCode", "inseeCode")}
        body |= {"startDate": self.today.isoformat(), "endDate": (self.today + timedelta(days=365)).isoformat()}
        response = self._backoffice("post", "consent", body)
        return str(response.json()["id"])

    def backoffice_update(self, consent_id: str, changes: dict[str, Any]) -> None:
        self._backoffice("put", f"consent/{consent_id}", changes)

    def _backoffice(self, method: str, path: str, body: dict[str, Any]) -> requests.Response:
        response = self.backoffice.request(method.upper(), path, json=body, idempotent=method == "put")
        if response.status_code in (401, 403):
            raise LoginFailed("the consent back-office refused boToken")
        if response.status_code >= 400:
            raise VendorDown(f"the consent back-office answered {response.status_code} on {path}")
        return response


def _descend(answer: Any, *keys: str) -> Any:
    """Go down ``keys`` as far as they are there: zeep already unwraps an element's only child."""
    for key in keys:
        if isinstance(answer, dict) and key in answer:
            answer = answer[key]
    return answer


def _items(answer: Any, key: str) -> list[Any]:
    """A repeated element's items, whether zeep unwrapped them to the list itself or not."""
    found = _descend(answer, key)
    return found if isinstance(found, list) else []
