"""A local fake of the Example Meter API, as its documentation describes it.

- ``GET /v1/consumption?from=&to=`` with ``X-Api-Key``; ``to`` excluded, at most 31 days,
  not in the future: else 400 ``{"error": ...}``.
- A wrong key: 401. More than 5 requests a second: 429 with ``Retry-After: 1``.
- Values: a plausible household, the same for the same seed.
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta

from framework.sandbox import Request, Response, Sandbox, json_response, route
from framework.testing.household import load_kwh

API_KEY = "sandbox-api-key"


class __CLASS__Sandbox(Sandbox):
    name = "__SLUG__"

    def __init__(self, **options):
        super().__init__(**options)
        self._recent: list[float] = []
        self.quota_refusals = 0
        """429s answered: a konnector keeping to the quota never gets one."""

    def dev_config(self):
        return {"fields": {"api_key": API_KEY, "base_url": self.url}}

    @route("GET", "/v1/consumption")
    def consumption(self, request: Request) -> Response:
        if request.header("X-Api-Key") != API_KEY:
            return json_response({"error": "invalid api key"}, 401)
        now = time.monotonic()
        self._recent = [t for t in self._recent if now - t < 1] + [now]
        if len(self._recent) > 5:
            self.quota_refusals += 1
            return json_response({"error": "quota"}, 429, **{"Retry-After": "1"})
        try:
            start, end = date.fromisoformat(request.query["from"]), date.fromisoformat(request.query["to"])
        except (KeyError, ValueError):
            return json_response({"error": "from and to must be dates YYYY-MM-DD"}, 400)
        if not start < end or (end - start).days > 31 or end > date.today() + timedelta(1):
            return json_response({"error": "from < to, at most 31 days, not in the future"}, 400)
        days = [start + timedelta(n) for n in range((end - start).days)]
        return json_response({"readings": [{"date": d.isoformat(), "kwh": self._day_kwh(d)} for d in days]})

    def _day_kwh(self, day: date) -> float:
        hours = (datetime(day.year, day.month, day.day, h) for h in range(24))
        return round(sum(load_kwh(hour, seed=self.seed) for hour in hours), 3)
