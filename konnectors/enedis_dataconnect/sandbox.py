"""A local Enedis Data Connect, both API generations, as Enedis documents them.

- ``GET /dataconnect/v1/oauth2/authorize?client_id&response_type=code&state&duration`` consents
  at once and redirects to the client's ``redirect_uri`` with ``code``, ``state`` and
  ``usage_point_id``; as in Enedis' own sandbox, the last digit of ``state`` picks the customer.
- ``POST /oauth2/v3/token``: ``authorization_code`` and ``refresh_token`` grants (v4 tokens,
  bound to a usage point) and ``client_credentials`` (v5; ``expires_in`` is a string), client
  authentication by HTTP Basic or in the form.
- v4 ``/v4/metering_data/daily_consumption`` and ``/consumption_load_curve``; v5
  ``/metering_data_dc/v5/daily_consumption``, ``/metering_data_clc/v5/consumption_load_curve``,
  ``/metering_data_dcmp/v5/daily_consumption_max_power``. Query ``usage_point_id``, ``start``,
  ``end`` (excluded, at most today). Numbers are strings; curve readings are dated at the end of
  their interval in Paris local time, with their ``interval_length``; missing days are absent.
- Errors as ``{"error", "error_description"}``: 403 ``ADAM-DC-0008`` no consent; 400
  ``ADAM-DC-0009`` start before the consent or the history kept (36 months daily, 24 months
  curve); 400 ``ADAM-ERR0123`` start before the meter's activation; 400 ``ADAM-ERR0126`` (v4) /
  ``ADAM-DC-0015`` (v5) window too long (7 days of curve, 365 of daily: the same codes are used
  for both); 400 ``ADAM-ERR0075`` load-curve recording refused by the customer; 404
  ``no_data_found``; 429 "Quota Q3/Q4 reached" past 5 calls a second or 10,000 an hour. Enedis
  counts these quotas per *application* (the ``client_id`` the token was issued to, each with its
  own quota whatever the number of callers): the sandbox knows several applications (``clients``,
  :meth:`EnedisSandbox.add_application`) and counts each one's calls apart.

The quotas, 5 data calls a second and 10,000 an hour:
"Les API d'Enedis limitent le nombre d'appels par société, à savoir : 5 appels par seconde,
10 000 appels par heure" (MyElectricalData, whose gateway calls Data Connect for its users:
https://github.com/m4dm4rtig4n/myelectricaldata/wiki/01.-Home; the founding documents in seeds/
do not state it). Users report the answer as a 429 naming the quota ("Quota Q4 reached",
guillaumezin/DomoticzLinky#84), sent by Enedis' API gateway: a call counts when it ARRIVES at
the gateway, before the backend's latency, and a refused call comes back at once. So here: a
data call with a valid token is counted in :meth:`EnedisSandbox.admit` against the quota of the
application its token was issued to, over any sliding second
(the strictest reading of "5 a second"), then the latency is slept.

Synthetic values: :func:`framework.testing.household.day_loads_kwh`, one seeded generator per
day, so that a 365-day daily or max-power answer costs milliseconds of CPU, not the seconds that
would add themselves to the latency asked for (a benchmark's provider latency must be its own).

Payload shapes a real Enedis sends now and then, switchable per test: ``bad_values[day]``
replaces every value of that day, daily, max power and curve (a non-numeric
string, ``"NaN"``, ``null``: Enedis later removes bad data, as the Ecolyo konnector's
documentation says); ``publication_delay_days`` holds back the last days (Enedis publishes the
curve and daily data of a day late, sometimes several days late).
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from framework.sandbox import Request, Response, Sandbox, json_response, route
from framework.testing.household import day_loads_kwh, day_steps

PARIS = ZoneInfo("Europe/Paris")
CLIENT_ID, CLIENT_SECRET = "enedis-sandbox-client", "enedis-sandbox-secret"
DAILY = {"/v4/metering_data/daily_consumption", "/metering_data_dc/v5/daily_consumption"}
CURVE = {"/v4/metering_data/consumption_load_curve", "/metering_data_clc/v5/consumption_load_curve"}
MAX_POWER = "/metering_data_dcmp/v5/daily_consumption_max_power"
PER_SECOND, PER_HOUR = 5, 10_000
"""The application's quota (see the module's docstring)."""


@dataclass
class Customer:
    usage_point: str
    step: int = 30
    consent: bool = True
    curve_refused: bool = False
    activated_days_ago: int | None = None
    missing: set[date] = field(default_factory=set)


def customers() -> dict[str, Customer]:
    """The simulated customers; the last digit of the usage point (and of ``state``) picks one."""
    found = [
        Customer("22516914714270"),
        Customer("22516914714271", consent=False),
        Customer("22516914714272", curve_refused=True),
        Customer("22516914714273", step=10),
        Customer("22516914714274", activated_days_ago=100),
    ]
    return {c.usage_point: c for c in found}


def _error(status: int, code: str, description: str) -> Response:
    return json_response({"error": code, "error_description": description}, status)


class EnedisSandbox(Sandbox):
    name = "enedis-dataconnect"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.customers = customers()
        self.today: date | None = None
        self.redirect_uri = "http://127.0.0.1/callback"
        self._codes: dict[str, str] = {}
        self._refresh: dict[str, str] = {}
        self.clients = {CLIENT_ID: CLIENT_SECRET}
        self._calls: dict[str, deque[float]] = {}
        """Data calls of the last hour, per application (client_id)."""
        self._quota_lock = threading.Lock()
        self.bad_values: dict[date, Any] = {}
        self.publication_delay_days = 0

    def dev_config(self) -> dict[str, Any]:
        fields = {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "base_url": self.url,
            "api_version": "v5",
            "usage_point_id": "22516914714270",
        }
        return {"fields": fields}

    def add_application(self, client_id: str, client_secret: str) -> None:
        """Another application registered at Enedis (its own client_id, secret and quotas)."""
        self.clients[client_id] = client_secret

    def reset_quotas(self) -> None:
        """Every application starts again with its full quota (between benchmark rounds)."""
        self._calls = {}

    def day(self) -> date:
        return self.today or datetime.now(PARIS).date()

    # consent and tokens

    @route("GET", "/dataconnect/v1/oauth2/authorize")
    def authorize(self, request: Request) -> Response:
        query = request.query
        if query.get("client_id") not in self.clients or query.get("response_type") != "code":
            return _error(400, "invalid_request", "client_id and response_type=code are required")
        state = query.get("state", "")
        if not state[-1:].isdigit():
            return _error(400, "invalid_request", "state must end with a digit (it picks the customer)")
        usage_point = f"2251691471427{state[-1]}"
        if usage_point not in self.customers:
            return _error(400, "invalid_request", f"no simulated customer for state digit {state[-1]}")
        code = secrets.token_urlsafe(12)
        self._codes[code] = usage_point
        location = self.redirect_uri + "?" + urlencode({"code": code, "state": state, "usage_point_id": usage_point})
        return Response(302, b"", {"Location": location})

    @route("POST", "/oauth2/v3/token")
    def token(self, request: Request) -> Response:
        form = request.form()
        credentials = request.basic_auth() or (form.get("client_id"), form.get("client_secret"))
        client_id, secret = credentials
        if client_id not in self.clients or self.clients[client_id] != secret:
            return _error(401, "invalid_client", "Client authentication failed")
        grant = form.get("grant_type")
        if grant == "client_credentials":
            token = self.issue_token(lifetime=12600, kind="v5", client_id=client_id)
            return json_response({"access_token": token, "token_type": "Bearer", "expires_in": "12600"})
        if grant == "authorization_code" and form.get("code") in self._codes:
            usage_point = self._codes.pop(form["code"])
        elif grant == "refresh_token" and form.get("refresh_token") in self._refresh:
            usage_point = self._refresh[form["refresh_token"]]
        else:
            return _error(400, "invalid_grant", "unknown, used or revoked code or refresh token")
        refresh = secrets.token_urlsafe(18)
        self._refresh[refresh] = usage_point
        token = self.issue_token(lifetime=12600, kind="v4", usage_point=usage_point, client_id=client_id)
        return json_response(
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": 12600,
                "refresh_token": refresh,
                "usage_points_id": usage_point,
            }
        )

    def refresh_token_for(self, usage_point: str) -> str:
        """A refresh token as a platform would hold after the user's consent (for dev-configs and tests)."""
        refresh = secrets.token_urlsafe(18)
        self._refresh[refresh] = usage_point
        return refresh

    def revoke(self, usage_point: str) -> None:
        """The user withdraws consent: data calls get ADAM-DC-0008, refresh tokens stop working."""
        self.customers[usage_point].consent = False
        self._refresh = {k: v for k, v in self._refresh.items() if v != usage_point}

    # data

    @route("GET", "/v4/metering_data/{measure}")
    def v4(self, request: Request) -> Response:
        return self._data(request, "v4")

    @route("GET", "/metering_data_dc/v5/daily_consumption")
    def v5_daily(self, request: Request) -> Response:
        return self._data(request, "v5")

    @route("GET", "/metering_data_clc/v5/consumption_load_curve")
    def v5_curve(self, request: Request) -> Response:
        return self._data(request, "v5")

    @route("GET", MAX_POWER)
    def v5_max_power(self, request: Request) -> Response:
        return self._data(request, "v5")

    def admit(self, request: Request) -> Response | None:
        """Count a data call against the application's quota as it arrives, as Enedis' gateway does."""
        claims = self.token_claims(request) if request.path in DAILY | CURVE | {MAX_POWER} else None
        if claims is None or not self.over_quota(claims.get("client_id", CLIENT_ID)):
            return None
        return _error(429, "Quota Q3", "Quota Q3/Q4 reached")

    def _data(self, request: Request, version: str) -> Response:
        if request.path not in DAILY | CURVE | {MAX_POWER}:
            return _error(404, "not_found", f"no such resource: {request.path}")
        claims = self.token_claims(request)
        if claims is None or claims["kind"] != version:
            return _error(401, "invalid_token", "Invalid or expired access token")
        query = request.query
        customer = self.customers.get(query.get("usage_point_id", ""))
        if (
            customer is None
            or not customer.consent
            or claims.get("usage_point", customer.usage_point) != customer.usage_point
        ):
            return _error(403, "ADAM-DC-0008", "No consent can be found for this customer and this usage point")
        try:
            start, end = date.fromisoformat(query["start"]), date.fromisoformat(query["end"])
        except (KeyError, ValueError):
            return _error(400, "invalid_request", "start and end must be dates YYYY-MM-DD")
        if not start < end or end > self.day():
            return _error(400, "invalid_request", "start must be before end, and end at most today")
        curve = request.path in CURVE
        limit, history = (7, 730) if curve else (365, 1095)
        if (end - start).days > limit:
            code = "ADAM-ERR0126" if version == "v4" else "ADAM-DC-0015"
            return _error(400, code, f"the period must not exceed {limit} days")
        if start < self.day() - timedelta(history):
            return _error(400, "ADAM-DC-0009", "The start date must be after the consent start date and history limit")
        activated = customer.activated_days_ago
        if activated is not None and start < self.day() - timedelta(activated):
            return _error(400, "ADAM-ERR0123", "The requested period is before the meter's activation")
        if curve and customer.curve_refused:
            return _error(400, "ADAM-ERR0075", "The customer refused the recording of the load curve")
        published = self.day() - timedelta(self.publication_delay_days)
        days = [
            day
            for day in (start + timedelta(n) for n in range((end - start).days))
            if day not in customer.missing and day < published
        ]
        if not days:
            return _error(404, "no_data_found", "No data found for the requested period")
        if curve:
            readings, reading_type = (
                self._curve(customer, days),
                {"unit": "W", "measurement_kind": "power", "aggregate": "average"},
            )
        elif request.path == MAX_POWER:
            readings, reading_type = (
                self._max_power(customer, days),
                {"unit": "VA", "measurement_kind": "power", "aggregate": "maximum"},
            )
        else:
            readings, reading_type = (
                self._daily(customer, days),
                {"unit": "Wh", "measurement_kind": "energy", "aggregate": "sum"},
            )
        return json_response(
            {
                "meter_reading": {
                    "usage_point_id": customer.usage_point,
                    "start": start.isoformat(),
                    "end": end.isoformat(),
                    "quality": "BRUT",
                    "reading_type": reading_type,
                    "interval_reading": readings,
                }
            }
        )

    def over_quota(self, application: str) -> bool:
        """Count a data call of ``application``: True past 5 in the last second or 10,000 in the last hour."""
        with self._quota_lock:
            now = time.monotonic()
            calls = self._calls.setdefault(application, deque())
            while calls and now - calls[0] >= 3600:
                calls.popleft()
            calls.append(now)
            last_second = sum(1 for t in itertools.islice(reversed(calls), PER_SECOND + 1) if now - t < 1)
            return last_second > PER_SECOND or len(calls) > PER_HOUR

    def intervals(self, customer: Customer, day: date) -> list[tuple[datetime, int]]:
        """(local start, average W) of every interval of ``day``: 23 or 25 hours on DST days."""
        return list(zip(day_steps(day, customer.step, PARIS), self.watts(customer, day), strict=True))

    def watts(self, customer: Customer, day: date) -> list[int]:
        """The average W of every interval of ``day``, in order."""
        step = customer.step
        return [round(kwh * 1000 * 60 / step) for kwh in day_loads_kwh(day, step, PARIS, self.seed)]

    def _value(self, day: date, value: int) -> Any:
        return self.bad_values[day] if day in self.bad_values else str(value)

    def _curve(self, customer: Customer, days: list[date]) -> list[dict[str, Any]]:
        step = timedelta(minutes=customer.step)
        return [
            {
                "value": self._value(day, watts),
                "date": (local.astimezone(UTC) + step).astimezone(PARIS).strftime("%Y-%m-%d %H:%M:%S"),
                "interval_length": f"PT{customer.step}M",
                "measure_type": "B",
            }
            for day in days
            for local, watts in self.intervals(customer, day)
        ]

    def day_wh(self, customer: Customer, day: date) -> int:
        return round(sum(watts * customer.step / 60 for watts in self.watts(customer, day)))

    def _daily(self, customer: Customer, days: list[date]) -> list[dict[str, Any]]:
        return [{"value": self._value(day, self.day_wh(customer, day)), "date": day.isoformat()} for day in days]

    def _max_power(self, customer: Customer, days: list[date]) -> list[dict[str, Any]]:
        readings = []
        for day in days:
            watts = self.watts(customer, day)
            peak = max(range(len(watts)), key=watts.__getitem__)  # the first of equal peaks, as max() keeps
            midnight = datetime(day.year, day.month, day.day, tzinfo=PARIS).astimezone(UTC)
            local = (midnight + timedelta(minutes=peak * customer.step)).astimezone(PARIS)
            value = self._value(day, round(watts[peak] * 1.15))
            readings.append({"value": value, "date": local.strftime("%Y-%m-%d %H:%M:%S")})
        return readings
