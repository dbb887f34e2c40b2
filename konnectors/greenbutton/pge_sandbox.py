"""A local PG&E Share My Data, as PG&E documents it for self-access users.

- Mutual TLS on every call, with a throwaway CA: the client must present the certificate
  registered for the application (``registered_cert``); another one gets 400 "Invalid
  Certificate".
- ``POST /datacustodian/oauth/v2/token`` (and ``/datacustodian/test/oauth/v2/token``), HTTP
  Basic client credentials, ``grant_type=client_credentials``: ``{"client_access_token",
  "expires_in": 3600}``; ``token_format`` gives ``expires_in`` as a string, or the XML form.
  No refresh token; an expired token on a data call: 403.
- ``GET …/espi/1_1/resource/ReadServiceStatus``: ``ServiceStatus/currentStatus`` (``status``).
- ``GET …/Batch/Bulk/{BulkID}`` (``published-min``/``published-max`` accepted): 202, then after
  ``notify_delay`` seconds a BatchList is POSTed to ``notification_url`` over HTTPS with the
  sandbox's own client certificate (trusting ``notification_ca``); ``atom_wrapped`` wraps it.
  Its resources: one synthetic household feed, the ``sample_files``, and the RetailCustomer feed.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import requests

from framework.sandbox import Request, Response, Sandbox, route

from .synthetic import household_feed

ESPI = "/GreenButtonConnect/espi/1_1/resource"
CLIENT_ID, CLIENT_SECRET, BULK_ID = "pge-sandbox-client", "pge-sandbox-secret", "50916"
XML = {"Content-Type": "application/atom+xml"}


def _customer_feed(bulk: str) -> str:
    return (
        '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><id>urn:uuid:customers</id>'
        f'<entry><id>urn:uuid:c1</id><link rel="self" href="{ESPI}/RetailCustomer/{bulk}/Customer/1"/>'
        '<content><Customer xmlns="http://naesb.org/espi/customer"><name>SANDBOX HOUSEHOLD</name>'
        "</Customer></content></entry></feed>"
    )


class PgeSandbox(Sandbox):
    name = "pge-smd"

    def __init__(self, **options: Any) -> None:
        super().__init__(client_certs=True, **options)
        self.registered_cert = self.issue_client_cert("konnector")
        self.notifier_cert = self.issue_client_cert("pge-notifier")
        self.status = "1"
        self.token_format = "json"
        self.notification_url: str | None = None
        self.notification_ca: str | None = None
        self.notify_delay = 0.2
        self.atom_wrapped = False
        self.sample_files: list[Path] = []
        self.days = 7
        self.notifications: list[tuple[int, str]] = []
        """What the receiver answered to each BatchList posted: (status, body)."""

    def dev_config(self) -> dict[str, Any]:
        cert, key = self.registered_cert
        fields = {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "bulk_id": BULK_ID,
            "base_url": self.url,
            "cert_path": cert,
            "key_path": key,
            "ca_bundle": self.ca_path,
        }
        return {"fields": fields}

    def handle(self, request: Request) -> Response:
        names = {value for _, value in (request.client_cert or {}).get("subjectAltName", ())}
        if "konnector.example" not in names:
            return Response(400, "Invalid Certificate", {"Content-Type": "text/plain"})
        return super().handle(request)

    @route("POST", "/datacustodian/oauth/v2/token")
    def token(self, request: Request) -> Response:
        if (
            request.basic_auth() != (CLIENT_ID, CLIENT_SECRET)
            or request.form().get("grant_type") != "client_credentials"
        ):
            return Response(401, '{"error": "invalid_client"}', {"Content-Type": "application/json"})
        token = self.issue_token(lifetime=3600)
        if self.token_format == "xml":
            body = (
                '<?xml version="1.0"?><token xmlns="https://api.pge.com/datacustodian/oauth/v2/token">'
                f"<client_access_token>{token}</client_access_token><expires_in>3600</expires_in></token>"
            )
            return Response(200, body, {"Content-Type": "application/xml"})
        lifetime = "3600" if self.token_format == "json-string" else 3600
        return Response(
            200,
            {"client_access_token": token, "token_type": "Bearer", "expires_in": lifetime, "scope": "3_4_5_7_13_14"},
            {"Content-Type": "application/json"},
        )

    test_token = route("POST", "/datacustodian/test/oauth/v2/token")(lambda self, request: self.token(request))

    def _authorized(self, request: Request) -> Response | None:
        if self.token_claims(request) is None:
            return Response(403, "Forbidden: invalid or expired token", {"Content-Type": "text/plain"})
        return None

    @route("GET", ESPI + "/ReadServiceStatus")
    def service_status(self, request: Request) -> Response:
        if refused := self._authorized(request):
            return refused
        body = (
            f'<ServiceStatus xmlns="http://naesb.org/espi"><currentStatus>{self.status}</currentStatus></ServiceStatus>'
        )
        return Response(200, body, {"Content-Type": "application/xml"})

    @route("GET", ESPI + "/Batch/Bulk/{bulk}")
    def bulk(self, request: Request) -> Response:
        if refused := self._authorized(request):
            return refused
        if request.params["bulk"] != BULK_ID:
            return Response(404, "Unknown Bulk ID", {"Content-Type": "text/plain"})
        threading.Thread(target=self._notify, args=(request.params["bulk"],), daemon=True).start()
        return Response(202, b"")

    def batch_list(self, bulk: str) -> bytes:
        correlation = uuid.uuid4().hex
        uris = [
            f"{self.url}{ESPI}/Batch/Bulk/{bulk}/Data/{n}?correlationID={correlation}"
            for n in range(1 + len(self.sample_files))
        ]
        uris.append(f"{self.url}{ESPI}/Batch/RetailCustomer/{bulk}?correlationID={correlation}")
        listed = "".join(f"<resources>{uri.replace('&', '&amp;')}</resources>" for uri in uris)
        body = f'<BatchList xmlns="http://naesb.org/espi">{listed}</BatchList>'
        if self.atom_wrapped:
            body = f'<feed xmlns="http://www.w3.org/2005/Atom"><entry><content>{body}</content></entry></feed>'
        return f'<?xml version="1.0" encoding="UTF-8"?>{body}'.encode()

    def _notify(self, bulk: str) -> None:
        time.sleep(self.notify_delay)
        if not self.notification_url:
            return
        answer = requests.post(
            self.notification_url,
            data=self.batch_list(bulk),
            headers={"Content-Type": "application/xml"},
            cert=self.notifier_cert,
            verify=self.notification_ca or True,
            timeout=30,
        )
        self.notifications.append((answer.status_code, answer.text))

    @route("GET", ESPI + "/Batch/Bulk/{bulk}/Data/{number}")
    def data(self, request: Request) -> Response:
        if refused := self._authorized(request):
            return refused
        number = int(request.params["number"])
        if number == 0:
            first = date.today() - timedelta(self.days)
            return Response(200, household_feed(first, self.days, "America/Los_Angeles", "5391320451", self.seed), XML)
        if number <= len(self.sample_files):
            return Response(200, self.sample_files[number - 1].read_bytes(), XML)
        return Response(404, "Unknown resource", {"Content-Type": "text/plain"})

    @route("GET", ESPI + "/Batch/RetailCustomer/{bulk}")
    def customer(self, request: Request) -> Response:
        if refused := self._authorized(request):
            return refused
        return Response(200, _customer_feed(request.params["bulk"]), XML)
