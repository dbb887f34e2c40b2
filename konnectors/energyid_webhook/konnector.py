"""``energyid-webhook``: push what other konnectors collected to EnergyID (Webhook V2).

A *sink*: it reads the store and writes to the provider. The device provisions
itself with ``/hello`` (with the ``device_id`` field, an already claimed device is reused);
until a person claims it in EnergyID, runs end with ``USER_ACTION_NEEDED`` giving the claim
URL and code. Once claimed, each run sends the readings that are new since each metric's
cursor, as EnergyID's official client does: one object per timestamp, the metrics of that
instant bundled (``{"ts": …, "el": …, "gas": …}``), one request each, no more often than the
policy's upload interval (a rate kept across runs). Each metric's cursor moves, and is saved,
right after EnergyID acknowledged the object holding it: a failed object is sent again, an
acknowledged one is not (a crash between the acknowledgement and the save, the only window,
resends that one object; EnergyID keys readings by time, so it changes nothing).
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from framework import Context, Konnector, LoginFailed, UserActionNeeded, VendorDown
from framework.errors import KonnectorError
from framework.store.backend import HIGH_KEY

from . import metrics

HELLO_EVERY = 24 * 3600
"""The webhook token lasts 48 hours; EnergyID asks devices to say hello every 24."""
LONGEST_WAIT = 60.0
"""A run waits this long at most for the next upload slot; later slots are for later runs."""


class EnergyIdWebhook(Konnector):
    def start(self, ctx: Context) -> None:
        energyid = _EnergyId(ctx)
        interval = metrics.upload_interval(energyid.provisioned()["policy"])
        level = str(ctx.parameters.get("level", "day"))
        converter = metrics.Converter(float(ctx.parameters.get("gas_kwh_per_m3", metrics.GAS_KWH_PER_M3)))
        found: dict[int, list[metrics.Reading]] = defaultdict(list)
        for metric in metrics.mapping(ctx.parameters.get("metrics")):
            sources = list(_sources(ctx, metric, level))
            if not sources:
                ctx.log.info(f"no stored data for EnergyID's '{metric.key}'")
            for key, doctype, meter in sources:
                for reading in _readings(ctx, metric, key, doctype, meter, converter):
                    found[reading.ts].append(reading)
        _send(ctx, energyid, found, interval)

    def check(self, ctx: Context) -> str:
        """``konnector check``: EnergyID's hello with the provisioning key (a claim still to do is an error)."""
        record = _EnergyId(ctx).provisioned()
        return f"provisioned; EnergyID record {record.get('recordName') or record.get('recordNumber') or 'connected'}"


def _sources(ctx: Context, metric: metrics.Metric, level: str):
    """(EnergyID key, doctype, meter id prefix) of each series feeding ``metric``; the first prefix with data wins."""
    for prefix in metric.prefixes:
        for candidate in dict.fromkeys((level, "day")):
            doctype = f"{prefix}.{candidate}"
            if doctype not in ctx.manifest.doctypes or next(ctx.store.id_range(doctype), None) is None:
                continue
            if not metric.per_meter:
                yield metric.key, doctype, ""
            else:
                for meter in _meters(ctx, doctype):
                    yield f"{metric.key}.{meter.lower()}", doctype, meter + "/"
            return


def _meters(ctx: Context, doctype: str) -> list[str]:
    """The meters of a series, one id read each (ids are ``<meter>/<period>``)."""
    meters, start = [], ""
    while (doc := next(ctx.store.id_range(doctype, start), None)) is not None and "/" in doc["_id"]:
        meters.append(doc["_id"].partition("/")[0])
        start = meters[-1] + "/" + HIGH_KEY
    return meters


def _readings(
    ctx: Context, metric: metrics.Metric, key: str, doctype: str, meter: str, converter: metrics.Converter
) -> list[metrics.Reading]:
    start_index = float(ctx.fields.get(f"{key.partition('.')[0]}_start_index") or 0) if metric.cumulative else 0.0
    initial = {"doctype": doctype, "after": "", "total": start_index}
    cursor = ctx.state.setdefault("cursors", {}).setdefault(key, initial)
    if cursor["doctype"] != doctype:
        raise KonnectorError(f"'{key}' was sent from {cursor['doctype']} and is now in {doctype}: reset its cursor")
    prefix, _, level = doctype.rpartition(".")
    ends = metrics.PeriodEnds(level, metrics.zone_of(metric, prefix, ctx.fields.get("timezone") or "UTC"))
    if level == "day" and not metric.zone and prefix not in metrics.ZONES and not ctx.fields.get("timezone"):
        _learn_offsets(ctx, ends, prefix, meter)
    after = cursor["after"] + "\0" if cursor["after"] else meter
    docs = ctx.store.id_range(doctype, after, meter + HIGH_KEY if meter else HIGH_KEY)
    return metrics.readings(metric, key, docs, cursor["total"], ends, converter)


def _learn_offsets(ctx: Context, ends: metrics.PeriodEnds, prefix: str, meter: str) -> None:
    """Days of a series without a zone (Green Button) end at the offset its meter's hour documents
    had: the series' own hours, else those of a sibling series of the same file (gas beside
    electricity)."""
    family = ".".join(prefix.split(".")[:2]) + "."
    siblings = sorted(d for d in ctx.manifest.doctypes if d.startswith(family) and d.endswith(".hour"))
    for hours in sorted(siblings, key=lambda d: d != f"{prefix}.hour"):
        ends.learn(ctx.store.id_range(hours, meter, meter + HIGH_KEY if meter else HIGH_KEY))
        if ends.offsets:
            return


def _send(ctx: Context, energyid: _EnergyId, found: dict[int, list[metrics.Reading]], interval: int) -> None:
    """One object per timestamp, in time order, at the policy's rate; cursors saved after each acknowledgement."""
    uploads = ctx.rate_limit("uploads", 1, interval) if interval > 0 else None
    sent = 0
    for ts in sorted(found):
        if uploads is not None:
            wait = uploads.wait_time()
            left = ctx.time_left()
            if wait > LONGEST_WAIT or (left is not None and wait >= left):
                ctx.log.info(
                    f"EnergyID takes one upload every {interval} s: {len(found) - sent} reading time(s) "
                    f"left for the next runs (the next upload is possible in {wait / 60:.0f} min)"
                )
                break
            uploads.acquire()
        group = found[ts]
        energyid.post({"ts": ts, **{reading.key: reading.value for reading in group}})
        if uploads is not None:
            uploads.hold(interval)  # the interval counts from EnergyID's acknowledgement
        for reading in group:
            ctx.state["cursors"][reading.key].update(after=reading.source_id, total=reading.total)
        ctx.save_state()
        sent += 1
        ctx.count({f"energyid:{reading.key}": 1 for reading in group})
    if sent:
        ctx.log.info(f"sent {sent} reading time(s) to EnergyID")


class _EnergyId:
    """The device's side of the Webhook V2 protocol: hello (provisioning, claim) and posting."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.session = ctx.http("energyid")

    def provisioned(self) -> dict[str, Any]:
        """The webhook details, from the last hello unless it is a day old or was said to another URL."""
        hello = self.ctx.secrets.get("hello")
        stale = hello is None or time.time() - hello["at"] > HELLO_EVERY
        if stale or (hello.get("hello_url"), hello.get("device")) != (self.ctx.fields["hello_url"], self._device()):
            hello = self.hello()
        return hello

    def _device(self) -> str:
        """The ``device_id`` field (reuse a device already claimed in EnergyID), else one made once.

        A made id is saved before EnergyID first hears it: a run killed during its first hello
        would otherwise make another device on the next run, with another claim to do."""
        given = self.ctx.fields.get("device_id")
        if given:
            return given
        if "device_id" not in self.ctx.state:
            self.ctx.state["device_id"] = f"konnectors-{uuid.uuid4().hex[:12]}"
            self.ctx.save_state()
        return self.ctx.state["device_id"]

    def hello(self) -> dict[str, Any]:
        ctx = self.ctx
        device = self._device()
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
            "device": device,
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

    def post(self, body: dict[str, Any]) -> None:
        """Post one object; a 401 or 404 means the token or URL changed: provision again once."""
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
                raise KonnectorError(f"EnergyID refused a reading as malformed: {response.text[:200]}")
            raise VendorDown(f"EnergyID refused a reading ({response.status_code}): {response.text[:200]}")
