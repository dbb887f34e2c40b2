"""A local EnergyID Webhook V2, as EnergyID documents it.

- ``POST /hello`` with ``X-Provisioning-Key`` and ``X-Provisioning-Secret`` (else 401) and
  ``{"deviceId", "deviceName", …}``. An unclaimed device gets ``{"claimCode", "claimUrl",
  "exp"}`` (a new code once the last expired); a claimed one gets ``{"webhookUrl", "headers":
  {"authorization": "SharedAccessSignature …", "x-twin-id"}, "webhookPolicy", "recordNumber",
  "recordName"}``. The token lasts 48 hours. ``policy_style`` picks ``{"uploadInterval":
  seconds}`` or the older ``{"allowedInterval": "PT15M"}``.
- Claiming: ``claim(code)`` for tests, or the small page at ``/claim``.
- ``POST /webhook/{twin}`` with exactly those headers: **one JSON object** per request, as
  EnergyID's official client ``energyid-webhooks`` (``WebhookClient.send_data``) posts it: an
  integer ``ts`` and the metrics of that instant bundled, numeric values under known metric keys
  (``el``, ``gas``, …, the notebook's ``temperature.living``) or prefixed ones (``el.t1``). An
  array, or any other shape, is refused (400 naming the fault): EnergyID documents no batch
  form. 401 expired token; 403 webhook disabled for the record; 404 unknown twin.
- The policy's ``uploadInterval`` is a rate: a device posting again sooner gets 429 with
  ``Retry-After`` (0 turns the check off).

What EnergyID holds, for tests to read: ``points`` every object it accepted (acknowledged), in
order, resends included; ``series`` the readings as EnergyID keeps them, one value per metric
and time (``{metric: {ts: value}}``: a reading sent again replaces the one at its time);
``devices`` every device that said hello, each needing its own claim until claimed.
"""

from __future__ import annotations

import math
import re
import secrets
import time
from typing import Any
from urllib.parse import parse_qs

from framework.sandbox import Request, Response, Sandbox, json_response, route

KEY, SECRET = "energyid-sandbox-key", "energyid-sandbox-secret"
METRICS = {"el", "el-i", "pv", "wind", "gas", "heat", "water", "pwr", "pwr-i", "bat", "bat-i", "bat-soc", "temperature"}
KEY_PATTERN = re.compile(r"^([a-z]+(?:-[a-z]+)?)(?:\.[a-z0-9-]+)?$")
TOKEN_SECONDS = 48 * 3600
CLAIM_SECONDS = 30 * 60


class EnergyIdSandbox(Sandbox):
    name = "energyid-webhook"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.policy_style = "uploadInterval"
        self.upload_interval = 3600
        self.disabled = False
        self.outage_after: int | None = None
        """Answer 503 once this many batches were accepted: an outage in the middle of a run."""
        self.batches = 0
        self.too_soon = 0
        """Posts refused for coming sooner than the upload interval."""
        self.points: list[dict[str, Any]] = []
        self.series: dict[str, dict[int, float]] = {}
        self.devices: dict[str, dict[str, Any]] = {}
        self._claims: dict[str, str] = {}

    def dev_config(self) -> dict[str, Any]:
        return {"fields": {"provisioning_key": KEY, "provisioning_secret": SECRET, "hello_url": self.url + "/hello"}}

    def claim(self, code: str) -> bool:
        device_id = self._claims.get(code)
        device = self.devices.get(device_id or "")
        if device is None or device["claim_exp"] < time.time():
            return False
        device["claimed"] = True
        device["twin"] = secrets.token_hex(8)
        return True

    def expire_token(self) -> None:
        for device in self.devices.values():
            device["token_exp"] = 0

    @route("POST", "/hello")
    def hello(self, request: Request) -> Response:
        if (request.header("X-Provisioning-Key"), request.header("X-Provisioning-Secret")) != (KEY, SECRET):
            return json_response({"message": "invalid provisioning credentials"}, 401)
        body = request.json() or {}
        if not body.get("deviceId") or not body.get("deviceName"):
            return json_response({"message": "deviceId and deviceName are required"}, 400)
        device = self.devices.setdefault(
            body["deviceId"], {"claimed": False, "claim_exp": 0, "name": body["deviceName"]}
        )
        if not device["claimed"]:
            if device["claim_exp"] < time.time():
                code = f"{secrets.randbelow(10**6):06d}"
                device.update(code=code, claim_exp=int(time.time()) + CLAIM_SECONDS)
                self._claims[code] = body["deviceId"]
            return json_response(
                {"claimCode": device["code"], "claimUrl": f"{self.url}/claim", "exp": device["claim_exp"]}
            )
        device["token"] = "SharedAccessSignature sr=" + device["twin"] + "&sig=" + secrets.token_urlsafe(16)
        device["token_exp"] = time.time() + TOKEN_SECONDS
        policy = (
            {"uploadInterval": self.upload_interval}
            if self.policy_style == "uploadInterval"
            else {"allowedInterval": f"PT{self.upload_interval // 60}M"}
        )
        return json_response(
            {
                "webhookUrl": f"{self.url}/webhook/{device['twin']}",
                "headers": {"authorization": device["token"], "x-twin-id": device["twin"]},
                "webhookPolicy": policy,
                "recordNumber": "EA-12345678",
                "recordName": "Home",
            }
        )

    @route("GET", "/claim")
    def claim_page(self, request: Request) -> Response:
        page = (
            '<!doctype html><title>Claim a device</title><form method="post" action="/claim">'
            '<label>Code <input name="code"></label><button>Claim</button></form>'
        )
        return Response(200, page, {"Content-Type": "text/html; charset=utf-8"})

    @route("POST", "/claim")
    def claim_form(self, request: Request) -> Response:
        code = parse_qs(request.body.decode()).get("code", [""])[0]
        if self.claim(code):
            return Response(200, "<!doctype html><p>Device claimed.</p>", {"Content-Type": "text/html"})
        return Response(400, "<!doctype html><p>Unknown or expired code.</p>", {"Content-Type": "text/html"})

    @route("POST", "/webhook/{twin}")
    def webhook(self, request: Request) -> Response:
        device = next((d for d in self.devices.values() if d.get("twin") == request.params["twin"]), None)
        if device is None:
            return json_response({"message": "unknown webhook"}, 404)
        if request.header("authorization") != device.get("token") or request.header("x-twin-id") != device["twin"]:
            return json_response({"message": "invalid token"}, 401)
        if device["token_exp"] < time.time():
            return json_response({"message": "token expired"}, 401)
        if self.disabled:
            return json_response({"message": "webhook disabled for this record"}, 403)
        if self.outage_after is not None and self.batches >= self.outage_after:
            return json_response({"message": "service unavailable"}, 503)
        try:
            body = request.json()
        except ValueError:
            return json_response({"message": "body is not JSON"}, 400)
        if not isinstance(body, dict):
            message = "the body must be one JSON object: ts and the metrics of that instant"
            return json_response({"message": message}, 400)
        if fault := self._fault(body):
            return json_response({"message": fault}, 400)
        now = time.time()
        wait = device.get("last_post", 0) + self.upload_interval - now
        if wait > 0:
            self.too_soon += 1
            retry = {"Retry-After": str(math.ceil(wait))}
            return json_response({"message": "upload interval not respected"}, 429, **retry)
        device["last_post"] = now
        self.points.append(body)
        for key, value in body.items():
            if key != "ts":
                self.series.setdefault(key, {})[body["ts"]] = value
        self.batches += 1
        return json_response({"received": 1}, 200)

    @staticmethod
    def _fault(point: Any) -> str | None:
        if not isinstance(point, dict):
            return "not an object"
        if not isinstance(point.get("ts"), int) or isinstance(point.get("ts"), bool):
            return "ts must be an integer (Unix seconds)"
        for key, value in point.items():
            if key == "ts":
                continue
            match = KEY_PATTERN.match(key)
            if not match or match.group(1) not in METRICS:
                return f"unknown metric {key!r}"
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                return f"{key} must be a number"
        return None
