"""A local Météo-France DPObs (observations) API, as the portal documents it.

- Auth, either: header ``apikey: <key>``; or OAuth2 client credentials at ``POST /token``
  (HTTP Basic, ``grant_type=client_credentials``; token valid 1 h; a new token invalidates
  the client's previous one). A bad or stale token: 401 with a WSO2 fault "Invalid JWT token".
- ``GET /public/DPObs/v1/liste-stations``: CSV separated by ``;``.
- ``GET /public/DPObs/v1/station/horaire?id_station=<8 digits>&date=<YYYY-MM-DDTHH:00:00Z>&format=json``
  and ``/station/infrahoraire-6m`` (6-minute steps): a JSON array of observations, in SI units,
  with nulls for what the station does not measure. Hours older than 24 h, in the future, or of
  an unknown station: 200 with ``[]``. A malformed parameter: 400 with a WSO2 ``am:fault``.
- 50 requests a minute per application: else 429 with ``Retry-After``. Not subscribed: 403.

``overrides[hour]`` replaces fields of that hour's observation, for payloads a real feed sends now
and then: a value as a string, a bare ``NaN`` token (Python's JSON writes one for a float NaN),
a null ``validity_time``.
"""

from __future__ import annotations

import math
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from framework.sandbox import Request, Response, Sandbox, json_response, route

API_KEY = "meteofrance-sandbox-key"
CLIENT_ID, CLIENT_SECRET = "meteofrance-sandbox-client", "meteofrance-sandbox-secret"
BASE = "/public/DPObs/v1"
STATIONS = [
    ("75114001", "PARIS-MONTSOURIS", 48.821667, 2.337833, 75),
    ("69029001", "LYON-BRON", 45.721333, 4.938833, 198),
    ("13054001", "MARIGNANE", 43.437667, 5.216, 9),
    ("33281001", "BORDEAUX-MERIGNAC", 44.830667, -0.691333, 47),
    ("59343001", "LILLE-LESQUIN", 50.57, 3.0975, 47),
]
NO_SUNSHINE = {"59343001"}
"""Stations without sunshine and radiation sensors: those fields are null."""
QUOTA, WINDOW = 50, 60.0


def fault(status: int, code: str, message: str, description: str, namespace: str = "http://wso2.org/apimanager"):
    body = (
        f'<am:fault xmlns:am="{namespace}"><am:code>{code}</am:code><am:message>{message}</am:message>'
        f"<am:description>{description}</am:description></am:fault>"
    )
    return Response(status, body, {"Content-Type": "application/xml"})


class MeteoFranceSandbox(Sandbox):
    name = "meteofrance-obs"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.api_keys = {API_KEY}
        self.clients = {CLIENT_ID: CLIENT_SECRET}
        self.subscribed = {API_KEY, CLIENT_ID}
        self.missing: set[datetime] = set()
        """Hours (UTC) for which no observation is published."""
        self.overrides: dict[datetime, dict[str, Any]] = {}
        self._current_token: dict[str, str] = {}
        self._calls: dict[str, list[float]] = {}

    def dev_config(self) -> dict[str, Any]:
        return {"fields": {"apiKey": API_KEY, "latitude": "45.76", "longitude": "4.84", "base_url": self.url + BASE}}

    @route("POST", "/token")
    def token(self, request: Request) -> Response:
        credentials = request.basic_auth()
        if credentials is None or self.clients.get(credentials[0]) != credentials[1]:
            return json_response({"error": "invalid_client"}, 401)
        if request.form().get("grant_type") != "client_credentials":
            return json_response({"error": "unsupported_grant_type"}, 400)
        token = self.issue_token(lifetime=3600, client=credentials[0])
        self._current_token[credentials[0]] = token
        return json_response({"access_token": token, "scope": "default", "token_type": "Bearer", "expires_in": 3600})

    def _caller(self, request: Request) -> str | Response:
        key = request.header("apikey")
        if key is not None:
            return key if key in self.api_keys else fault(401, "900901", "Invalid Credentials", "Invalid API key")
        claims = self.token_claims(request)
        if claims is None or self._current_token.get(claims["client"]) != request.bearer():
            return fault(
                401,
                "900901",
                "Invalid Credentials",
                "Invalid JWT token. Make sure you have provided the correct security credentials",
                "http://wso2.org/apimanager/security",
            )
        return claims["client"]

    def _admit(self, request: Request) -> Response | None:
        caller = self._caller(request)
        if isinstance(caller, Response):
            return caller
        if caller not in self.subscribed:
            return fault(403, "900908", "Resource forbidden", "The application is not subscribed to DPObs")
        now = time.monotonic()
        recent = [t for t in self._calls.get(caller, []) if now - t < WINDOW]
        if len(recent) >= QUOTA:
            wait = int(WINDOW - (now - recent[0])) + 1
            throttled = fault(429, "900802", "Message throttled out", "quota of 50 requests per minute reached")
            throttled.headers["Retry-After"] = str(wait)
            return throttled
        self._calls[caller] = [*recent, now]
        return None

    @route("GET", BASE + "/liste-stations")
    def stations(self, request: Request) -> Response:
        if refused := self._admit(request):
            return refused
        lines = ["Id_station;Id_omm;Nom_usuel;Latitude;Longitude;Altitude;Date_ouverture;Pack"]
        lines += [
            f"{i};0{n};{name};{lat};{lon};{alt};1990-01-01;RADOME"
            for n, (i, name, lat, lon, alt) in enumerate(STATIONS)
        ]
        return Response(200, "\n".join(lines) + "\n", {"Content-Type": "text/csv"})

    @route("GET", BASE + "/station/horaire")
    def hourly(self, request: Request) -> Response:
        return self._observations(request, timedelta(hours=1))

    @route("GET", BASE + "/station/infrahoraire-6m")
    def six_minutes(self, request: Request) -> Response:
        return self._observations(request, timedelta(minutes=6))

    def _observations(self, request: Request, step: timedelta) -> Response:
        if refused := self._admit(request):
            return refused
        station, stamp = request.query.get("id_station", ""), request.query.get("date", "")
        try:
            when = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            return fault(400, "900400", "Bad request", f"date must be YYYY-MM-DDTHH:MM:SSZ, got {stamp!r}")
        if not (len(station) == 8 and station.isdigit()):
            return fault(400, "900400", "Bad request", "id_station must have 8 digits")
        now = datetime.now(UTC)
        known = {s[0] for s in STATIONS}
        if station not in known or when > now or when < now - timedelta(hours=24) or when in self.missing:
            return json_response([])
        return json_response(
            [self.observation(station, when)]
            if step == timedelta(hours=1)
            else [self.observation(station, when + step * n) for n in range(10) if when + step * n <= now]
        )

    def observation(self, station: str, when: datetime) -> dict[str, Any]:
        """The observation the sandbox publishes for ``station`` at ``when``: the same for the same seed."""
        rng = random.Random(f"{self.seed}:{station}:{when.isoformat()}")
        season = -math.cos(2 * math.pi * (when.timetuple().tm_yday - 15) / 365)
        daily = -math.cos(2 * math.pi * (when.hour - 3) / 24)
        t = round(273.15 + 12 + 8 * season + 5 * daily + rng.uniform(-1, 1), 2)
        sunny = station not in NO_SUNSHINE
        return {
            "lat": 0.0,
            "lon": 0.0,
            "geo_id_insee": station,
            "reference_time": when.isoformat().replace("+00:00", "Z"),
            "insert_time": (when + timedelta(minutes=12)).isoformat().replace("+00:00", "Z"),
            "validity_time": when.isoformat().replace("+00:00", "Z"),
            "t": t,
            "td": round(t - rng.uniform(1, 6), 2),
            "tx": round(t + 0.4, 2),
            "tn": round(t - 0.4, 2),
            "u": rng.randint(40, 95),
            "dd": rng.randrange(0, 360, 10),
            "ff": round(rng.uniform(0, 9), 1),
            "rr1": round(rng.choice([0, 0, 0, 0.2, 1.4]), 1),
            "pres": rng.randint(98000, 103000),
            "pmer": rng.randint(99000, 104000),
            "insolh": rng.randint(0, 60) if sunny and 7 <= when.hour <= 18 else (0 if sunny else None),
            "ray_glo01": rng.randint(0, 2_000_000) if sunny else None,
            "vv": None,
            "etat_sol": None,
            **self.overrides.get(when, {}),
        }
