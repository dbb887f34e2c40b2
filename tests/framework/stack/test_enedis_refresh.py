"""Enedis Data Connect v4 under cozy-stack: the stack, not the konnector, holds the application's
secret and refreshes the person's tokens (seed 003: "the platform's proxy refreshes tokens";
cozy-stack ``POST /accounts/:accountType/:accountID/refresh``)."""

from __future__ import annotations

from datetime import UTC, datetime

from framework import runner
from framework.redact import Redactor
from framework.registry import Registry
from framework.stack.manifest import stack_manifest
from framework.testing.stack_double import AccountType
from konnectors.enedis_dataconnect.sandbox import CLIENT_ID, CLIENT_SECRET, EnedisSandbox

USAGE_POINT = "22516914714270"


def test_v4_without_a_client_secret_is_refreshed_by_the_stack_and_collects(stack_double):
    manifest = Registry.discover([]).get("enedis-dataconnect")
    stack_double.install(stack_manifest(manifest.data))
    with EnedisSandbox() as provider:
        stack_double.account_types["enedis-dataconnect"] = AccountType(
            "enedis-dataconnect", provider.url + "/oauth2/v3/token", CLIENT_ID, CLIENT_SECRET
        )
        refresh = provider.refresh_token_for(USAGE_POINT)
        fields = {"client_id": CLIENT_ID, "base_url": provider.url, "api_version": "v4", "usage_point_id": USAGE_POINT}
        stack_double.create_account(
            {
                "_id": "acc-1",
                "account_type": "enedis-dataconnect",
                "auth": fields,
                "oauth": {"access_token": "expired", "refresh_token": refresh, "expires_at": 1.0},
            }
        )
        spec = runner.JobSpec(
            slug="enedis-dataconnect",
            account_id="acc-1",
            parameters={"daily_history_days": 10, "max_power_history_days": 10, "curve_history_days": 1},
            stack_url=stack_double.url,
            stack_credentials=stack_double.token("enedis-dataconnect"),
            data_dir=None,
            now=datetime.now(UTC).replace(microsecond=0),
        )
        result = runner.run(spec, manifest, Redactor())

        assert result.error is None, result.error
        assert stack_double.all_docs("com.grandlyon.enedis.day"), "daily data collected with the refreshed token"
        grants = [(r.form().get("grant_type"), r.form().get("client_id")) for r in provider.requests if r.form()]
        assert grants == [("refresh_token", CLIENT_ID)], "refreshed once, by the stack, with the application's id"


def test_v5_without_a_client_secret_is_refused_in_one_line(stack_double):
    manifest = Registry.discover([]).get("enedis-dataconnect")
    stack_double.install(stack_manifest(manifest.data))
    fields = {
        "client_id": CLIENT_ID,
        "base_url": "http://127.0.0.1:9",
        "api_version": "v5",
        "usage_point_id": USAGE_POINT,
    }
    stack_double.create_account({"_id": "acc-2", "account_type": "enedis-dataconnect", "auth": fields})
    spec = runner.JobSpec(
        slug="enedis-dataconnect",
        account_id="acc-2",
        stack_url=stack_double.url,
        stack_credentials=stack_double.token("enedis-dataconnect"),
        data_dir=None,
    )
    result = runner.run(spec, manifest, Redactor())
    assert result.error is not None and result.error.code == "LOGIN_FAILED"
    assert "client_secret" in str(result.error)
