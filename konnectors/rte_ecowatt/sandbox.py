"""A local RTE Ecowatt v5, as RTE documents it.

- ``POST /token/oauth/`` with HTTP Basic client credentials (the form may be empty):
  ``{"access_token", "token_type": "Bearer", "expires_in": 7199}``; wrong credentials: 401.
- ``GET /open_api/ecowatt/v5/signals`` and ``.../sandbox/signals`` with the bearer token:
  today and the next three days, **not sorted**, ``jour`` at local midnight with its offset,
  one value per real hour (23 or 25 on DST days). 403 for an application not subscribed.
- One call per 15 minutes per application, counted on both data paths: else 429, with a
  ``Retry-After`` (seconds left) unless ``retry_after_header`` is off.
- ``revise(day, {pas: hvalue})`` changes a day's forecast and its generation time, as RTE does.
- ``overrides[day]`` replaces fields of a day's signal, for answers a real RTE sends now and then
  (a ``dvalue`` of 0 outside the documented 1–3, a null, a missing field).
Time is the sandbox's own clock (``advance(seconds)`` moves it), so tests can pass 15 minutes.
"""

from __future__ import annotations

import random
import time
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from framework.sandbox import Request, Response, Sandbox, json_response, route

PARIS = ZoneInfo("Europe/Paris")
QUOTA_SECONDS = 900
MESSAGES = {
    1: "Pas d'alerte.",
    2: "Système électrique tendu. Les écogestes sont les bienvenus.",
    3: "Système électrique très tendu. Coupures inévitables si nous ne baissons pas notre consommation.",
}
CLIENT_ID, CLIENT_SECRET = "ecowatt-sandbox-client", "ecowatt-sandbox-secret"


class EcowattSandbox(Sandbox):
    name = "rte-ecowatt"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.clients = {CLIENT_ID: CLIENT_SECRET}
        self.subscribed = {CLIENT_ID}
        self.today: date | None = None
        self.retry_after_header = True
        self._offset = 0.0
        self._last_call: dict[str, float] = {}
        self._revisions: dict[date, dict[int, int]] = {}
        self._generated: dict[date, str] = {}
        self.overrides: dict[date, dict[str, Any]] = {}

    def dev_config(self) -> dict[str, Any]:
        fields = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "base_url": self.url, "sandbox": False}
        return {"fields": fields}

    def now(self) -> float:
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        self._offset += seconds

    def revise(self, day: date, hours: dict[int, int]) -> None:
        self._revisions.setdefault(day, {}).update(hours)
        self._generated[day] = datetime.fromtimestamp(self.now(), PARIS).isoformat(timespec="seconds")

    @route("POST", "/token/oauth/")
    def token(self, request: Request) -> Response:
        credentials = request.basic_auth()
        if credentials is None or self.clients.get(credentials[0]) != credentials[1]:
            return json_response({"error": "invalid_client", "error_description": "Bad credentials"}, 401)
        token = self.issue_token(lifetime=7199, client_id=credentials[0])
        return json_response({"access_token": token, "token_type": "Bearer", "expires_in": 7199})

    @route("GET", "/open_api/ecowatt/v5/signals")
    def signals(self, request: Request) -> Response:
        claims = self.token_claims(request)
        if claims is None:
            return json_response({"error": "invalid_token"}, 401)
        client = claims["client_id"]
        if client not in self.subscribed:
            return json_response({"error": "ECOWATT_403", "error_description": "application not subscribed"}, 403)
        last = self._last_call.get(client)
        if last is not None and self.now() - last < QUOTA_SECONDS:
            headers = (
                {"Retry-After": str(int(QUOTA_SECONDS - (self.now() - last)) + 1)} if self.retry_after_header else {}
            )
            return json_response({"error": "ECOWATT_429", "error_description": "Rate limit exceeded"}, 429, **headers)
        self._last_call[client] = self.now()
        first = self.today or datetime.fromtimestamp(self.now(), PARIS).date()
        days = [first + timedelta(n) for n in (2, 0, 3, 1)]
        return json_response({"signals": [self._signal(day) for day in days]})

    sandbox_signals = route("GET", "/open_api/ecowatt/v5/sandbox/signals")(lambda self, request: self.signals(request))

    def _signal(self, day: date) -> dict[str, Any]:
        midnight = datetime(day.year, day.month, day.day, tzinfo=PARIS)
        next_midnight = midnight + timedelta(days=1)
        hours = round(next_midnight.timestamp() - midnight.timestamp()) // 3600
        values = {pas: self._level(day, pas) for pas in range(hours)}
        values.update(self._revisions.get(day, {}))
        worst = max(values.values())
        generated = self._generated.get(day) or (midnight - timedelta(hours=7)).isoformat()
        return {
            "GenerationFichier": generated,
            "jour": midnight.isoformat(),
            "dvalue": max(1, worst),
            "message": MESSAGES[max(1, worst)],
            "values": [{"pas": pas, "hvalue": level} for pas, level in values.items()],
            **self.overrides.get(day, {}),
        }

    def _level(self, day: date, pas: int) -> int:
        """Nights decarbonised, winter evenings sometimes tense: the same for the same seed."""
        roll = random.Random(f"{self.seed}:{day.isoformat()}").random()
        if pas < 5:
            return 0
        if day.month in (11, 12, 1, 2) and 17 <= pas <= 19 and roll > 0.6:
            return 3 if roll > 0.9 and pas == 18 else 2
        return 1
