"""The provider toolkit against a sandbox over real sockets: retries, 429, limits, TLS, OAuth."""

from __future__ import annotations

import email.utils
import io
import logging
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from framework.errors import ConfigurationError, LoginFailed, OAuthOutdated, VendorDown
from framework.http import ProviderSession, RateLimiter, RetryPolicy
from framework.logs import configure, get_logger
from framework.oauth import OAuthClient, id_token_claims
from framework.redact import Redactor
from framework.sandbox import Request, Response, Sandbox, json_response, route

FAST = RetryPolicy(attempts=5, backoff=0.01, max_wait=0.05, total=10)


class Provider(Sandbox):
    """A small OAuth-protected API with the usual token endpoint."""

    name = "provider"
    client = ("client-id", "client-secret-value")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.refresh_tokens: set[str] = set()
        self.expires_in: int | str = 3600

    @route("POST", "/token")
    def token(self, request: Request) -> Response:
        form = request.form()
        credentials = request.basic_auth() or (form.get("client_id"), form.get("client_secret"))
        if credentials != self.client:
            return json_response({"error": "invalid_client"}, 401)
        grant = form.get("grant_type")
        if grant == "refresh_token" and form.get("refresh_token") not in self.refresh_tokens:
            return json_response({"error": "invalid_grant", "error_description": "refresh token revoked"}, 400)
        refresh = self.issue_token()
        self.refresh_tokens.add(refresh)
        payload = {"access_token": self.issue_token(), "token_type": "Bearer", "expires_in": self.expires_in}
        if grant == "refresh_token":
            payload["refresh_token"] = refresh
        return json_response(payload)

    @route("POST", "/xml-token")
    def xml_token(self, request: Request) -> Response:
        body = (
            '<?xml version="1.0"?><t:token xmlns:t="https://api.example/oauth/v2/token">'
            f"<t:client_access_token>{self.issue_token()}</t:client_access_token>"
            "<t:expires_in>3600</t:expires_in></t:token>"
        )
        return Response(200, body, {"Content-Type": "application/xml"})

    @route("GET", "/data/{name}")
    def data(self, request: Request) -> Response:
        if self.token_claims(request) is None:
            return json_response({"error": "invalid_token"}, 401)
        return json_response({"name": request.params["name"], "value": 42})

    @route("GET", "/open")
    def open(self, request: Request) -> Response:
        return json_response({"ok": True})


@pytest.fixture
def provider():
    with Provider() as sandbox:
        yield sandbox


def session(sandbox: Sandbox, **kwargs) -> ProviderSession:
    kwargs.setdefault("retry", FAST)
    return ProviderSession("provider", base_url=sandbox.url, **kwargs)


def test_429_with_retry_after_seconds_is_waited_then_retried(provider):
    provider.inject(429, {"error": "quota"}, headers={"Retry-After": "1"}, path="/open")
    started = time.monotonic()
    response = session(provider).get("/open")
    assert response.json() == {"ok": True}
    assert time.monotonic() - started >= 1.0
    assert len(provider.requests_to("/open")) == 2


def test_429_with_an_http_date_is_honoured(provider):
    waits = []
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    provider.inject(429, b"", headers={"Retry-After": when}, path="/open")
    ProviderSession("p", base_url=provider.url, retry=RetryPolicy(total=60), sleep=waits.append).get("/open")
    assert len(waits) == 1 and 28 <= waits[0] <= 30


def test_five_consecutive_5xx_end_in_vendor_down_within_the_bound(provider):
    provider.inject(503, b"down", times=5, path="/open")
    started = time.monotonic()
    with pytest.raises(VendorDown) as raised:
        session(provider).get("/open")
    assert time.monotonic() - started < FAST.total
    assert "after 5 attempt(s)" in raised.value.message and "5: 503" in raised.value.message
    assert len(provider.requests_to("/open")) == 5


def test_a_5xx_burst_shorter_than_the_retries_succeeds(provider):
    provider.inject(502, b"", times=3, path="/open")
    assert session(provider).get("/open").status_code == 200


def test_side_effect_posts_are_not_retried_on_5xx(provider):
    provider.inject(500, b"", times=1, path="/open")
    response = session(provider).post("/open", idempotent=False)
    assert response.status_code == 500 and len(provider.requests) == 1


def test_read_timeout_is_retried(provider):
    provider.inject(200, b"late", delay=0.6, path="/open")
    response = session(provider, timeout=(2, 0.3)).get("/open")
    assert response.json() == {"ok": True}


def test_unreachable_provider_is_vendor_down_saying_what_was_tried():
    dead = Sandbox().start()
    url = dead.url
    dead.close()
    with pytest.raises(VendorDown, match=r"1: ConnectionError.*5: ConnectionError"):
        ProviderSession("gone", base_url=url, retry=FAST).get("/x")


def test_rate_limiter_spaces_requests_to_the_quota(provider):
    limited = session(provider, limiter=RateLimiter.per(5, 1))
    started = time.monotonic()
    for _ in range(10):
        limited.get("/open")
    assert time.monotonic() - started >= 0.9


def test_rate_limit_state_survives_a_restart():
    first = RateLimiter.per(1, 900)
    first.acquire()
    saved = first.snapshot()
    second = RateLimiter.per(1, 900)
    second.restore(saved)
    assert 890 < second.wait_time() <= 900


def test_tls_is_always_verified_and_plain_http_only_on_loopback():
    with pytest.raises(ConfigurationError, match="use https"):
        ProviderSession("p").get("http://example.org/x")
    with pytest.raises(ConfigurationError, match="cannot be turned off"):
        ProviderSession("p").get("https://127.0.0.1:1/x", verify=False)


def test_untrusted_server_certificate_is_refused():
    with Provider(tls=True) as sandbox, pytest.raises(VendorDown, match="not trusted"):
        session(sandbox).get("/open")


def test_mutual_tls_needs_the_client_certificate():
    with Provider(client_certs=True) as sandbox:
        with pytest.raises(LoginFailed, match="check the client certificate"):
            session(sandbox, ca_bundle=sandbox.ca_path).get("/open")
        assert sandbox.requests == []
        cert = sandbox.issue_client_cert()
        response = session(sandbox, ca_bundle=sandbox.ca_path, cert=cert).get("/open")
        assert response.json() == {"ok": True}
        assert sandbox.requests[-1].client_cert is not None


def oauth(sandbox, cache, **kwargs) -> OAuthClient:
    return OAuthClient(session(sandbox), "/token", *Provider.client, cache=cache, **kwargs)


@pytest.mark.parametrize("client_auth", ["basic", "form"])
def test_client_credentials_token_is_cached_with_its_expiry(provider, client_auth):
    provider.expires_in = "12600"
    cache: dict = {}
    client = oauth(provider, cache, client_auth=client_auth)
    assert client.request("GET", "/data/a").json()["value"] == 42
    assert client.request("GET", "/data/b").status_code == 200
    assert len(provider.requests_to("/token")) == 1
    assert 12500 < cache["oauth_token"]["expires_at"] - time.time() <= 12600


def test_expired_token_mid_run_is_renewed_once(provider):
    client = oauth(provider, {})
    client.request("GET", "/data/a")
    provider.expire_tokens()
    assert client.request("GET", "/data/b").status_code == 200
    assert len(provider.requests_to("/token")) == 2
    assert len(provider.requests_to("/data")) == 3


def test_token_near_expiry_is_renewed_before_use(provider):
    provider.expires_in = 30
    client = oauth(provider, {})
    client.request("GET", "/data/a")
    client.request("GET", "/data/b")
    assert len(provider.requests_to("/token")) == 2
    assert all(r.path != "/data/a" or r.bearer() for r in provider.requests)


def test_refresh_token_flow_and_revoked_consent(provider):
    cache: dict = {}
    client = oauth(provider, cache, grant="authorization_code")
    refresh = provider.issue_token()
    provider.refresh_tokens.add(refresh)
    client.seed("stale-access", refresh)
    assert client.request("GET", "/data/a").status_code == 200
    assert cache["oauth_token"]["refresh_token"] != refresh
    provider.refresh_tokens.clear()
    provider.expire_tokens()
    with pytest.raises(OAuthOutdated, match="refresh token revoked"):
        client.request("GET", "/data/b")
    assert "oauth_token" not in cache


def test_wrong_client_secret_is_login_failed(provider):
    client = OAuthClient(session(provider), "/token", "client-id", "wrong", cache={})
    with pytest.raises(LoginFailed, match="invalid_client"):
        client.access_token()


def test_xml_token_form_is_accepted(provider):
    client = OAuthClient(session(provider), "/xml-token", *Provider.client, cache={})
    assert client.renew().access_token


def test_id_token_claims_verified_with_jwks_or_read_unverified_on_request():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode({"pce": ["GI123456"], "aud": "app", "exp": time.time() + 60}, key, "RS256", {"kid": "k1"})
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwks = {"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}
    assert id_token_claims(token, jwks=jwks, audience="app")["pce"] == ["GI123456"]
    forged = jwt.encode(
        {"pce": ["STOLEN"], "aud": "app"}, rsa.generate_private_key(65537, 2048), "RS256", {"kid": "k1"}
    )
    with pytest.raises(LoginFailed, match="not acceptable"):
        id_token_claims(forged, jwks=jwks, audience="app")
    with pytest.raises(ConfigurationError, match="unverified=True"):
        id_token_claims(token)
    assert id_token_claims(forged, unverified=True)["pce"] == ["STOLEN"]


def test_debug_log_of_exchanges_is_redacted(provider):
    redactor, stream = Redactor(), io.StringIO()
    configure("json", redactor, logging.DEBUG, stream)
    cache: dict = {}
    client = OAuthClient(
        ProviderSession("provider", base_url=provider.url, redact=redactor, log=get_logger("http")),
        "/token",
        *Provider.client,
        cache=cache,
    )
    client.request("GET", "/data/a")
    token = cache["oauth_token"]["access_token"]
    text = stream.getvalue()
    assert "GET " in text and "/data/a -> 200" in text
    assert token not in text and Provider.client[1] not in text
