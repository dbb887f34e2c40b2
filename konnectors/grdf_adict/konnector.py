"""``grdf-adict``: daily gas consumption from GRDF's ADICT API.

Consent, either way:
- *Client Connect* (default): the platform ran GRDF's OAuth consent; its token answer holds an
  ``id_token`` whose claims carry the PCE(s). The first run reads them (PyJWT), then the data
  call with the consent's metadata-only token is refused (403) and the konnector escalates to a
  client-credentials token with scope ``/adict/v2``, which later runs simply renew.
- *Tiers Direct*: the konnector declares the access right itself with the holder's identity;
  GRDF e-mails the holder, and the right stays "A valider" until they accept it.
Either way, the access right's state is checked on every run and revoked on account deletion.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any, ClassVar

import requests

from framework import Chunk, Context, Documents, Konnector, LoginFailed, OAuthOutdated, UserActionNeeded, VendorDown
from framework.http import RateLimiter
from framework.oauth import OAuthClient, id_token_claims

from . import consumption, ndjson

SCOPE = "/adict/v2"
RIGHTS = "/adict/v2/droits_acces"
INFORMATIVE, PUBLISHED = "donnees_consos_informatives", "donnees_consos_publiees"
HISTORY = {INFORMATIVE: 3 * 365, PUBLISHED: 5 * 365}
HISTORY_PARAMETER = {INFORMATIVE: "informative_history_days", PUBLISHED: "published_history_days"}
LOOK_BACK = {INFORMATIVE: 45, PUBLISHED: 120}
"""Provisional values become final weeks later: each run reads this far back again."""
WINDOW_DAYS = 365
ACTIVE, PENDING = "Active", "A valider"


class GrdfAdict(Konnector):
    series = (consumption.SERIES,)
    dedup_keys: ClassVar = {consumption.PERIOD: ("_id",)}

    def fetch(self, ctx: Context) -> Iterator[Chunk]:
        api = _Api(ctx)
        today = ctx.now().date()
        bookmarks: dict[str, str] = dict(ctx.state.get("bookmark") or {})
        for pce in self._pces(ctx, api):
            api.ensure_access_right(pce)
            for kind in (INFORMATIVE, PUBLISHED):
                key = f"{pce}/{kind}"
                start = today - timedelta(int(ctx.parameters.get(HISTORY_PARAMETER[kind], HISTORY[kind])))
                if key in bookmarks:
                    start = max(start, date.fromisoformat(bookmarks[key]) - timedelta(LOOK_BACK[kind]))
                while start < today:
                    end = min(start + timedelta(WINDOW_DAYS), today)
                    records = api.records(pce, kind, start, end)
                    bookmarks[key] = end.isoformat()
                    yield Chunk((pce, kind, records), bookmark=dict(bookmarks))
                    start = end

    def _pces(self, ctx: Context, api: _Api) -> list[str]:
        if ctx.fields["mode"] == "tiers_direct":
            return [ctx.fields["pce"]]
        if pces := ctx.state.get("pces"):
            return pces
        id_token = ctx.account.oauth.get("id_token")
        if not id_token:
            raise OAuthOutdated("no GRDF consent is stored for this account (no id_token): connect it again")
        claims = id_token_claims(
            id_token, jwks=api.jwks(), audience=ctx.fields["client_id"], unverified=not ctx.fields.get("jwks_url")
        )
        found = claims.get("pce") or claims.get("pces")
        pces = [found] if isinstance(found, str) else list(found or [])
        if not pces:
            raise LoginFailed("GRDF's id_token names no PCE: the consent did not cover a meter")
        ctx.log.info(f"PCE from the consent: {', '.join(pces)}")
        ctx.state["pces"] = pces
        return pces

    def process(self, ctx: Context, raw: tuple[str, str, list[dict[str, Any]]]) -> Documents:
        pce, kind, records = raw
        if kind == PUBLISHED:
            return {consumption.PERIOD: consumption.period_documents(records, pce)}
        days, missing = consumption.day_documents(records, pce)
        if missing:
            ctx.log.warning(f"GRDF has no data for {len(missing)} gas day(s) of PCE {pce}: {missing[0]}")
        return {consumption.DAY: days}

    def on_delete_account(self, ctx: Context) -> None:
        """Revoke every access right this account holds at GRDF; already revoked ones are left as they are."""
        api = _Api(ctx)
        pces = ctx.state.get("pces") or ([ctx.fields["pce"]] if ctx.fields.get("pce") else [])
        for pce in pces:
            right = api.access_right(pce)
            if right is None or right["etat_droit_acces"] not in (ACTIVE, PENDING):
                ctx.log.info(f"no active GRDF access right for PCE {pce}: nothing to revoke")
                continue
            api.revoke(right["id_droit_acces"])
            ctx.log.info(f"GRDF access right {right['id_droit_acces']} for PCE {pce} revoked")


class _Api:
    def __init__(self, ctx: Context) -> None:
        fields = ctx.fields
        self.ctx = ctx
        self.session = ctx.http("grdf", base_url=fields["base_url"], limiter=RateLimiter(1, capacity=1))
        self.oauth = OAuthClient(
            self.session,
            fields["token_url"],
            fields["client_id"],
            fields["client_secret"],
            cache=ctx.secrets,
            scope=SCOPE,
            client_auth="form",
        )
        consent_token = ctx.account.oauth.get("access_token")
        if consent_token:
            self.oauth.seed(consent_token, None)

    def jwks(self) -> dict[str, Any] | None:
        url = self.ctx.fields.get("jwks_url")
        return self._checked(self.session.get(url), "JWKS").json() if url else None

    def _checked(self, response: requests.Response, what: str) -> requests.Response:
        if response.status_code in (401, 403):
            raise LoginFailed(f"GRDF refused the application's access to {what} ({response.status_code})")
        if response.status_code >= 400:
            raise VendorDown(f"GRDF answered {response.status_code} on {what}: {response.text[:200]}")
        return response

    def _objects(self, method: str, path: str, **kwargs: Any) -> list[dict[str, Any]]:
        headers = {"Accept": "application/nd-json", **kwargs.pop("headers", {})}
        response = self._checked(self.oauth.request(method, path, headers=headers, **kwargs), path)
        return list(ndjson.objects(response.content, f"GRDF {path}"))

    def access_right(self, pce: str) -> dict[str, Any] | None:
        rights = [r for r in self._objects("GET", RIGHTS) if r.get("id_pce") == pce]
        return max(rights, key=lambda r: r.get("date_debut_droit_acces", ""), default=None)

    def ensure_access_right(self, pce: str) -> None:
        right = self.access_right(pce)
        if right is None and self.ctx.fields["mode"] == "tiers_direct":
            right = self._declare(pce)
        if right is None:
            raise OAuthOutdated(f"GRDF holds no access right for PCE {pce}: the holder must consent again")
        state = right["etat_droit_acces"]
        self.ctx.state.setdefault("access_rights", {})[pce] = right["id_droit_acces"]
        if state == PENDING:
            raise UserActionNeeded(
                f"the access right to PCE {pce} is awaiting the holder's approval: GRDF sent them an e-mail; "
                "the next run continues once they accept"
            )
        if state != ACTIVE:
            raise UserActionNeeded(f"the access right to PCE {pce} is {state}: the holder must consent again")

    def _declare(self, pce: str) -> dict[str, Any]:
        fields, today = self.ctx.fields, self.ctx.now().date()
        body = {
            "role_tiers": "AUTORISE_CONTRAT_FOURNITURE",
            "nom_titulaire": fields["lastname"],
            "code_postal": fields["postal_code"],
            "courriel_titulaire": fields["email"],
            "date_consentement_declare": today.isoformat(),
            "date_debut_droit_acces": today.isoformat(),
            "date_fin_droit_acces": (today + timedelta(days=3 * 365)).isoformat(),
            "perim_donnees_contractuelles": "Faux",
            "perim_donnees_techniques": "Faux",
            "perim_donnees_informatives": "Vrai",
            "perim_donnees_publiees": "Vrai",
        }
        [right, *_] = self._objects("PUT", f"/adict/v2/pce/{pce}/droit_acces", json=body, idempotent=False)
        self.ctx.log.info(f"access right to PCE {pce} declared to GRDF ({right.get('etat_droit_acces')})")
        return right

    def records(self, pce: str, kind: str, start: date, end: date) -> list[dict[str, Any]]:
        query = {"date_debut": start.isoformat(), "date_fin": end.isoformat()}
        return self._objects("GET", f"/adict/v2/pce/{pce}/{kind}", params=query)

    def revoke(self, right_id: str) -> None:
        self._objects("PATCH", f"/adict/v2/droit_acces/{right_id}", json={"etat_droit_acces": "Révoquée"})
