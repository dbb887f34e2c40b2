"""``enedis-dataconnect``: Enedis Data Connect, API generations v4 and v5.

A first run loads all the history the provider keeps, in provider-sized
windows: daily energy 36 months back in 365-day calls, max power (v5) the same,
the load curve 24 months back in 7-day calls. It is resumable: each stream's
bookmark is saved as its windows are stored, so a run stopped by the deadline
continues where it was. A stream's bookmark is the last day Enedis actually delivered (not the
end of the window asked), and later runs start a look-back before it, since Enedis publishes
late and corrects recent data (``framework.marks``). A bad reading is skipped with a warning;
a window whose readings were all bad ends the run ``PARTIAL_SYNC`` once the rest is stored.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, ClassVar

from framework import (
    Chunk,
    Context,
    Documents,
    Konnector,
    LoginFailed,
    OAuthOutdated,
    PartialSync,
    UserActionNeeded,
    VendorDown,
)
from framework.http import Prefetch, RateLimiter
from framework.marks import StreamMark
from framework.oauth import OAuthClient
from framework.records import warn_skipped

from . import metering

TOKEN_PATH = "/oauth2/v3/token"
CONSENT_GONE = "ADAM-DC-0008"
OUTCOMES = {
    "ADAM-DC-0009": "too_early",  # start before the consent's start
    "ADAM-ERR0123": "too_early",  # start before the meter's activation
    "ADAM-ERR0126": "window_too_long",
    "ADAM-DC-0015": "window_too_long",
    "ADAM-ERR0075": "curve_refused",  # the customer refused load-curve recording
}
QUOTA = 5
"""Calls a second per application (the sandbox's docstring cites the source)."""
MARGIN = 0.03
"""The spacing kept over 1 / QUOTA: 6 ms between calls, 30 ms over any six."""
LATE_PATIENCE_DAYS = 14
"""Days not yet published are asked for again by later runs for this long, then given up on."""


@dataclass(frozen=True)
class Stream:
    name: str
    paths: dict[str, str]
    """API path by version; a stream missing from a version is skipped."""
    window_days: int
    history_days: int
    look_back_days: int
    parse: Callable[[Any], metering.Parsed]
    doctype: str


STREAMS = (
    Stream(
        "daily",
        {"v4": "/v4/metering_data/daily_consumption", "v5": "/metering_data_dc/v5/daily_consumption"},
        365,
        3 * 365,
        7,
        metering.daily,
        metering.DAY,
    ),
    Stream(
        "max_power",
        {"v5": "/metering_data_dcmp/v5/daily_consumption_max_power"},
        365,
        3 * 365,
        7,
        metering.max_power,
        metering.MAX_POWER,
    ),
    Stream(
        "curve",
        {"v4": "/v4/metering_data/consumption_load_curve", "v5": "/metering_data_clc/v5/consumption_load_curve"},
        7,
        2 * 365,
        2,
        metering.load_curve,
        metering.MINUTE,
    ),
)


class EnedisDataConnect(Konnector):
    series = (metering.SERIES,)
    dedup_keys: ClassVar = {metering.MAX_POWER: ("_id",)}

    def fetch(self, ctx: Context) -> Iterator[Chunk]:
        api = _Api(ctx)
        today = ctx.now().astimezone(metering.PARIS).date()
        saved = ctx.state.get("bookmark") or {}
        marks = {stream.name: StreamMark.load(saved.get(stream.name)) for stream in STREAMS}
        streams = [stream for stream in STREAMS if api.version in stream.paths]
        window = {stream.name: stream.window_days for stream in streams}
        refused, unusable, failed = False, [], None

        def ask(call: tuple[Stream, tuple[date, date]]) -> tuple[str, metering.Parsed | None]:
            """One window, asked and parsed (in a worker: a malformed answer fails its stream only)."""
            stream, (start, end) = call
            outcome, payload = api.get(stream.paths[api.version], start, end)
            if outcome == "ok":
                return outcome, stream.parse(payload)
            return outcome, metering.Parsed() if outcome == "empty" else None

        def plan(stream: Stream, start: date) -> None:
            calls.plan(stream.name, [(stream, w) for w in _windows(start, today, window[stream.name])])

        # One queue for the three streams, taking turns: the quota is used from the first call to
        # the last, never idle while one stream's last answers are awaited (docs/performance.md).
        # A stream that fails (VendorDown: its API down, its answers malformed) ends alone: the
        # others are fetched and stored, then the run ends with that error.
        with Prefetch(ask, lane_errors=(VendorDown,)) as calls:
            for stream in streams:
                plan(stream, self._start(ctx, stream, marks[stream.name], today))
            for _, (stream, (window_start, window_end)), (outcome, parsed) in calls:
                if parsed is not None:
                    if parsed.skipped and not parsed.documents:
                        unusable.append(f"{stream.name} {window_start} to {window_end - timedelta(1)}")
                    marks[stream.name].delivered(parsed.last_day(), window_end)
                    bookmark = {name: mark.dump() for name, mark in marks.items()}
                    yield Chunk((stream, parsed), bookmark=bookmark)
                    continue
                # This stream's later windows are dropped and planned again from this one.
                start = window_start
                if outcome == "window_too_long" and window[stream.name] > 1:
                    window[stream.name] //= 2
                elif outcome == "too_early":
                    start = self._earliest_accepted(ctx, api, stream, window_start, window_end)
                elif outcome == "curve_refused":
                    refused, start = True, today
                else:
                    failed = failed or VendorDown(f"Enedis kept refusing {stream.name} windows ({outcome})")
                    start = today
                plan(stream, start)
        if failed:
            raise failed
        if refused:
            raise UserActionNeeded(
                "the customer refused the recording of the load curve (ADAM-ERR0075): daily data was "
                "imported; to get the half-hour curve, enable its recording in the Enedis customer account"
            )
        if unusable:
            raise PartialSync(
                f"Enedis sent no usable reading for {'; '.join(unusable[:5])} (see the warnings): "
                "everything else is stored"
            )

    @staticmethod
    def _start(ctx: Context, stream: Stream, mark: StreamMark, today: date) -> date:
        history = int(ctx.parameters.get(f"{stream.name}_history_days", stream.history_days))
        floor = today - timedelta(history)
        earliest = ctx.state.get("earliest", {}).get(stream.name)
        if earliest:
            floor = max(floor, date.fromisoformat(earliest))
        return mark.resume_from(floor, stream.look_back_days, LATE_PATIENCE_DAYS, ctx.log, f"Enedis {stream.name}")

    @staticmethod
    def _earliest_accepted(ctx: Context, api: _Api, stream: Stream, start: date, end: date) -> date:
        """Enedis refuses a start before the consent or the meter's activation: find the first day it accepts.

        ``start`` is known refused; bisection between it and ``end`` costs a few calls, and the
        answer is kept in the state for later runs.
        """
        refused, accepted = start, end
        while (accepted - refused).days > 1:
            middle = refused + (accepted - refused) / 2
            outcome, _ = api.get(stream.paths[api.version], middle, end)
            if outcome == "too_early":
                refused = middle
            else:
                accepted = middle
        ctx.state.setdefault("earliest", {})[stream.name] = accepted.isoformat()
        ctx.log.info(f"Enedis keeps {stream.name} data from {accepted} for this usage point")
        return accepted

    def process(self, ctx: Context, raw: tuple[Stream, metering.Parsed]) -> Documents:
        stream, parsed = raw
        warn_skipped(ctx.log, f"Enedis {stream.name}", parsed.skipped)
        return {stream.doctype: parsed.documents}


def _windows(start: date, end: date, days: int) -> list[tuple[date, date]]:
    edges = [start + timedelta(n) for n in range(0, (end - start).days, days)] + [end]
    return list(itertools.pairwise(edges))


class _Api:
    """Authenticated calls to one usage point's metering data, answers classified."""

    def __init__(self, ctx: Context) -> None:
        fields = ctx.fields
        self.version = fields["api_version"]
        # 5 calls a second, evenly spaced (a gateway may count any second, or smooth to one per 200 ms),
        # MARGIN under: the quota counts arrivals, and the spacing counts from when a call is written
        # (RateLimiter.sending), so the margin covers only the jitter between write and arrival (at
        # most 3 ms over six calls on loopback under load, bench/enedis_backfill.py; a 6th call in
        # a second is a 429 and a pause of every call).
        session = ctx.http("enedis", base_url=fields["base_url"], limiter=RateLimiter(QUOTA / (1 + MARGIN), capacity=1))
        grant = "client_credentials" if self.version == "v5" else "authorization_code"
        # v4 tokens come from the person's consent: under cozy-stack the stack, which holds the
        # application's secret, refreshes them (seed 003: "the platform's proxy refreshes tokens").
        platform_refresh = ctx.platform_refresh if self.version == "v4" else None
        if not fields.get("client_secret") and platform_refresh is None:
            raise LoginFailed(
                "give the field 'client_secret' (only v4 under cozy-stack, which refreshes tokens, can omit it)"
            )
        self.oauth = OAuthClient(
            session,
            TOKEN_PATH,
            fields["client_id"],
            fields.get("client_secret", ""),
            cache=ctx.secrets,
            grant=grant,
            client_auth=fields["client_auth"],
            platform_refresh=platform_refresh,
        )
        if self.version == "v4":
            tokens = ctx.account.oauth
            if not tokens.get("refresh_token"):
                raise OAuthOutdated("no Enedis consent is stored for this account: connect it with Enedis first")
            expires_at = float(tokens["expires_at"]) if tokens.get("expires_at") else None
            self.oauth.seed(tokens.get("access_token", ""), tokens["refresh_token"], expires_at)
        callback = ctx.account.extra.get("oauth_callback_results") or {}
        self.usage_point = fields.get("usage_point_id") or callback.get("usage_point_id")
        if not self.usage_point:
            raise LoginFailed("no usage point: give the field 'usage_point_id' (14 digits) or consent again")

    def get(self, path: str, start: date, end: date) -> tuple[str, Any]:
        query = {"usage_point_id": self.usage_point, "start": start.isoformat(), "end": end.isoformat()}
        response = self.oauth.request("GET", path, params=query)
        if response.status_code == 200:
            try:
                return "ok", response.json()
            except ValueError:
                raise VendorDown(f"Enedis sent a body that is not JSON on {path}") from None
        error, description = _error(response)
        if response.status_code == 404 and error == "no_data_found":
            return "empty", None
        if error == CONSENT_GONE:
            raise OAuthOutdated(f"the Enedis consent for this usage point is missing or revoked ({error})")
        if error in OUTCOMES:
            return OUTCOMES[error], None
        if response.status_code in (401, 403):
            raise LoginFailed(f"Enedis refused the application's credentials ({response.status_code} {error})")
        raise VendorDown(f"Enedis answered {response.status_code} on {path}: {error} {description}".rstrip())


def _error(response) -> tuple[str, str]:
    try:
        body = response.json()
    except ValueError:
        return "", response.text[:200]
    if not isinstance(body, dict):
        return "", str(body)[:200]
    return str(body.get("error", "")), str(body.get("error_description", ""))
