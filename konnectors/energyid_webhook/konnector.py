"""``energyid-webhook``: push what other konnectors collected to EnergyID (Webhook V2).

A *sink*: it reads the store and writes to the provider. The device provisions
itself with ``/hello``; until a person claims it in EnergyID, runs end with
``USER_ACTION_NEEDED`` giving the claim URL and code. Once claimed, each run
sends the readings that are new since the last acknowledged batch, as arrays
of bounded size; the cursor moves only after EnergyID acknowledged a batch, so
a failed batch is sent again, and an acknowledged one never is.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from framework import Context, Konnector, LoginFailed, UserActionNeeded, VendorDown
from framework.errors import KonnectorError
from framework.store.backend import HIGH_KEY

from . import metrics

HELLO_EVERY = 24 * 3600
"""The webhook token lasts 48 hours; EnergyID asks devices to say hello every 24."""


class EnergyIdWebhook(Konnector):
    def start(self, ctx: Context) -> None:
        energyid = _EnergyId(ctx)
        interval = metrics.upload_interval(energyid.provisioned()["policy"])
        level = "hour" if interval <= 3600 else "day"
        for metric, prefixes in metrics.DEFAULT_SOURCES.items():
            source = _source(ctx, prefixes, level)
            if source is None:
                ctx.log.info(f"no stored data for '{metric}'")
                continue
            _send_metric(ctx, energyid, metric, source)

    def check(self, ctx: Context) -> str:
        """``konnector check``: EnergyID's hello with the provisioning key (a claim still to do is an error)."""
        record = _EnergyId(ctx).provisioned()
        return f"provisioned; EnergyID record {record.get('recordName') or record.get('recordNumber') or 'connected'}"


def _source(ctx: Context, prefixes: tuple[str, ...], level: str) -> str | None:
    """The first doctype holding data, at ``level`` or else by day."""
    for prefix in prefixes:
        for candidate in dict.fromkeys((level, "day")):
            doctype = f"{prefix}.{candidate}"
            if doctype in ctx.manifest.doctypes and next(ctx.store.id_range(doctype), None) is not None:
                return doctype
    return None


def _send_metric(ctx: Context, energyid: _EnergyId, metric: str, doctype: str) -> None:
    """Send the readings after the cursor in batches, moving the cursor after each acknowledgement."""
    start_index = float(ctx.fields.get(f"{metric}_start_index") or 0)
    cursor = ctx.state.setdefault("cursors", {}).get(metric) or {"doctype": doctype, "after": "", "total": start_index}
    if cursor["doctype"] != doctype:
        raise KonnectorError(f"'{metric}' was sent from {cursor['doctype']} and is now in {doctype}: reset its cursor")
    docs = ctx.store.id_range(doctype, cursor["after"] + "\0" if cursor["after"] else "", HIGH_KEY)
    zone = ZoneInfo(ctx.fields["timezone"])
    found, _ = metrics.readings(metric, doctype.rpartition(".")[2], docs, cursor["total"], zone)
    batch_size = int(ctx.fields["batch_size"])
    for start in range(0, len(found), batch_size):
        batch = found[start : start + batch_size]
        energyid.post([{"ts": reading.ts, metric: reading.value} for reading in batch])
        ctx.state["cursors"][metric] = {"doctype": doctype, "after": batch[-1].source_id, "total": batch[-1].value}
        ctx.save_state()
        ctx.count({f"energyid:{metric}": len(batch)})
    if found:
        ctx.log.info(f"sent {len(found)} '{metric}' readings from {doctype} to EnergyID")


class _EnergyId:
    """The device's side of the Webhook V2 protocol: hello (provisioning, claim) and posting."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.session = ctx.http("energyid")

    def provisioned(self) -> dict[str, Any]:
        """The webhook details, from the last hello unless it is a day old or was said to another URL."""
        hello = self.ctx.secrets.get("hello")
        stale = hello is None or time.time() - hello["at"] > HELLO_EVERY
        if stale or hello.get("hello_url") != self.ctx.fields["hello_url"]:
            hello = self.hello()
        return hello

    def hello(self) -> dict[str, Any]:
        ctx = self.ctx
        device = ctx.state.setdefault("device_id", f"konnectors-{uuid.uuid4().hex[:12]}")
        headers = {
            "X-Provisioning-Key": ctx.fields["provisioning_key"],
            "X-Provisioning-Secret": ctx.fields["provisioning_secret"],
        }
        body = {"deviceId": device, "deviceName": ctx.fields["device_name"], "firmwareVersion": ctx.manifest.version}
        response = self.session.post(ctx.fields["hello_url"], json=body, headers=headers)
        if response.status_code in (401, 403):
            raise LoginFailed("EnergyID refused the provisioning key and secret")
        if response.status_code != 200:
            raise VendorDown(f"EnergyID /hello answered {response.status_code}")
        answer = response.json()
        if "webhookUrl" not in answer:
            self._ask_for_claim(answer)
        ctx.state.pop("claim", None)
        ctx.state["record"] = {"number": answer.get("recordNumber"), "name": answer.get("recordName")}
        hello = {
            "url": answer["webhookUrl"],
            "headers": answer["headers"],
            "hello_url": ctx.fields["hello_url"],
            "policy": answer.get("webhookPolicy") or {},
            "at": time.time(),
        }
        ctx.secrets["hello"] = hello
        ctx.save_state()
        ctx.log.info(f"EnergyID record {answer.get('recordName')} ({answer.get('recordNumber')}) connected")
        return hello

    def _ask_for_claim(self, answer: dict[str, Any]) -> None:
        self.ctx.state["claim"] = {"code": answer["claimCode"], "url": answer["claimUrl"], "exp": answer["exp"]}
        self.ctx.save_state()
        until = datetime.fromtimestamp(int(answer["exp"]), UTC).strftime("%Y-%m-%d %H:%M UTC")
        raise UserActionNeeded(
            f"claim this device in EnergyID: open {answer['claimUrl']} and enter the code "
            f"{answer['claimCode']} (valid until {until}); the next run then sends the data"
        )

    def post(self, body: list[dict[str, Any]]) -> None:
        """Post one batch; a 401 or 404 means the token or URL changed: provision again once."""
        hello = self.provisioned()
        for attempt in range(2):
            response = self.session.post(hello["url"], json=body, headers=hello["headers"])
            if response.status_code in (200, 201):
                return
            if response.status_code in (401, 404) and attempt == 0:
                self.ctx.log.info(f"EnergyID answered {response.status_code}: provisioning again")
                hello = self.hello()
                continue
            if response.status_code == 403:
                raise UserActionNeeded("EnergyID disabled this webhook for the record: enable it again in EnergyID")
            if response.status_code == 400:
                raise KonnectorError(f"EnergyID refused a batch as malformed: {response.text[:200]}")
            raise VendorDown(f"EnergyID refused a batch ({response.status_code}): {response.text[:200]}")
