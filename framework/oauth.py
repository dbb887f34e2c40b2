"""OAuth2 for konnectors: client credentials, authorization code + refresh, id_token claims.

Tokens are cached with their expiry in the account's encrypted state
(``ctx.secrets``), renewed shortly before they expire, and renewed once more
when the provider answers 401/403 anyway. A refused refresh (``invalid_grant``)
means the user's consent is gone: ``USER_ACTION_NEEDED.OAUTH_OUTDATED``.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import jwt
import requests

from .errors import ConfigurationError, LoginFailed, OAuthOutdated, VendorDown
from .http import ProviderSession
from .safexml import UnsafeXml, parse

REFRESH_MARGIN = 60.0
"""Seconds before expiry at which a token is renewed rather than used."""


@dataclass
class Token:
    access_token: str
    expires_at: float
    refresh_token: str | None = None
    id_token: str | None = None
    scope: str | None = None

    @classmethod
    def from_response(cls, payload: dict[str, Any], now: float, previous: Token | None = None) -> Token:
        """From a token endpoint's JSON; ``expires_in`` may be a number or a string."""
        access = payload.get("access_token") or payload.get("client_access_token")
        if not access:
            raise VendorDown(f"token endpoint answered without an access token (keys: {sorted(payload)})")
        try:
            lifetime = float(payload.get("expires_in", 3600))
        except (TypeError, ValueError):
            raise VendorDown(f"token endpoint sent a bad expires_in: {payload.get('expires_in')!r}") from None
        return cls(
            access_token=access,
            expires_at=now + lifetime,
            refresh_token=payload.get("refresh_token") or (previous.refresh_token if previous else None),
            id_token=payload.get("id_token") or (previous.id_token if previous else None),
            scope=payload.get("scope"),
        )


def platform_token(oauth: Mapping[str, Any], now: float, previous: Token | None = None) -> Token:
    """A token from an account's ``oauth`` as a platform refreshed it (``expires_at`` RFC 3339, or none)."""
    access = oauth.get("access_token")
    if not access:
        raise OAuthOutdated("the platform refreshed the account without an access token: connect it again")
    expires_at = now + 3600
    if isinstance(oauth.get("expires_at"), str) and not oauth["expires_at"].startswith("0001-"):
        text = re.sub(r"(\.\d{6})\d+", r"\1", oauth["expires_at"]).replace("Z", "+00:00")
        with contextlib.suppress(ValueError):  # an unreadable expiry: try the token for an hour
            expires_at = datetime.fromisoformat(text).timestamp()
    refresh = oauth.get("refresh_token") or (previous.refresh_token if previous else None)
    return Token(
        access, expires_at, refresh, previous.id_token if previous else None, previous.scope if previous else None
    )


def token_payload(response: requests.Response) -> dict[str, Any]:
    """The token endpoint's answer as a dict: JSON, or the XML form some endpoints send."""
    if "xml" in response.headers.get("Content-Type", ""):
        try:
            root = parse(response.content, name="token response")
        except UnsafeXml as exc:
            raise VendorDown(f"token endpoint sent unreadable XML: {exc.message}") from None
        return {child.tag.rpartition("}")[2]: (child.text or "").strip() for child in root}
    try:
        payload = response.json()
    except ValueError:
        raise VendorDown(f"token endpoint sent a non-JSON body ({response.status_code})") from None
    if not isinstance(payload, dict):
        raise VendorDown("token endpoint sent JSON that is not an object")
    return payload


class OAuthClient:
    """Gets, caches and renews the bearer token of one provider account."""

    def __init__(
        self,
        session: ProviderSession,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        cache: MutableMapping[str, Any],
        cache_key: str = "oauth_token",
        grant: str = "client_credentials",
        scope: str | None = None,
        client_auth: str = "basic",
        clock: Callable[[], float] = time.time,
        platform_refresh: Callable[[], Mapping[str, Any]] | None = None,
    ) -> None:
        if grant not in ("client_credentials", "authorization_code"):
            raise ConfigurationError(f"unknown OAuth grant {grant!r}")
        if client_auth not in ("basic", "form"):
            raise ConfigurationError(f"client_auth must be 'basic' or 'form', not {client_auth!r}")
        self.session, self.token_url = session, token_url
        self.client_id, self.client_secret = client_id, client_secret
        self.cache, self.cache_key = cache, cache_key
        self.grant, self.scope, self.client_auth, self.clock = grant, scope, client_auth, clock
        self.platform_refresh = platform_refresh
        """Under a platform that refreshes tokens itself (cozy-stack: ``ctx.platform_refresh``), an
        authorization-code token is renewed by asking it, never with the refresh token directly."""
        self._lock = threading.RLock()
        """One renewal at a time: with rotating refresh tokens, a second concurrent refresh would fail."""

    @property
    def cached(self) -> Token | None:
        saved = self.cache.get(self.cache_key)
        return Token(**saved) if saved else None

    def _store(self, token: Token) -> Token:
        self.cache[self.cache_key] = asdict(token)
        return token

    def seed(self, access_token: str, refresh_token: str | None, expires_at: float | None = None, **extra: Any) -> None:
        """Start from tokens a platform obtained (authorization code flow), unless some are cached.

        Without a known expiry the access token is tried first (for an hour): a refusal renews it.
        """
        if self.cached is None:
            expiry = self.clock() + 3600 if expires_at is None else expires_at
            self._store(Token(access_token, expiry, refresh_token, **extra))

    def access_token(self) -> str:
        """A valid access token, renewed if it expires within the margin."""
        with self._lock:
            token = self.cached
            if token is None or token.expires_at - self.clock() <= REFRESH_MARGIN:
                token = self.renew()
            return token.access_token

    def _renew_unless_done(self, refused: str) -> str:
        """After ``refused`` was turned down: renew, unless another thread already did."""
        with self._lock:
            token = self.cached
            if token is not None and token.access_token != refused:
                return token.access_token
            return self.renew().access_token

    def renew(self) -> Token:
        """A new token: refreshed if a refresh token exists, else by client credentials."""
        previous = self.cached
        if self.platform_refresh is not None and self.grant == "authorization_code":
            return self._store(platform_token(self.platform_refresh(), self.clock(), previous))
        if previous and previous.refresh_token:
            form = {"grant_type": "refresh_token", "refresh_token": previous.refresh_token}
        elif self.grant == "client_credentials":
            form = {"grant_type": "client_credentials"}
        else:
            raise OAuthOutdated("no refresh token is stored for this account: connect it again")
        if self.scope:
            form["scope"] = self.scope
        return self._store(Token.from_response(self._post(form), self.clock(), previous))

    def exchange_code(self, code: str, redirect_uri: str | None = None) -> Token:
        """Trade an authorization code for tokens."""
        form = {"grant_type": "authorization_code", "code": code}
        if redirect_uri:
            form["redirect_uri"] = redirect_uri
        return self._store(Token.from_response(self._post(form), self.clock()))

    def _post(self, form: dict[str, str]) -> dict[str, Any]:
        auth = None
        if self.client_auth == "basic":
            auth = (self.client_id, self.client_secret)
        else:
            form = {**form, "client_id": self.client_id, "client_secret": self.client_secret}
        response = self.session.post(self.token_url, data=form, auth=auth)
        if response.ok:
            return token_payload(response)
        try:
            payload = token_payload(response) if response.content else {}
        except VendorDown:
            payload = {"error_description": response.text[:200]}
        error = str(payload.get("error", response.status_code))
        described = f"{error}: {payload.get('error_description', response.reason)}"
        if error == "invalid_grant" and form["grant_type"] in ("refresh_token", "authorization_code"):
            self.cache.pop(self.cache_key, None)
            raise OAuthOutdated(f"the provider refused to renew access ({described}): connect the account again")
        if error in ("invalid_client", "unauthorized_client") or response.status_code == 401:
            raise LoginFailed(f"the provider refused the client credentials ({described})")
        raise VendorDown(f"token endpoint answered {response.status_code} ({described})")

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """Send with the bearer token; on 401/403 renew the token once and send again. Thread-safe."""
        token = self.access_token()
        response = self._send(method, url, token, kwargs)
        if response.status_code in (401, 403):
            response = self._send(method, url, self._renew_unless_done(token), kwargs)
        return response

    def _send(self, method: str, url: str, token: str, kwargs: dict[str, Any]) -> requests.Response:
        headers = {**kwargs.get("headers", {}), "Authorization": f"Bearer {token}"}
        return self.session.request(method, url, **{**kwargs, "headers": headers})


def id_token_claims(
    id_token: str,
    *,
    key: Any = None,
    jwks: dict[str, Any] | None = None,
    audience: str | None = None,
    issuer: str | None = None,
    unverified: bool = False,
) -> dict[str, Any]:
    """The claims of an OpenID ``id_token``.

    With a public ``key`` or a ``jwks`` document the signature (RS256/ES256),
    expiry, audience and issuer are verified. Without one, ``unverified=True``
    must be asked for explicitly: the claims are then read as sent, which is
    acceptable only when the token came straight from the provider's token
    endpoint over verified TLS.
    """
    try:
        if key is None and jwks is not None:
            key = _key_from_jwks(id_token, jwks)
        if key is not None:
            return jwt.decode(
                id_token,
                key,
                algorithms=["RS256", "ES256", "PS256"],
                audience=audience,
                issuer=issuer,
                options={"verify_aud": audience is not None, "verify_iss": issuer is not None},
            )
        if not unverified:
            raise ConfigurationError("no key or JWKS to verify the id_token; pass unverified=True to read it as sent")
        return jwt.decode(id_token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise LoginFailed(f"the provider's id_token is not acceptable: {exc}") from None


def _key_from_jwks(id_token: str, jwks: dict[str, Any]) -> Any:
    kid = jwt.get_unverified_header(id_token).get("kid")
    keys = jwt.PyJWKSet.from_dict(jwks).keys
    for candidate in keys:
        if kid is None or candidate.key_id == kid:
            return candidate.key
    raise LoginFailed(f"no key {kid!r} in the provider's JWKS")
