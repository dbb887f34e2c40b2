"""__NAME__: daily consumption from the Example Meter API.

The API: ``GET /v1/consumption?from=YYYY-MM-DD&to=YYYY-MM-DD`` (``to`` excluded,
at most 31 days) with the header ``X-Api-Key``; answers
``{"readings": [{"date": "YYYY-MM-DD", "kwh": 1.234}, ...]}``.
"""

from __future__ import annotations

from datetime import date, timedelta

from framework import Chunk, Konnector, LoginFailed, VendorDown, energy_series, point
from framework.http import RateLimiter

WINDOW_DAYS = 31
LOOK_BACK_DAYS = 3
"""Providers correct recent days: each run fetches these again."""
QUOTA = RateLimiter(rate=4, capacity=1)
"""The API refuses more than 5 requests in any second: one request every 0.25 s stays under it
(a bucket of 5 would let a burst of 5 then 5 more within the same second: two 429s)."""


class __CLASS__(Konnector):
    series = (energy_series("__DOCTYPE__", finest="day"),)

    def fetch(self, ctx):
        session = ctx.http(base_url=ctx.fields["base_url"], limiter=QUOTA)
        session.headers["X-Api-Key"] = ctx.fields["api_key"]
        today = ctx.now().date()
        bookmark = ctx.state.get("bookmark")
        if bookmark:
            start = date.fromisoformat(bookmark) - timedelta(LOOK_BACK_DAYS)
        else:
            start = today - timedelta(ctx.parameters["history_days"])
        while start < today:
            end = min(start + timedelta(WINDOW_DAYS), today)
            response = session.get("/v1/consumption", params={"from": start.isoformat(), "to": end.isoformat()})
            if response.status_code in (401, 403):
                raise LoginFailed("the API key was refused: check the api_key field")
            if response.status_code != 200:
                raise VendorDown(f"the meter API answered {response.status_code}")
            yield Chunk(response.json(), bookmark=end.isoformat())
            start = end

    def process(self, ctx, payload):
        readings = payload.get("readings")
        if not isinstance(readings, list):
            raise VendorDown("the meter API sent a body without 'readings'")
        days = [point("day", date.fromisoformat(r["date"]), load=float(r["kwh"]), unit="kWh") for r in readings]
        return {"__DOCTYPE__.day": days}
