"""The stack backend against the cozy-stack double: routes, answer shapes, tokens, permissions, accounts, refresh.

The double follows cozy-stack's ``web/data``, ``web/accounts`` and ``model/permission`` (see
``framework/testing/stack_double.py``); the store contract itself runs on it through the ``backend``
fixture's ``stack`` parameter (``tests/framework/store/test_contract.py``).
"""

from __future__ import annotations

import json
import time

import pytest
import requests

from framework.accounts import Account
from framework.errors import OAuthOutdated, PermissionDenied
from framework.stack import TokenExpired, open_stack
from framework.stack.credentials import parse_credentials
from framework.store import DocumentStore, Writer
from framework.testing.stack_double import AccountType

THINGS = "io.example.things"
MANIFEST = {
    "slug": "things",
    "permissions": {
        "things": {"type": THINGS},
        "readonly": {"type": "io.example.readonly", "verbs": ["GET"]},
        "accounts": {"type": "io.cozy.accounts"},
    },
}


@pytest.fixture
def stack(stack_double):
    stack_double.install(MANIFEST)
    opened = open_stack(stack_double.url, stack_double.token("things"))
    yield opened
    opened.client.close()


def http(double, method, path, token=None, **kwargs):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.request(method, double.url + path, headers=headers, timeout=10, **kwargs)


def test_answers_have_the_stacks_shapes(stack_double):
    stack_double.install(MANIFEST)
    token = stack_double.token("things")
    created = http(stack_double, "POST", f"data/{THINGS}/", token, json={"v": 1})
    assert created.status_code == 201
    body = created.json()
    assert set(body) == {"ok", "id", "rev", "type", "data"} and body["type"] == THINGS
    assert body["data"] == {"_id": body["id"], "_rev": body["rev"], "_type": THINGS, "v": 1}
    got = http(stack_double, "GET", f"data/{THINGS}/{body['id']}", token).json()
    assert got == body["data"]
    updated = http(stack_double, "PUT", f"data/{THINGS}/{body['id']}", token, json={**got, "v": 2}).json()
    assert updated["rev"].startswith("2-") and updated["data"]["v"] == 2
    deleted = http(stack_double, "DELETE", f"data/{THINGS}/{body['id']}?rev={updated['rev']}", token).json()
    assert deleted == {"ok": True, "id": body["id"], "rev": deleted["rev"], "type": THINGS, "deleted": True}
    missing_rev = http(stack_double, "DELETE", f"data/{THINGS}/{body['id']}", token)
    assert missing_rev.status_code == 400 and "delete without revision" in missing_rev.json()["error"]


def test_tokens_are_checked_for_audience_signature_and_age(stack_double):
    stack_double.install(MANIFEST)
    path = f"data/{THINGS}/_all_docs"
    assert http(stack_double, "GET", path).status_code == 401
    assert http(stack_double, "GET", path, "not-a-jwt").json() == {"error": "code=400, message=Invalid JWT token"}
    old = stack_double.token("things", issued_at=time.time() - 31 * 60)
    expired = http(stack_double, "GET", path, old)
    assert expired.status_code == 400 and expired.json()["error"].endswith("Expired token")
    assert 'error="invalid_token"' in expired.headers["WWW-Authenticate"]
    assert http(stack_double, "GET", path, stack_double.token("things")).status_code in (200, 404)


def test_credentials_give_the_token_and_its_expiry(stack_double):
    issued = time.time() - 100
    credentials = parse_credentials(stack_double.token("things", issued_at=issued))
    assert credentials.audience == "konn" and credentials.subject == "things"
    assert credentials.expires_at == pytest.approx(int(issued) + 1800)
    dev = parse_credentials(json.dumps({"oauthOptions": {}, "token": {"accessToken": credentials.token}}))
    assert dev.token == credentials.token


def test_an_expired_token_is_a_partial_sync(stack_double):
    stack_double.install(MANIFEST)
    late = open_stack(stack_double.url, stack_double.token("things", issued_at=time.time() - 1801))
    with pytest.raises(TokenExpired) as caught:
        late.backend.get(THINGS, "a")
    assert caught.value.code == "UNKNOWN_ERROR.PARTIAL_SYNC"


def test_doctypes_and_verbs_outside_the_manifest_are_refused_by_name(stack):
    with pytest.raises(PermissionDenied, match=r"'things' POST doctype 'io\.example\.other'"):
        stack.backend.bulk_write("io.example.other", [{"_id": "x"}])
    with pytest.raises(PermissionDenied, match=r"GET doctype 'io\.example\.other'"):
        stack.backend.get_many("io.example.other", ["x"])
    with pytest.raises(PermissionDenied, match=r"POST doctype 'io\.example\.readonly'"):
        stack.backend.bulk_write("io.example.readonly", [{"_id": "x"}])
    assert stack.backend.get("io.example.readonly", "x") is None


def test_writes_go_through_bulk_docs_and_the_index_is_defined_once(stack, stack_double):
    store = DocumentStore(stack.backend, Writer("things"), batch_size=1000)
    store.save(THINGS, [{"_id": f"d{n:04d}", "n": n} for n in range(1500)])
    found = store.find(THINGS, {"n": {"$gte": 100}}, limit=1200, sort=["n"])
    assert [d["n"] for d in found] == list(range(100, 1300))
    store.find(THINGS, {"n": {"$lt": 5}}, limit=10, sort=["n"])
    paths = [(c.method, c.path.rsplit("/", 1)[-1]) for c in stack_double.calls]
    assert paths.count(("POST", "_bulk_docs")) == 2  # two batches of 1,000
    assert paths.count(("POST", "_index")) == 1
    assert paths.count(("POST", "_find")) == 3  # 1,000 then 200 (bookmark), then the second query


def test_accounts_are_encrypted_by_the_stack_and_read_back_decrypted(stack, stack_double):
    accounts = stack.accounts(DocumentStore(stack.backend, Writer("things")))
    account = Account("acc-1", "things", auth={"login": "alice", "password": "pw-1", "pdl": "123"})
    account.state["bookmark"] = "2024-01-02"
    account.secrets["token"] = {"access_token": "tok-xyz"}
    accounts.save(account, frozenset({"password"}))
    stored = stack_double.stored("io.cozy.accounts", "acc-1")
    assert "password" not in stored["auth"] and "credentials_encrypted" in stored["auth"]
    assert stored["data"]["auth"] == {"secret_encrypted": stored["data"]["auth"]["secret_encrypted"]}
    assert "tok-xyz" not in str(stored) and "pw-1" not in str(stored)
    assert stack.backend.get_many("io.cozy.accounts", ["acc-1"])["acc-1"]["auth"]["password"] == "pw-1"
    again = stack.accounts(DocumentStore(stack.backend)).load("acc-1")
    assert again.auth == {"login": "alice", "password": "pw-1", "pdl": "123"}
    assert again.state == {"bookmark": "2024-01-02"} and again.secrets == {"token": {"access_token": "tok-xyz"}}


def test_a_deleted_account_is_read_from_its_soft_deleted_copy(stack, stack_double):
    stack_double.create_account({"_id": "acc-2", "account_type": "things", "auth": {"login": "bob", "password": "p"}})
    rev = stack_double.delete_account("acc-2")
    accounts = stack.accounts(DocumentStore(stack.backend))
    assert accounts.find("acc-2") is None
    deleted = accounts.load("acc-2", rev)
    assert deleted.auth == {"login": "bob", "password": "p"}


def test_oauth_refresh_goes_through_the_stack_to_the_provider(stack, stack_double):
    from konnectors.enedis_dataconnect.sandbox import CLIENT_ID, CLIENT_SECRET, EnedisSandbox

    with EnedisSandbox() as provider:
        stack_double.account_types["things"] = AccountType(
            "things", provider.url + "/oauth2/v3/token", CLIENT_ID, CLIENT_SECRET
        )
        refresh = provider.refresh_token_for("22516914714270")
        stack_double.create_account({"_id": "acc-3", "account_type": "things", "oauth": {"refresh_token": refresh}})
        accounts = stack.accounts(DocumentStore(stack.backend))
        account = accounts.load("acc-3")
        oauth = accounts.refresh_oauth(account)
        assert oauth["access_token"] and oauth["refresh_token"] != refresh
        assert account.rev == stack_double.stored("io.cozy.accounts", "acc-3")["_rev"]
        assert [r.form().get("grant_type") for r in provider.requests] == ["refresh_token"]
        provider.revoke("22516914714270")
        with pytest.raises(OAuthOutdated, match="reconnect the account"):
            accounts.refresh_oauth(account)


def test_concurrent_account_saves_merge_without_losing_the_password(stack, stack_double):
    stack_double.create_account({"_id": "acc-4", "account_type": "things", "auth": {"login": "al", "password": "pw"}})
    first = stack.accounts(DocumentStore(stack.backend, Writer("things")))
    second = stack.accounts(DocumentStore(stack.backend, Writer("things")))
    one, two = first.load("acc-4"), second.load("acc-4")
    one.state["x"] = 1
    first.save(one, frozenset({"password"}))
    two.state["y"] = 2
    second.save(two, frozenset({"password"}))
    final = stack.accounts(DocumentStore(stack.backend)).load("acc-4")
    assert final.state == {"x": 1, "y": 2} and final.auth == {"login": "al", "password": "pw"}


def test_an_oauth_client_renews_through_the_stack_and_calls_the_provider(stack, stack_double):
    from framework.http import ProviderSession
    from framework.oauth import OAuthClient
    from framework.redact import Redactor
    from konnectors.enedis_dataconnect.sandbox import CLIENT_ID, CLIENT_SECRET, EnedisSandbox

    with EnedisSandbox() as provider:
        token_url = provider.url + "/oauth2/v3/token"
        stack_double.account_types["things"] = AccountType("things", token_url, CLIENT_ID, CLIENT_SECRET)
        refresh = provider.refresh_token_for("22516914714270")
        stack_double.create_account({"_id": "acc-5", "account_type": "things", "oauth": {"refresh_token": refresh}})
        accounts = stack.accounts(DocumentStore(stack.backend))
        account = accounts.load("acc-5")
        session = ProviderSession("enedis", redact=Redactor(), base_url=provider.url)
        # the konnector knows no client secret here: only the stack can refresh
        client = OAuthClient(
            session,
            "/oauth2/v3/token",
            "unknown",
            "unknown",
            cache={},
            grant="authorization_code",
            platform_refresh=lambda: accounts.refresh_oauth(account),
        )
        client.seed("expired-token", refresh, expires_at=time.time() - 10)
        token = client.access_token()
        assert token == account.oauth["access_token"] and client.cached.expires_at > time.time() + 3000
        answer = client.request(
            "GET",
            "/v4/metering_data/daily_consumption",
            params={"usage_point_id": "22516914714270", "start": "2024-01-01", "end": "2024-01-03"},
        )
        assert answer.status_code == 200
        grants = [(r.form().get("grant_type"), r.form().get("client_id")) for r in provider.requests if r.form()]
        assert grants == [("refresh_token", CLIENT_ID)], "refreshed by the stack, with the application's client id"
