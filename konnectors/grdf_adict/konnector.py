"""``grdf-adict``: daily gas consumption from GRDF's ADICT API.

Consent, either way:
- *Client Connect* (default): the platform ran GRDF's OAuth consent; its token answer holds an
  ``id_token`` whose claims carry the PCE(s) (``pce_id``, or ``pce``/``pces``/``id_pce``:
  ``PCE_CLAIMS``). The first run reads them (PyJWT), then the data
  call with the consent's metadata-only token is refused (403) and the konnector escalates to a
  client-credentials token with scope ``/adict/v2``, which later runs simply renew.
- *Tiers Direct*: the konnector declares the access right itself with the holder's identity;
  GRDF e-mails the holder, and the right stays "A valider" until they accept it. The declaration
  carries the consumption perimeter (``perim_donnees_conso_debut``/``_fin``).
Either way, the access right's state (``rights.STATES``) is checked on every run and revoked on
account deletion. Each stream's bookmark is the last gas day or billing period GRDF delivered.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any, ClassVar

import requests

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
from framework.http import RateLimiter
from framework.marks import StreamMark
from framework.oauth import OAuthClient, id_token_claims
from framework.records import warn_skipped

from . import consumption, ndjson, rights

SCOPE = "/adict/v2"
RIGHTS = "/adict/v2/droits_acces"
INFORMATIVE, PUBLISHED = "donnees_consos_informatives", "donnees_consos_publiees"
HISTORY = {INFORMATIVE: 3 * 365, PUBLISHED: 5 * 365}
HISTORY_PARAMETER = {INFORMATIVE: "informative_history_days", PUBLISHED: "published_history_days"}
LOOK_BACK = {INFORMATIVE: 45, PUBLISHED: 120}
"""Provisional values become final weeks later: each run reads this far back again."""
WINDOW_DAYS = 365
BILLING_OVERLAP_DAYS = 190
"""Longer than any billing period GRDF publishes (monthly for Gazpar meters, six-monthly for others)."""
LATE_PATIENCE_DAYS = 30
PCE_CLAIMS = ("pce_id", "pce", "pces", "id_pce", "pce_ids")
"""id_token claims naming the consented meter(s): ``pce_id`` in GRDF's Client Connect tokens (the
Ecolyo konnector's documentation), ``pce``/``pces``/``id_pce`` in others."""
PARSERS = {INFORMATIVE: consumption.day_documents, PUBLISHED: consumption.period_documents}


class GrdfAdict(Konnector):
    series = (consumption.SERIES,)
    dedup_keys: ClassVar = {consumption.PERIOD: ("_id",)}

    def fetch(self, ctx: Context) -> Iterator[Chunk]:
        api = _Api(ctx)
        today = ctx.now().date()
        saved = ctx.state.get("bookmark") or {}
        marks: dict[str, StreamMark] = {key: StreamMark.load(value) for key, value in saved.items()}
        unusable = []
        for pce in self._pces(ctx, api):
            api.ensure_access_right(pce)
            for kind in (INFORMATIVE, PUBLISHED):
                key = f"{pce}/{kind}"
                mark = marks.setdefault(key, StreamMark())
                floor = today - timedelta(int(ctx.parameters.get(HISTORY_PARAMETER[kind], HISTORY[kind])))
                start = mark.resume_from(floor, LOOK_BACK[kind], LATE_PATIENCE_DAYS, ctx.log, f"GRDF {kind} {pce}")
                for window_start, window_end in windows(start, today, kind):
                    records = api.records(pce, kind, window_start, window_end)
                    parsed = PARSERS[kind](records, pce)
                    if parsed.skipped and not parsed.documents:
                        unusable.append(f"{kind} of PCE {pce} from {window_start} to {window_end}")
                    mark.delivered(parsed.last_day(), window_end)
                    yield Chunk((pce, kind, parsed), bookmark={k: m.dump() for k, m in marks.items()})
        if unusable:
            raise PartialSync(f"GRDF sent no usable record for {'; '.join(unusable[:5])} (see the warnings)")

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
        pces = pces_of(claims)
        if not pces:
            raise LoginFailed(
                f"GRDF's id_token names no PCE (claims {', '.join(PCE_CLAIMS)}): the consent did not cover a meter"
            )
        ctx.log.info(f"PCE from the consent: {', '.join(pces)}")
        ctx.state["pces"] = pces
        return pces

    def process(self, ctx: Context, raw: tuple[str, str, consumption.Parsed]) -> Documents:
        pce, kind, parsed = raw
        warn_skipped(ctx.log, f"GRDF {kind} of PCE {pce}", parsed.skipped)
        if parsed.missing:
            ctx.log.warning(f"GRDF has no data for {len(parsed.missing)} gas day(s) of PCE {pce}: {parsed.missing[0]}")
        return {consumption.PERIOD if kind == PUBLISHED else consumption.DAY: parsed.documents}

    def on_delete_account(self, ctx: Context) -> None:
        """Revoke every access right this account holds at GRDF; already revoked ones are left as they are."""
        api = _Api(ctx)
        pces = ctx.state.get("pces") or ([ctx.fields["pce"]] if ctx.fields.get("pce") else [])
        for pce in pces:
            right = api.access_right(pce)
            if right is None or rights.meaning(right.get("etat_droit_acces")) == rights.CONSENT:
                ctx.log.info(f"no active GRDF access right for PCE {pce}: nothing to revoke")
                continue
            if not right.get("id_droit_acces"):
                ctx.log.warning(f"GRDF lists a right for PCE {pce} without its id: revoke it in GRDF's portal")
                continue
            api.revoke(right["id_droit_acces"])
            ctx.log.info(f"GRDF access right {right['id_droit_acces']} for PCE {pce} revoked")


def pces_of(claims: dict[str, Any]) -> list[str]:
    """The PCEs an id_token names, under whichever of :data:`PCE_CLAIMS` it uses (a string or a list)."""
    for name in PCE_CLAIMS:
        found = claims.get(name)
        if isinstance(found, str) and found.strip():
            return [p.strip() for p in found.split(",") if p.strip()]
        if isinstance(found, list) and found:
            return [str(p) for p in found if p]
    return []


def windows(start: date, end: date, kind: str) -> list[tuple[date, date]]:
    """Request windows of at most 365 days; billing-period windows overlap by the longest period.

    GRDF returns the billing periods that lie inside the window asked, so a period across
    two windows' boundary would be in neither: with an overlap at least as long as any
    period, every period lies whole inside some window (duplicates are the same ids).
    """
    overlap = BILLING_OVERLAP_DAYS if kind == PUBLISHED else 0
    found, cursor = [], start
    while cursor < end:
        stop = min(cursor + timedelta(WINDOW_DAYS), end)
        found.append((cursor, stop))
        if stop == end:
            break
        cursor = stop - timedelta(overlap)
    return found


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
        """The latest right to ``pce``; a right in force wins over a newer refused or revoked one."""
        found = [r for r in rights.rights_of(self._objects("GET", RIGHTS)) if r.get("id_pce") == pce]

        def rank(right: dict[str, Any]) -> tuple[bool, str]:
            in_force = rights.meaning(right.get("etat_droit_acces")) != rights.CONSENT
            return in_force, str(right.get("date_debut_droit_acces") or "")

        return max(found, key=rank, default=None)

    def ensure_access_right(self, pce: str) -> None:
        right = self.access_right(pce)
        if right is None and self.ctx.fields["mode"] == "tiers_direct":
            right = self._declare(pce)
        if right is None:
            raise OAuthOutdated(f"GRDF holds no access right for PCE {pce}: the holder must consent again")
        state = right.get("etat_droit_acces")
        if right.get("id_droit_acces"):
            self.ctx.state.setdefault("access_rights", {})[pce] = right["id_droit_acces"]
        meaning = rights.meaning(state)
        if meaning == rights.WAIT:
            raise UserActionNeeded(
                f"the access right to PCE {pce} is {state}: awaiting the holder's approval (GRDF sent them an "
                "e-mail) or GRDF's check; the next run continues once it is active"
            )
        if meaning != rights.COLLECT:
            raise UserActionNeeded(f"the access right to PCE {pce} is {state}: the holder must consent again")

    def _declare(self, pce: str) -> dict[str, Any]:
        """Declare the right (Tiers Direct); GRDF answers a status and the right's id, not its state."""
        fields, today = self.ctx.fields, self.ctx.now().date()
        history = int(self.ctx.parameters.get(HISTORY_PARAMETER[PUBLISHED], HISTORY[PUBLISHED]))
        end = today + timedelta(days=3 * 365)
        body = {
            "role_tiers": "AUTORISE_CONTRAT_FOURNITURE",
            "nom_titulaire": fields["lastname"],
            "code_postal": fields["postal_code"],
            "courriel_titulaire": fields["email"],
            "date_consentement_declare": today.isoformat(),
            "date_debut_droit_acces": today.isoformat(),
            "date_fin_droit_acces": end.isoformat(),
            "perim_donnees_conso_debut": (today - timedelta(history)).isoformat(),
            "perim_donnees_conso_fin": end.isoformat(),
            "perim_donnees_contractuelles": "Faux",
            "perim_donnees_techniques": "Faux",
            "perim_donnees_informatives": "Vrai",
            "perim_donnees_publiees": "Vrai",
        }
        answer = self._objects("PUT", f"/adict/v2/pce/{pce}/droit_acces", json=body, idempotent=False)
        right = {"id_pce": pce, "etat_droit_acces": "A valider", **(answer[0] if answer else {})}
        message = right.get("message_retour_traitement") or right["etat_droit_acces"]
        self.ctx.log.info(f"access right to PCE {pce} declared to GRDF ({message})")
        return right

    def records(self, pce: str, kind: str, start: date, end: date) -> list[dict[str, Any]]:
        query = {"date_debut": start.isoformat(), "date_fin": end.isoformat()}
        return self._objects("GET", f"/adict/v2/pce/{pce}/{kind}", params=query)

    def revoke(self, right_id: str) -> None:
        self._objects("PATCH", f"/adict/v2/droit_acces/{right_id}", json={"etat_droit_acces": rights.REVOKED})
