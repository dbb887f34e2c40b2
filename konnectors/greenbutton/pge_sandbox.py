"""A local PG&E Share My Data, as PG&E documents it for self-access users.

- Mutual TLS on every call, with a throwaway CA: the client must present the certificate
  registered for the application (``registered_cert``); another one gets 400 "Invalid
  Certificate".
- ``POST /datacustodian/oauth/v2/token`` (and ``/datacustodian/test/oauth/v2/token``), HTTP
  Basic client credentials, ``grant_type=client_credentials``: ``{"client_access_token",
  "expires_in": 3600}``; ``token_format`` gives ``expires_in`` as a string, or the XML form.
  No refresh token; an expired token on a data call: 403.
- ESPI resources under PG&E's production path ``/GreenButtonConnect/espi/1_1/resource`` and under
  the seed's test path ``/datacustodian/test/espi/1_1/resource`` (000_f56bd80fb3d6f9a2.txt).
- ``GET …/ReadServiceStatus``: ``ServiceStatus/currentStatus`` (``status``).
- ``GET …/Batch/Bulk/{BulkID}`` with ``published-min``/``published-max`` (xs:dateTime): with
  ``flow`` "200" (the seed's flow) the usage feed of that window at once; with "202" an empty 202,
  then after ``notify_delay`` seconds a BatchList is POSTed to ``notification_url`` over HTTPS with
  the sandbox's own client certificate (trusting ``notification_ca``); ``atom_wrapped`` wraps it.
  Its resources: the synthetic household feed of the window (the last ``days`` days at most, on
  America/Los_Angeles local days, with PG&E's LocalTimeParameters), then the ``sample_files``.
- ``GET …/Batch/BulkRetailCustomerInfo/{BulkID}`` (the seed's customer call): the RetailCustomer
  feed at once with ``flow`` "200"; with "202" a BatchList naming ``…/Batch/RetailCustomer/{BulkID}``.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from framework.sandbox import Request, Response, Sandbox, route

from .synthetic import household_feed

ESPI = "/GreenButtonConnect/espi/1_1/resource"
TEST_ESPI = "/datacustodian/test/espi/1_1/resource"
CLIENT_ID, CLIENT_SECRET, BULK_ID = "pge-sandbox-client", "pge-sandbox-secret", "50916"
XML = {"Content-Type": "application/atom+xml"}


def _customer_feed(bulk: str) -> str:
    return (
        '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><id>urn:uuid:customers</id>'
        f'<entry><id>urn:uuid:c1</id><link rel="self" href="{ESPI}/RetailCustomer/{bulk}/Customer/1"/>'
        '<content><Customer xmlns="http://naesb.org/espi/customer"><name>SANDBOX HOUSEHOLD</name>'
        "</Customer></content></entry></feed>"
    )


def _day(stamp: str) -> date:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(UTC).date()


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
        self.flow = "202"
        """ "202": answer Bulk requests later, by notification; "200": answer them at once with the data."""
        self.notifications: list[tuple[int, str]] = []
        """What the receiver answered to each BatchList posted: (status, body)."""
        self.windows: list[tuple[date, int]] = []
        self._usage_windows: dict[str, tuple[date, int]] = {}
        """The (first day, days) of each usage feed served for a Bulk window."""
        self._routes += [
            (method, re.compile(pattern.pattern.replace(ESPI, TEST_ESPI)), handler)
            for method, pattern, handler in list(self._routes)
            if ESPI in pattern.pattern
        ]

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
            "environment": "test",
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
        window = self._window(request.query.get("published-min"), request.query.get("published-max"))
        if window is None:
            return Response(400, "published-min/published-max must be xs:dateTime", {"Content-Type": "text/plain"})
        self.windows.append(window)
        prefix = request.path.split("/Batch/")[0]
        if self.flow == "200":
            return Response(200, self._usage(*window), XML)
        correlation = uuid.uuid4().hex
        self._usage_windows[correlation] = window
        uris = [f"{self.url}{prefix}/Batch/Bulk/{BULK_ID}/Data/{n}" for n in range(1 + len(self.sample_files))]
        self._later([f"{uri}?correlationID={correlation}" for uri in uris])
        return Response(202, b"")

    @route("GET", ESPI + "/Batch/BulkRetailCustomerInfo/{bulk}")
    def bulk_customer(self, request: Request) -> Response:
        if refused := self._authorized(request):
            return refused
        if request.params["bulk"] != BULK_ID:
            return Response(404, "Unknown Bulk ID", {"Content-Type": "text/plain"})
        if self.flow == "200":
            return Response(200, _customer_feed(BULK_ID), XML)
        prefix = request.path.split("/Batch/")[0]
        self._later([f"{self.url}{prefix}/Batch/RetailCustomer/{BULK_ID}?correlationID={uuid.uuid4().hex}"])
        return Response(202, b"")

    def _window(self, low: str | None, high: str | None) -> tuple[date, int] | None:
        """The local days of data a window asks for, within the last ``days`` days."""
        try:
            today = datetime.now(UTC).date()
            first = max(_day(low) if low else today, today - timedelta(self.days))
            last = min(_day(high) if high else today, today)
        except ValueError:
            return None
        return first, max(0, (last - first).days)

    def _usage(self, first: date, days: int) -> str:
        return household_feed(first, days, "America/Los_Angeles", "5391320451", self.seed)

    def batch_list(self, uris: list[str] | str) -> bytes:
        if isinstance(uris, str):  # a Bulk ID: the data resources of a new request
            uris = [f"{self.url}{ESPI}/Batch/Bulk/{uris}/Data/{n}" for n in range(1 + len(self.sample_files))]
        listed = "".join(f"<resources>{uri.replace('&', '&amp;')}</resources>" for uri in uris)
        body = f'<BatchList xmlns="http://naesb.org/espi">{listed}</BatchList>'
        if self.atom_wrapped:
            body = f'<feed xmlns="http://www.w3.org/2005/Atom"><entry><content>{body}</content></entry></feed>'
        return f'<?xml version="1.0" encoding="UTF-8"?>{body}'.encode()

    def _later(self, uris: list[str]) -> None:
        threading.Thread(target=self._notify, args=(uris,), daemon=True).start()

    def _notify(self, uris: list[str]) -> None:
        time.sleep(self.notify_delay)
        if not self.notification_url:
            return
        answer = requests.post(
            self.notification_url,
            data=self.batch_list(uris),
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
            window = self._usage_windows.get(request.query.get("correlationID", ""))
            return Response(200, self._usage(*(window or (date.today() - timedelta(self.days), self.days))), XML)
        if number <= len(self.sample_files):
            return Response(200, self.sample_files[number - 1].read_bytes(), XML)
        return Response(404, "Unknown resource", {"Content-Type": "text/plain"})

    @route("GET", ESPI + "/Batch/RetailCustomer/{bulk}")
    def customer(self, request: Request) -> Response:
        if refused := self._authorized(request):
            return refused
        return Response(200, _customer_feed(request.params["bulk"]), XML)
