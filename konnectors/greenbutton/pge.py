"""``pge-smd``: PG&E Share My Data (ESPI / Green Button Connect), Bulk flow with notifications.

Every call uses mutual TLS with the operator's registered client certificate. A run
gets a token (client credentials, HTTP Basic; JSON or XML answer), checks
``ReadServiceStatus``, asks for the Bulk data since its bookmark (PG&E answers 202
and, a minute or two later, POSTs a BatchList to the registered notification
URI), and handles the notifications already received. ``konnector serve``
receives them: each BatchList is checked (safe XML, URIs under the PG&E base URL)
and stored before the 200, then its resources are fetched and stored one by one,
each marked done once its data is in the store.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any, ClassVar

from framework import Context, Konnector, LoginFailed, Maintenance, VendorDown
from framework.oauth import OAuthClient
from framework.safexml import UnsafeXml, parse

from . import batchlist, espi
from .konnector import SERIES, checked_documents

ESPI_BASE = "/GreenButtonConnect/espi/1_1/resource"
NOTIFICATIONS = "org.greenbutton.notification"
INVALID_CERTIFICATE = "Invalid Certificate"
REFUSED_CERTIFICATE = "PG&E refused the client certificate: use the one registered for Share My Data"
CUSTOMERS = "org.greenbutton.customer"


class PgeShareMyData(Konnector):
    series = SERIES
    dedup_keys: ClassVar = {CUSTOMERS: ("_id",)}

    def start(self, ctx: Context) -> None:
        pge = _Pge(ctx)
        status = pge.service_status()
        if status != "1":
            raise Maintenance(f"PG&E's Share My Data service reports status {status!r}; try again later")
        since = ctx.state.get("bookmark")
        pge.request_bulk(since)
        ctx.state["bookmark"] = int(time.time())
        ctx.save_state()
        ctx.log.info("Bulk data requested: PG&E notifies the registered URI when the files are ready")
        self._handle(ctx, pge)

    def accept_notification(self, ctx: Context, body: bytes) -> str:
        uris = batchlist.resources(body, ctx.fields["base_url"])
        notification_id = hashlib.sha256(body).hexdigest()[:32]
        if ctx.store.get(NOTIFICATIONS, notification_id) is None:
            received = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            ctx.store.save(
                NOTIFICATIONS,
                [
                    {
                        "_id": notification_id,
                        "status": "pending",
                        "received_at": received,
                        "resources": [{"uri": uri, "done": False} for uri in uris],
                    }
                ],
            )
        return notification_id

    def handle_notifications(self, ctx: Context) -> None:
        self._handle(ctx, _Pge(ctx))

    def _handle(self, ctx: Context, pge: _Pge) -> None:
        for notification in ctx.store.find(NOTIFICATIONS, {"status": "pending"}, limit=100, sort=["received_at"]):
            for resource in notification["resources"]:
                if resource["done"]:
                    continue
                self.store(ctx, self._documents(ctx, resource["uri"], pge.get(resource["uri"])))
                resource["done"] = True
                [notification] = ctx.store.save(NOTIFICATIONS, [notification])
            notification["status"] = "done"
            ctx.store.save(NOTIFICATIONS, [notification])
            ctx.log.info(f"notification {notification['_id']}: {len(notification['resources'])} resource(s) stored")

    @staticmethod
    def _documents(ctx: Context, uri: str, data: bytes) -> dict[str, list[dict[str, Any]]]:
        if "RetailCustomer" in uri:
            entries = espi.customer_entries(data, name=uri)
            return {CUSTOMERS: [{"_id": hashlib.sha256(e["href"].encode()).hexdigest()[:32], **e} for e in entries]}
        return checked_documents(data, uri, ctx.fields.get("timezone"), ctx.log)


class _Pge:
    def __init__(self, ctx: Context) -> None:
        fields = ctx.fields
        session = ctx.http(
            "pge",
            base_url=fields["base_url"],
            cert=(fields["cert_path"], fields["key_path"]),
            ca_bundle=fields.get("ca_bundle") or None,
        )
        self.oauth = OAuthClient(
            session, fields["token_path"], fields["client_id"], fields["client_secret"], cache=ctx.secrets
        )
        self.bulk_id = fields["bulk_id"]

    def request(self, path: str, params: dict[str, str] | None = None):
        """A GET with the bearer token; PG&E's "400 Invalid Certificate" (token or data) is a login error."""
        try:
            response = self.oauth.request("GET", path, params=params)
        except VendorDown as error:
            if INVALID_CERTIFICATE in error.message:
                raise LoginFailed(REFUSED_CERTIFICATE) from None
            raise
        if response.status_code == 400 and INVALID_CERTIFICATE in response.text:
            raise LoginFailed(REFUSED_CERTIFICATE)
        return response

    def get(self, path: str) -> bytes:
        response = self.request(path)
        if response.status_code != 200:
            raise VendorDown(f"PG&E answered {response.status_code} on {path}: {response.text[:200]}")
        return response.content

    def service_status(self) -> str:
        try:
            root = parse(self.get(f"{ESPI_BASE}/ReadServiceStatus"), name="ServiceStatus")
        except UnsafeXml as exc:
            raise VendorDown(f"PG&E sent an unreadable service status: {exc.message}") from None
        return (root.findtext(f"{espi.ESPI}currentStatus") or "").strip()

    def request_bulk(self, since: int | None) -> None:
        params = {"published-min": str(since)} if since else None
        response = self.request(f"{ESPI_BASE}/Batch/Bulk/{self.bulk_id}", params)
        if response.status_code != 202:
            raise VendorDown(f"PG&E answered {response.status_code} to the Bulk request, not 202")
