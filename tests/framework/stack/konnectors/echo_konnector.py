"""A konnector for the stack tests, found through KONNECTOR_PATH.

It stores each item of the webhook payload (``ctx.payload``: ``{"items": [...]}`` or a
debounced ``{"payloads": [...]}``) as an ``io.example.echo.hook`` document, then
``days`` daily points. Parameters: ``days``, ``pause`` (seconds a chunk).
"""

import time
from datetime import date, timedelta
from typing import ClassVar

from framework import Chunk, Konnector, energy_series, point


def payload_items(payload):
    if not payload:
        return []
    bodies = payload.get("payloads", [payload])
    return [item for body in bodies for item in body.get("items", [])]


class Echo(Konnector):
    series = (energy_series("io.example.echo"),)
    dedup_keys: ClassVar = {"io.example.echo.hook": ("key",)}

    def fetch(self, ctx):
        ctx.log.info(f"locale {ctx.locale}, password of {len(ctx.fields['password'])} characters")
        ctx.secrets["token"] = "tok-" + ctx.fields["password"][::-1]
        yield Chunk({"hooks": payload_items(ctx.payload)})
        start = date.fromisoformat(ctx.state.get("bookmark", "2024-01-01"))
        for n in range(ctx.parameters.get("days", 2)):
            day = start + timedelta(n)
            time.sleep(ctx.parameters.get("pause", 0))
            yield Chunk({"day": day}, bookmark=(day + timedelta(1)).isoformat())

    def process(self, ctx, raw):
        if "hooks" in raw:
            return {"io.example.echo.hook": [{"key": item["key"], "value": item["value"]} for item in raw["hooks"]]}
        day = raw["day"]
        return {"io.example.echo.day": [point("day", day, load=float(day.day))]}

    def on_delete_account(self, ctx):
        ctx.log.info(f"revoking consent of {ctx.fields['login']} (bookmark {ctx.state.get('bookmark')})")
