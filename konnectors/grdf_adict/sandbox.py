"""A local GRDF ADICT API and its consent server, as GRDF documents them.

- OAuth (``/oauth2/aus5y2ta2uEHjCWIR417/v1/…``): ``authorize`` consents at once and redirects
  with a ``code``; ``token`` answers the ``authorization_code`` grant with a metadata-only
  ``access_token`` and an RS256 ``id_token`` whose ``pce`` claim lists the consented meters, and
  the ``client_credentials`` grant (form ``client_id``, ``client_secret``, ``scope=/adict/v2``)
  with ``{"access_token", "token_type", "expires_in": 14400}``; ``keys`` is the JWKS.
- ADICT (``/adict/v2``), bearer token of scope ``/adict/v2`` (else 403): ``droits_acces`` (NDJSON
  ending with a status line), ``PUT pce/{pce}/droit_acces`` (Tiers Direct declaration: the right
  starts "A valider" until the holder accepts), ``PATCH droit_acces/{id}`` (revocation),
  ``pce/{pce}/donnees_consos_informatives`` (one record per gas day, ``consommation: null`` and
  ``statut_restitution`` when missing) and ``donnees_consos_publiees`` (billing periods).
  Answers are ``application/nd-json``; ``pretty`` prints each object over several lines, as
  GRDF's own sandbox does. Booleans are the strings "Vrai"/"Faux".
- Days of the last 30 are ``Provisoire``, older ones ``Définitive``; ``finalize`` publishes a
  corrected final value. More than 2 calls in a second from one client: 429.
- Billing periods (``donnees_consos_publiees``) follow the meter's readings, about a month apart
  and not on calendar months; an answer holds the periods that lie whole inside the dates asked.
- The Tiers Direct declaration needs, for the role ``AUTORISE_CONTRAT_FOURNITURE``, the
  consumption perimeter ``perim_donnees_conso_debut``/``_fin`` (else 400) and answers, as ADICT
  v1.9 does, ``{"code_statut_traitement", "message_retour_traitement", "id_droit_acces"}``.

Shapes a real GRDF sends, switchable per test: ``pce_claim`` (``"pce_id"`` as in GRDF's Client
Connect tokens, the Ecolyo konnector's documentation says), ``pending_state`` (``"À valider"``,
accented), ``liste_acces`` (rights wrapped in ``{"liste_acces": [...]}``), ``null_gas_days``
(``journee_gaziere: null``) and ``bad_energy`` (``energie`` null, non-numeric...).
"""

from __future__ import annotations

import json
import math
import secrets
import time
import uuid
from datetime import date, datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from framework.sandbox import Request, Response, Sandbox, json_response, route

OAUTH = "/oauth2/aus5y2ta2uEHjCWIR417/v1"
CLIENT_ID, CLIENT_SECRET = "grdf-sandbox-client", "grdf-sandbox-secret"
PCE = "GI100000000001"
NDJSON_TYPE = "application/nd-json"
DONE = {"code_statut_traitement": "0000", "message_retour_traitement": "Traitement effectué avec succès"}


class GrdfSandbox(Sandbox):
    name = "grdf-adict"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.pretty = False
        self.today: date | None = None
        self.rights: dict[str, dict[str, Any]] = {}
        self.missing: set[tuple[str, date]] = set()
        self.finals: dict[tuple[str, date], float] = {}
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._codes: dict[str, list[str]] = {}
        self._calls: list[float] = []
        self.pce_claim = "pce"
        self.pending_state = "A valider"
        self.liste_acces = False
        self.declarations: list[dict[str, Any]] = []
        self.null_gas_days: set[tuple[str, date]] = set()
        self.bad_energy: dict[tuple[str, date], Any] = {}

    def day(self) -> date:
        return self.today or date.today()

    def dev_config(self) -> dict[str, Any]:
        tokens = self.consent([PCE])
        fields = {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "base_url": self.url,
            "token_url": self.url + OAUTH + "/token",
            "jwks_url": self.url + OAUTH + "/keys",
        }
        return {"fields": fields, "oauth": tokens}

    # consent

    def consent(self, pces: list[str] | str) -> dict[str, str]:
        """What the platform holds after the user consented: tokens, and Active rights at GRDF."""
        listed = [pces] if isinstance(pces, str) else pces
        for pce in listed:
            self._grant_right(pce, "Active")
        return self._consent_tokens(pces)

    def _consent_tokens(self, pces: list[str] | str) -> dict[str, str]:
        now = int(time.time())
        claims = {
            "iss": self.url + OAUTH,
            "aud": CLIENT_ID,
            "sub": "holder@example.org",
            "iat": now,
            "exp": now + 3600,
            self.pce_claim: pces,
        }
        id_token = jwt.encode(claims, self._key, "RS256", headers={"kid": "grdf-sandbox-key"})
        return {"access_token": self.issue_token(3600, scope="openid"), "id_token": id_token, "token_type": "Bearer"}

    def _grant_right(self, pce: str, state: str, **details: Any) -> dict[str, Any]:
        right = {
            "id_droit_acces": uuid.uuid4().hex[:12],
            "id_pce": pce,
            "etat_droit_acces": state,
            "role_tiers": "AUTORISE_CONTRAT_FOURNITURE",
            "date_debut_droit_acces": self.day().isoformat(),
            "date_fin_droit_acces": (self.day() + timedelta(days=3 * 365)).isoformat(),
            "perim_donnees_informatives": "Vrai",
            "perim_donnees_publiees": "Vrai",
            **details,
        }
        self.rights[right["id_droit_acces"]] = right
        return right

    def accept(self, pce: str) -> None:
        """The holder accepts the e-mail GRDF sent them."""
        for right in self.rights.values():
            if right["id_pce"] == pce and right["etat_droit_acces"] == self.pending_state:
                right["etat_droit_acces"] = "Active"

    def finalize(self, pce: str, day: date, energy: float) -> None:
        """GRDF publishes the final value of a gas day."""
        self.finals[(pce, day)] = energy

    @route("GET", OAUTH + "/authorize")
    def authorize(self, request: Request) -> Response:
        code = secrets.token_urlsafe(12)
        self._codes[code] = [request.query.get("pce", PCE)]
        target = request.query.get("redirect_uri", "http://127.0.0.1/callback")
        return Response(302, b"", {"Location": f"{target}?code={code}&state={request.query.get('state', '')}"})

    @route("GET", OAUTH + "/keys")
    def keys(self, request: Request) -> Response:
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        return json_response({"keys": [{**jwk, "kid": "grdf-sandbox-key", "use": "sig", "alg": "RS256"}]})

    @route("POST", OAUTH + "/token")
    def token(self, request: Request) -> Response:
        form = request.form()
        credentials = request.basic_auth() or (form.get("client_id"), form.get("client_secret"))
        if credentials != (CLIENT_ID, CLIENT_SECRET):
            return json_response({"error": "invalid_client"}, 401)
        if form.get("grant_type") == "authorization_code" and form.get("code") in self._codes:
            pces = self._codes.pop(form["code"])
            tokens = self.consent(pces)
            return json_response({**tokens, "expires_in": 3600, "scope": "openid"})
        if form.get("grant_type") == "client_credentials":
            if form.get("scope") != "/adict/v2":
                return json_response({"error": "invalid_scope"}, 400)
            token = self.issue_token(14400, scope="/adict/v2")
            return json_response(
                {"access_token": token, "token_type": "Bearer", "expires_in": 14400, "scope": "/adict/v2"}
            )
        return json_response({"error": "invalid_grant"}, 400)

    # ADICT

    def _admit(self, request: Request) -> Response | None:
        claims = self.token_claims(request)
        if claims is None:
            return json_response({"code": 401, "message": "Jeton invalide ou expiré"}, 401)
        if claims.get("scope") != "/adict/v2":
            return json_response({"code": 403, "message": "Scope insuffisant pour /adict/v2"}, 403)
        now = time.monotonic()
        self._calls = [t for t in self._calls if now - t < 1] + [now]
        if len(self._calls) > 2:
            return json_response({"code": 429, "message": "Trop de requêtes"}, 429)
        return None

    def _ndjson(self, objects: list[dict[str, Any]], status: int = 200) -> Response:
        indent = 2 if self.pretty else None
        body = "\n".join(json.dumps(o, ensure_ascii=False, indent=indent) for o in objects) + "\n"
        return Response(status, body, {"Content-Type": NDJSON_TYPE})

    def _status(self, code: str, message: str, status: int) -> Response:
        return self._ndjson([{"code_statut_traitement": code, "message_retour_traitement": message}], status)

    @route("GET", "/adict/v2/droits_acces")
    def rights_list(self, request: Request) -> Response:
        if refused := self._admit(request):
            return refused
        if self.liste_acces:
            return self._ndjson([{"liste_acces": list(self.rights.values())}, DONE])
        return self._ndjson([*self.rights.values(), DONE])

    @route("PUT", "/adict/v2/pce/{pce}/droit_acces")
    def declare(self, request: Request) -> Response:
        if refused := self._admit(request):
            return refused
        body = request.json() or {}
        required = (
            "nom_titulaire",
            "code_postal",
            "courriel_titulaire",
            "date_debut_droit_acces",
            "date_fin_droit_acces",
            "role_tiers",
        )
        if body.get("role_tiers") == "AUTORISE_CONTRAT_FOURNITURE":
            required += ("perim_donnees_conso_debut", "perim_donnees_conso_fin")
        if missing := [name for name in required if not body.get(name)]:
            return self._ndjson(
                [{"code_statut_traitement": "1001", "message_retour_traitement": f"Champs manquants: {missing}"}], 400
            )
        right = self._grant_right(
            request.params["pce"],
            self.pending_state,
            nom_titulaire=body["nom_titulaire"],
            perim_donnees_conso_debut=body.get("perim_donnees_conso_debut"),
            perim_donnees_conso_fin=body.get("perim_donnees_conso_fin"),
        )
        self.declarations.append(body)
        answer = {"code_statut_traitement": "0000", "message_retour_traitement": "Demande d'accès créée"}
        return self._ndjson([{**answer, "id_droit_acces": right["id_droit_acces"]}], 201)

    @route("PATCH", "/adict/v2/droit_acces/{right_id}")
    def revoke(self, request: Request) -> Response:
        if refused := self._admit(request):
            return refused
        right = self.rights.get(request.params["right_id"])
        if right is None:
            return self._status("1404", "Droit inconnu", 404)
        right["etat_droit_acces"] = "Révoquée"
        return self._ndjson([right])

    def _active(self, pce: str) -> bool:
        return any(r["id_pce"] == pce and r["etat_droit_acces"] in ("Active", "Actif") for r in self.rights.values())

    def _data_request(self, request: Request) -> tuple[str, date, date] | Response:
        """The PCE and period of a data request, or the refusal GRDF would answer."""
        if refused := self._admit(request):
            return refused
        pce = request.params["pce"]
        if not self._active(pce):
            return json_response({"code": 403, "message": "Aucun droit d'accès actif"}, 403)
        try:
            start, end = date.fromisoformat(request.query["date_debut"]), date.fromisoformat(request.query["date_fin"])
        except (KeyError, ValueError):
            return self._status("1002", "Dates invalides", 400)
        return pce, start, min(end, self.day() - timedelta(1))

    @route("GET", "/adict/v2/pce/{pce}/donnees_consos_informatives")
    def informative(self, request: Request) -> Response:
        asked = self._data_request(request)
        if isinstance(asked, Response):
            return asked
        pce, start, end = asked
        days = [start + timedelta(n) for n in range((end - start).days + 1)]
        return self._ndjson([self._day_record(pce, day) for day in days])

    @route("GET", "/adict/v2/pce/{pce}/donnees_consos_publiees")
    def published(self, request: Request) -> Response:
        asked = self._data_request(request)
        if isinstance(asked, Response):
            return asked
        pce, start, end = asked
        records = []
        for first, following in self.billing_periods(start, end):
            energy = sum(self.energy(pce, first + timedelta(n)) for n in range((following - first).days))
            records.append(
                {
                    "pce": {"id_pce": pce},
                    "consommation": {
                        "date_debut_consommation": first.isoformat(),
                        "date_fin_consommation": following.isoformat(),
                        "energie": round(energy),
                        "volume_brut": round(energy / 11.2, 2),
                        "statut_conso": "Définitive",
                    },
                }
            )
        return self._ndjson(records)

    def billing_periods(self, start: date, end: date) -> list[tuple[date, date]]:
        """The meter's billing periods (first day, next reading's day) lying whole inside [start, end]."""
        periods, first = [], date(2015, 1, 7)
        while first <= end:
            following = first + timedelta(28 + (first.toordinal() * 7 + self.seed) % 7)
            if first >= start and following - timedelta(1) <= end:
                periods.append((first, following))
            first = following
        return periods

    def energy(self, pce: str, day: date) -> float:
        """The gas day's energy in kWh: heating when cold, hot water all year."""
        if (pce, day) in self.finals:
            return self.finals[(pce, day)]
        cold = math.cos(2 * math.pi * (day.timetuple().tm_yday - 15) / 365)
        return float(round(12 + max(0.0, 55 * cold) + (self.seed + day.toordinal()) % 7))

    def _day_record(self, pce: str, day: date) -> dict[str, Any]:
        if (pce, day) in self.missing:
            return {
                "pce": {"id_pce": pce},
                "consommation": None,
                "statut_restitution": {"code": "1000", "message": "Données non disponibles"},
            }
        energy = self.energy(pce, day)
        final = (pce, day) in self.finals or day < self.day() - timedelta(30)
        start = datetime(day.year, day.month, day.day, 6)
        return {
            "pce": {"id_pce": pce},
            "statut_restitution": None,
            "consommation": {
                "date_debut_consommation": start.isoformat(),
                "date_fin_consommation": (start + timedelta(1)).isoformat(),
                "journee_gaziere": None if (pce, day) in self.null_gas_days else day.isoformat(),
                "energie": self.bad_energy.get((pce, day), energy),
                "volume_brut": round(energy / 11.2, 2),
                "coeff_calcul": {"coeff_conversion": 11.2},
                "statut_conso": "Définitive" if final else "Provisoire",
            },
        }
