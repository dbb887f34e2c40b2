"""``pge-smd``: PG&E Share My Data (ESPI / Green Button Connect), the Bulk flow.

Every call uses mutual TLS with the operator's registered client certificate. A run gets a
token (client credentials, HTTP Basic; JSON or XML answer), checks ``ReadServiceStatus``, then:

- handles the notifications already received (``konnector serve`` stores them);
- accepts a notification relayed by a cozy-stack ``@webhook`` trigger (``ctx.payload``);
- moves the bookmark to the end of the pending Bulk request's window once a notification
  received after that request has been handled whole: the bookmark never passes stored data;
- asks ``Batch/BulkRetailCustomerInfo/{bulk_id}`` and ``Batch/Bulk/{bulk_id}`` for the window from
  the bookmark (first run: the history PG&E allows, 48 months) to now, on the job's clock. A
  ``200`` with data (the seed's flow) is parsed and stored at once and the bookmark moves; a
  ``202`` means PG&E will POST a BatchList to the registered notification URI: the request is
  remembered, and asked again if no notification has come after ``notification_wait_hours``.

The paths follow the ``environment`` field: ``test`` gives the seed's
(``/datacustodian/test/espi/1_1/resource``, token ``/datacustodian/test/oauth/v2/token``,
000_f56bd80fb3d6f9a2.txt), ``production`` PG&E's (``/GreenButtonConnect/espi/1_1/resource``, token
``/datacustodian/oauth/v2/token``); ``espi_path`` and ``token_path`` override them.

A notification whose resources fail (an error answer, a redirect outside ``base_url``, data
that does not parse) is parked with its error and a retry time, and the ones behind it are
handled: one bad notification never blocks the others.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urljoin
from xml.sax.saxutils import escape

from framework import Context, Konnector, LoginFailed, Maintenance, VendorDown
from framework.errors import KonnectorError
from framework.oauth import OAuthClient
from framework.safexml import UnsafeXml, parse

from . import batchlist, espi
from .konnector import SERIES, checked_documents

PATHS = {
    "test": ("/datacustodian/test/espi/1_1/resource", "/datacustodian/test/oauth/v2/token"),
    "production": ("/GreenButtonConnect/espi/1_1/resource", "/datacustodian/oauth/v2/token"),
}
"""environment -> (ESPI resource base path, token path)."""
NOTIFICATIONS = "org.greenbutton.notification"
CUSTOMERS = "org.greenbutton.customer"
INVALID_CERTIFICATE = "Invalid Certificate"
REFUSED_CERTIFICATE = "PG&E refused the client certificate: use the one registered for Share My Data"
HISTORY_MONTHS = 48
"""PG&E shares "up to 48 months of historical interval usage data" (PG&E support, "What energy data
is released to companies I authorize through Share My Data")."""
HISTORY_DAYS = round(HISTORY_MONTHS * 365.25 / 12)
NOTIFICATION_WAIT_HOURS = 24
RETRY_DELAYS = (60, 300, 1800, 7200, 21600)
"""Seconds before a parked notification is tried again; after the last, it is marked failed."""
MAX_REDIRECTS = 3
STAMP = "%Y-%m-%dT%H:%M:%SZ"


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(STAMP)


class PgeShareMyData(Konnector):
    series = SERIES
    dedup_keys: ClassVar = {CUSTOMERS: ("_id",)}

    def start(self, ctx: Context) -> None:
        pge = _Pge(ctx)
        status = pge.service_status()
        if status != "1":
            raise Maintenance(f"PG&E's Share My Data service reports status {status!r}; try again later")
        self._accept_payload(ctx)
        self._handle(ctx, pge)
        self._settle_pending_request(ctx)
        self._request(ctx, pge)

    def check(self, ctx: Context) -> str:
        """``konnector check``: the mutual-TLS token and PG&E's ServiceStatus, nothing requested."""
        status = _Pge(ctx).service_status()
        if status != "1":
            raise Maintenance(f"PG&E's Share My Data service reports status {status!r}; try again later")
        return "signed in (mutual TLS and token); PG&E's service status is up"

    # the bookmark: moved only when the data of a window is stored

    def _settle_pending_request(self, ctx: Context) -> None:
        pending = ctx.state.get("pending_request")
        if not pending:
            return
        answered = ctx.store.find(
            NOTIFICATIONS, {"status": "done", "received_at": {"$gte": pending["asked_at"]}}, limit=1
        )
        if answered:
            ctx.state["bookmark"] = pending["max"]
            ctx.state.pop("pending_request")
            ctx.save_state()
            ctx.log.info(f"data up to {pending['max']} stored (notification {answered[0]['_id']}): bookmark moved")

    def _request(self, ctx: Context, pge: _Pge) -> None:
        now = ctx.now()
        pending = ctx.state.get("pending_request")
        wait = float(ctx.parameters.get("notification_wait_hours", NOTIFICATION_WAIT_HOURS))
        if pending and pending["asked_at"] > _utc(now - timedelta(hours=wait)):
            ctx.log.info(f"waiting for PG&E's notification of the request made at {pending['asked_at']}")
            return
        if pending:
            ctx.log.warning(f"no notification for the request made at {pending['asked_at']}: asking again")
        since = (pending or {}).get("min") or ctx.state.get("bookmark") or _utc(now - timedelta(days=HISTORY_DAYS))
        window = {"min": since, "max": _utc(now)}
        self._customers(ctx, pge)
        data = pge.request_bulk(window)
        if data is None:
            ctx.state["pending_request"] = {**window, "asked_at": _utc(now)}
            ctx.save_state()
            ctx.log.info("Bulk data requested: PG&E notifies the registered URI when the files are ready")
            return
        try:
            documents = checked_documents(data, "Bulk answer", ctx.fields.get("timezone"), ctx.log)
        except espi.EspiError as error:  # PG&E's data, not the user's: nothing they can fix
            raise VendorDown(f"PG&E's Bulk data is refused: {error.message}") from None
        self.store(ctx, documents)
        ctx.state["bookmark"] = window["max"]
        ctx.state.pop("pending_request", None)
        ctx.save_state()
        ctx.log.info(f"Bulk data up to {window['max']} stored")

    def _customers(self, ctx: Context, pge: _Pge) -> None:
        data = pge.request_customers()
        if data is not None:
            self.store(ctx, self._documents(ctx, "BulkRetailCustomerInfo", data))

    # notifications

    def _accept_payload(self, ctx: Context) -> None:
        """A notification relayed by a cozy-stack ``@webhook`` trigger (``ctx.payload``).

        The stack passes only JSON objects (docs/cozy-stack.md), so PG&E's XML BatchList comes
        through a relay as ``{"resources": [URI, …]}`` or with the XML in a string field; a
        debounced trigger gives ``{"payloads": [...]}``. Each is checked and stored exactly as
        ``konnector serve`` would, then handled by this run.
        """
        payload = ctx.payload
        if not payload:
            return
        items = payload.get("payloads", [payload]) if isinstance(payload, dict) else [payload]
        for item in items:
            body = _batch_list_of(item)
            if body is None:
                ctx.log.warning("the webhook payload holds no BatchList (resources or XML): ignored")
                continue
            try:
                ctx.log.info(f"notification {self.accept_notification(ctx, body)} from the webhook payload stored")
            except batchlist.RefusedNotification as error:
                ctx.log.warning(f"webhook payload: {error.message}")

    def accept_notification(self, ctx: Context, body: bytes) -> str:
        uris = batchlist.resources(body, ctx.fields["base_url"])
        notification_id = hashlib.sha256(body).hexdigest()[:32]
        if ctx.store.get(NOTIFICATIONS, notification_id) is None:
            document = {
                "_id": notification_id,
                "status": "pending",
                "received_at": _utc(ctx.now()),
                "resources": [{"uri": uri, "done": False} for uri in uris],
            }
            ctx.store.save(NOTIFICATIONS, [document])
        return notification_id

    def handle_notifications(self, ctx: Context) -> None:
        self._handle(ctx, _Pge(ctx))

    def _handle(self, ctx: Context, pge: _Pge) -> None:
        now = _utc(ctx.now())
        for notification in ctx.store.find(NOTIFICATIONS, {"status": "pending"}, limit=100, sort=["received_at"]):
            if notification.get("retry_at", "") > now:
                continue
            try:
                self._handle_one(ctx, pge, notification)
            except LoginFailed:
                raise
            except KonnectorError as error:
                self._park(ctx, notification, error.message)
            except Exception as error:  # a bug or an unexpected answer: park it too, never block the rest
                self._park(ctx, notification, f"{type(error).__name__}: {error}")

    def _handle_one(self, ctx: Context, pge: _Pge, notification: dict[str, Any]) -> None:
        for resource in notification["resources"]:
            if resource["done"]:
                continue
            self.store(ctx, self._documents(ctx, resource["uri"], pge.get(resource["uri"])))
            resource["done"] = True
            [notification] = ctx.store.save(NOTIFICATIONS, [notification])
        notification["status"] = "done"
        notification.pop("retry_at", None)
        ctx.store.save(NOTIFICATIONS, [notification])
        ctx.log.info(f"notification {notification['_id']}: {len(notification['resources'])} resource(s) stored")

    def _park(self, ctx: Context, notification: dict[str, Any], error: str) -> None:
        attempts = notification.get("attempts", 0) + 1
        notification.update(attempts=attempts, last_error=error[:500])
        if attempts > len(RETRY_DELAYS):
            notification["status"] = "failed"
            ctx.log.error(f"notification {notification['_id']} failed {attempts} times, given up: {error}")
        else:
            notification["retry_at"] = _utc(ctx.now() + timedelta(seconds=RETRY_DELAYS[attempts - 1]))
            ctx.log.warning(f"notification {notification['_id']} parked until {notification['retry_at']}: {error}")
        ctx.store.save(NOTIFICATIONS, [notification])

    @staticmethod
    def _documents(ctx: Context, uri: str, data: bytes) -> dict[str, list[dict[str, Any]]]:
        if "RetailCustomer" in uri:
            entries = espi.customer_entries(data, name=uri)
            return {CUSTOMERS: [{"_id": hashlib.sha256(e["href"].encode()).hexdigest()[:32], **e} for e in entries]}
        return checked_documents(data, uri, ctx.fields.get("timezone"), ctx.log)


def _batch_list_of(item: Any) -> bytes | None:
    """A BatchList body from a JSON payload item: a ``resources`` list, or XML text in a field."""
    if isinstance(item, str):
        return item.encode() if item.lstrip().startswith("<") else None
    if not isinstance(item, dict):
        return None
    resources = item.get("resources")
    if isinstance(resources, list) and resources and all(isinstance(r, str) for r in resources):
        listed = "".join(f"<resources>{escape(uri)}</resources>" for uri in resources)
        return f'<BatchList xmlns="http://naesb.org/espi">{listed}</BatchList>'.encode()
    return next((_batch_list_of(value) for value in item.values() if isinstance(value, str) and value), None)


class _Pge:
    def __init__(self, ctx: Context) -> None:
        fields = ctx.fields
        espi_path, token_path = PATHS[fields.get("environment") or "production"]
        self.espi = (fields.get("espi_path") or espi_path).rstrip("/")
        self.base_url = fields["base_url"]
        session = ctx.http(
            "pge",
            base_url=self.base_url,
            cert=(fields["cert_path"], fields["key_path"]),
            ca_bundle=fields.get("ca_bundle") or None,
        )
        self.oauth = OAuthClient(
            session,
            fields.get("token_path") or token_path,
            fields["client_id"],
            fields["client_secret"],
            cache=ctx.secrets,
        )
        self.bulk_id = fields["bulk_id"]

    def request(self, path: str, params: dict[str, str] | None = None):
        """A GET with the bearer token; redirects followed only under ``base_url``; PG&E's "400 Invalid
        Certificate" (token or data) is a login error."""
        for _ in range(MAX_REDIRECTS + 1):
            response = self._send(path, params)
            if response.status_code not in (301, 302, 303, 307, 308):
                return response
            target = urljoin(urljoin(self.base_url, path), response.headers.get("Location", ""))
            if not batchlist.under(target, self.base_url):
                raise VendorDown(f"PG&E redirected {path} to {target[:200]}, outside {self.base_url}: refused")
            path, params = target, None
        raise VendorDown(f"PG&E redirected {path} more than {MAX_REDIRECTS} times")

    def _send(self, path: str, params: dict[str, str] | None):
        try:
            response = self.oauth.request("GET", path, params=params, allow_redirects=False)
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
            root = parse(self.get(f"{self.espi}/ReadServiceStatus"), name="ServiceStatus")
        except UnsafeXml as exc:
            raise VendorDown(f"PG&E sent an unreadable service status: {exc.message}") from None
        status = next((e.text for e in root.iter() if e.tag.rpartition("}")[2] == "currentStatus"), None)
        return (status or "").strip()

    def request_bulk(self, window: dict[str, str]) -> bytes | None:
        """The Bulk data of the window if PG&E answers it at once (200), None if it will notify (202)."""
        params = {"published-min": window["min"], "published-max": window["max"]}
        return self._asynchronous(f"{self.espi}/Batch/Bulk/{self.bulk_id}", params, "Bulk")

    def request_customers(self) -> bytes | None:
        return self._asynchronous(f"{self.espi}/Batch/BulkRetailCustomerInfo/{self.bulk_id}", None, "customer info")

    def _asynchronous(self, path: str, params: dict[str, str] | None, what: str) -> bytes | None:
        response = self.request(path, params)
        if response.status_code == 202:
            return None
        if response.status_code == 200 and response.content.strip():
            return response.content
        raise VendorDown(f"PG&E answered {response.status_code} to the {what} request: {response.text[:200]}")
