"""``rte-ecowatt``: RTE's Ecowatt v5 signals, stored as days and as tension/decarbonised periods.

RTE allows one call per 15 minutes per application. The limit is kept in the
account state: a run inside the window makes no call, keeps what is stored and
says so; a 429 anyway (another client with the same application) is reported
the same way, never retried in a loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from framework import Chunk, Context, Documents, Konnector, LoginFailed, PartialSync, VendorDown
from framework.http import RetryPolicy, retry_after
from framework.oauth import OAuthClient
from framework.records import warn_skipped

from . import signals

DAYS = "fr.rte.ecowatt.day"
PERIODS = "fr.rte.ecowatt.period"
QUOTA_SECONDS = 15 * 60
TOKEN_PATH = "/token/oauth/"
SIGNALS_PATH = "/open_api/ecowatt/v5/signals"
SANDBOX_SIGNALS_PATH = "/open_api/ecowatt/v5/sandbox/signals"


class Ecowatt(Konnector):
    dedup_keys: ClassVar = {DAYS: ("date",), PERIODS: ("_id",)}

    def fetch(self, ctx: Context) -> Iterator[Chunk]:
        quota = ctx.rate_limit("signals", 1, QUOTA_SECONDS)
        wait = quota.wait_time()
        if wait > 0:
            ctx.log.info(
                f"RTE allows one Ecowatt call per 15 minutes: keeping the stored signals; "
                f"the next call is possible in {wait / 60:.0f} min"
            )
            return
        session = ctx.http("rte", base_url=ctx.fields["base_url"], retry=RetryPolicy(on_429=False))
        oauth = OAuthClient(
            session, TOKEN_PATH, ctx.fields["client_id"], ctx.fields["client_secret"], cache=ctx.secrets
        )
        quota.acquire()
        response = oauth.request("GET", SANDBOX_SIGNALS_PATH if ctx.fields.get("sandbox") else SIGNALS_PATH)
        ctx.save_state()
        if response.status_code == 429:
            ctx.log.warning(
                "RTE answered 429: this application's Ecowatt quota is already used (by another client?); "
                "keeping the stored signals"
            )
            quota.hold(retry_after(response) or QUOTA_SECONDS)
            ctx.save_state()
            return
        if response.status_code in (401, 403):
            raise LoginFailed(
                "RTE refused the Ecowatt data: check that the application is subscribed to the "
                f"Ecowatt API and that its client_id and client_secret are right ({response.status_code})"
            )
        if response.status_code != 200:
            raise VendorDown(f"RTE Ecowatt answered {response.status_code}")
        try:
            yield Chunk(response.json())
        except ValueError:
            raise VendorDown("RTE Ecowatt sent a body that is not JSON") from None

    def process(self, ctx: Context, payload: object) -> Documents:
        parsed = signals.parse(payload)
        warn_skipped(ctx.log, "RTE Ecowatt", parsed.skipped)
        if parsed.signals and not parsed.days:
            raise PartialSync("RTE Ecowatt sent no usable day (see the warnings): nothing was stored")
        days = parsed.days
        return {
            DAYS: [signals.day_document(day) for day in days],
            PERIODS: [period for day in days for period in signals.periods(day)],
        }

    def store(self, ctx: Context, documents: Documents) -> None:
        """Days are upserted; each day's periods are replaced exactly by the new computation."""
        super().store(ctx, {DAYS: documents.get(DAYS, [])})
        fresh = {p["_id"] for p in documents.get(PERIODS, [])}
        stale = [
            doc
            for day in documents.get(DAYS, [])
            for doc in ctx.store.with_prefix(PERIODS, day["date"] + "/")
            if doc["_id"] not in fresh
        ]
        if stale:
            ctx.store.delete(PERIODS, stale)
            ctx.log.info(f"{len(stale)} period(s) no longer in RTE's revised forecast removed")
        super().store(ctx, {PERIODS: documents.get(PERIODS, [])})
