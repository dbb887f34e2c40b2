"""``COZY_CREDENTIALS``: the token a konnector talks to cozy-stack with, and when it expires.

In production the stack passes a JWT it made for this job (``worker/exec/konnector.go``,
``BuildKonnectorToken``): audience ``konn``, subject the konnector's slug, issued now,
with no ``exp`` claim: the stack holds it valid for 30 minutes after ``iat``
(``model/permission/claims.go``, ``pkg/consts/token.go``). In local development
(cozy-konnector-libs' ``development`` mode) it is a JSON object whose ``token`` holds an
OAuth access token (``{"token": {"accessToken": ...}, ...}``), valid 7 days.

The stack gives no new token during a job, so its expiry is a deadline like
``COZY_TIME_LIMIT``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import jwt

from ..errors import ConfigurationError

VALIDITY_SECONDS = {"konn": 30 * 60, "cli": 30 * 60, "app": 24 * 3600, "access": 7 * 24 * 3600}
"""Token lifetime by audience, as ``Claims.Expired`` counts it; others: 24 hours."""
DEFAULT_VALIDITY = 24 * 3600


@dataclass(frozen=True)
class Credentials:
    token: str
    audience: str | None = None
    subject: str | None = None
    expires_at: float | None = None
    """Epoch seconds after which the stack refuses the token (None when unknown)."""


def parse_credentials(value: str) -> Credentials:
    """The bearer token in ``COZY_CREDENTIALS`` (JWT or the development JSON form), with its expiry."""
    value = value.strip()
    if value.startswith("{"):
        token = _token_of_json(value)
    else:
        token = value
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise ConfigurationError("COZY_CREDENTIALS is not a token cozy-stack makes (not a JWT)") from None
    audience = claims.get("aud")
    if isinstance(audience, list):
        audience = audience[0] if len(audience) == 1 else None
    issued = claims.get("iat")
    expires = None
    if isinstance(claims.get("exp"), int | float):
        expires = float(claims["exp"])
    elif isinstance(issued, int | float):
        expires = float(issued) + VALIDITY_SECONDS.get(audience or "", DEFAULT_VALIDITY)
    return Credentials(token, audience, claims.get("sub"), expires)


def _token_of_json(value: str) -> str:
    try:
        credentials = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"COZY_CREDENTIALS looks like JSON but is not valid: {exc.msg}") from None
    token = credentials.get("token") if isinstance(credentials, dict) else None
    if isinstance(token, dict):
        token = token.get("accessToken") or token.get("access_token")
    if not isinstance(token, str) or not token:
        raise ConfigurationError("COZY_CREDENTIALS JSON has no token.accessToken")
    return token
