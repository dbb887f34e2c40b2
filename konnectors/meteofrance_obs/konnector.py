"""``meteofrance-obs``: hourly observations of one Météo-France station (DPObs).

The API keeps hourly observations for 24 hours, so each run asks for every
hour since its bookmark that is still kept, one request per hour, under the
quota of 50 requests a minute, and warns about hours it could not fill.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from framework import Chunk, Context, Documents, Konnector, LoginFailed, VendorDown
from framework.http import ProviderSession, RateLimiter
from framework.oauth import OAuthClient
from framework.records import Skipped, warn_skipped
from framework.safexml import UnsafeXml, parse

from . import observations

KEPT_HOURS = 24
HOURLY = "/station/horaire"
STATIONS = "/liste-stations"


class MeteoFranceObservations(Konnector):
    series = (observations.SERIES,)

    def fetch(self, ctx: Context) -> Iterator[Chunk]:
        api = _Api(ctx)
        station = self._station(ctx, api)
        now = ctx.now().astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        oldest_kept = now - timedelta(hours=KEPT_HOURS - 1)
        bookmark = ctx.state.get("bookmark")
        start = oldest_kept
        if bookmark:
            resume = datetime.fromisoformat(bookmark) + timedelta(hours=1)
            if resume < oldest_kept:
                ctx.log.warning(
                    f"observations from {resume:%Y-%m-%d %H:00} to {oldest_kept - timedelta(hours=1):%Y-%m-%d %H:00} "
                    "UTC are no longer kept by Météo-France (24 h): they are missing"
                )
            start = max(resume, oldest_kept)
        empty = []
        hour = start
        while hour <= now:
            found = api.get_json(
                HOURLY, {"id_station": station, "date": f"{hour:%Y-%m-%dT%H:00:00Z}", "format": "json"}
            )
            if not isinstance(found, list):
                raise VendorDown("Météo-France sent observations that are not a list")
            documents, skipped = observations.hour_documents(found, station)
            if documents:
                if empty:
                    ctx.log.warning(f"no observation published for {', '.join(empty)} UTC at station {station}")
                    empty = []
                yield Chunk((station, documents, skipped), bookmark=hour.isoformat())
            else:  # nothing usable yet: the bookmark stays before this hour, the next run asks again
                warn_skipped(ctx.log, f"Météo-France station {station}", skipped)
                empty.append(f"{hour:%Y-%m-%d %H:00}")
            hour += timedelta(hours=1)
        if empty:
            ctx.log.info(f"not yet published: {', '.join(empty)} UTC; the next run asks again")

    def _station(self, ctx: Context, api: _Api) -> str:
        if station := ctx.fields.get("stationId"):
            return station
        latitude, longitude = ctx.fields.get("latitude"), ctx.fields.get("longitude")
        if latitude is None or longitude is None:
            raise LoginFailed("give either the field 'stationId' or both 'latitude' and 'longitude'")
        wanted = [float(latitude), float(longitude)]
        chosen = ctx.state.get("station")
        if chosen and chosen.get("for") == wanted:
            return chosen["id"]
        found = observations.nearest(observations.parse_stations(api.get_text(STATIONS)), *wanted)
        ctx.log.info(f"nearest station to {wanted}: {found.name} ({found.id})")
        ctx.state["station"] = {"id": found.id, "name": found.name, "for": wanted}
        return found.id

    def process(self, ctx: Context, raw: tuple[str, list[dict[str, Any]], list[Skipped]]) -> Documents:
        station, documents, skipped = raw
        warn_skipped(ctx.log, f"Météo-France station {station}", skipped)
        return {observations.HOURS: documents}


class _Api:
    """The DPObs API with either authentication: an API key header, or OAuth2 client credentials."""

    def __init__(self, ctx: Context) -> None:
        fields = ctx.fields
        self.session: ProviderSession = ctx.http(
            "meteofrance", base_url=fields["base_url"].rstrip("/") + "/", limiter=RateLimiter.per(50, 60)
        )
        self.oauth: OAuthClient | None = None
        if fields.get("apiKey"):
            self.session.headers["apikey"] = fields["apiKey"]
        elif fields.get("clientId") and fields.get("clientSecret"):
            self.oauth = OAuthClient(
                self.session, fields["token_url"], fields["clientId"], fields["clientSecret"], cache=ctx.secrets
            )
        else:
            raise LoginFailed("give either the field 'apiKey' or both 'clientId' and 'clientSecret'")

    def _get(self, path: str, params: dict[str, str] | None = None):
        url = path.lstrip("/")
        response = self.oauth.request("GET", url, params=params) if self.oauth else self.session.get(url, params=params)
        if response.status_code == 401:
            raise LoginFailed(f"Météo-France refused the credentials: {_fault_text(response)}")
        if response.status_code == 403:
            raise LoginFailed(f"this application is not subscribed to the DPObs API: {_fault_text(response)}")
        if response.status_code != 200:
            raise VendorDown(f"Météo-France answered {response.status_code} on {path}: {_fault_text(response)}")
        return response

    def get_json(self, path: str, params: dict[str, str]) -> Any:
        try:
            return self._get(path, params).json()
        except ValueError:
            raise VendorDown(f"Météo-France sent a body that is not JSON on {path}") from None

    def get_text(self, path: str) -> str:
        return self._get(path).text


def _fault_text(response) -> str:
    """The message of a WSO2 ``am:fault`` XML body (or the start of any other body)."""
    if b"fault" in response.content[:200]:
        try:
            root = parse(response.content, name="error body", max_bytes=64 * 1024)
        except UnsafeXml:
            return response.text[:200]
        texts = {child.tag.rpartition("}")[2]: (child.text or "").strip() for child in root}
        return " - ".join(t for t in (texts.get("code"), texts.get("message"), texts.get("description")) if t)
    return response.text[:200]
