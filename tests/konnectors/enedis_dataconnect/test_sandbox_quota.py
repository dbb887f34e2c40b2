"""The sandbox counts Enedis' quotas per application (client_id), as Enedis does."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import requests

from konnectors.enedis_dataconnect.sandbox import EnedisSandbox

DAILY = "/metering_data_dc/v5/daily_consumption"


@pytest.fixture
def enedis():
    with EnedisSandbox(seed=3) as sandbox:
        sandbox.add_application("second-app", "second-secret")
        yield sandbox


def token(sandbox: EnedisSandbox, client_id: str, secret: str) -> str:
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    answer = requests.post(f"{sandbox.url}/oauth2/v3/token", data=form, timeout=5)
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


def daily(sandbox: EnedisSandbox, access_token: str) -> int:
    today = sandbox.day()
    query = {"usage_point_id": "22516914714270", "start": str(today - timedelta(2)), "end": str(today)}
    headers = {"Authorization": f"Bearer {access_token}"}
    return requests.get(sandbox.url + DAILY, params=query, headers=headers, timeout=5).status_code


def test_each_application_has_its_own_five_calls_a_second(enedis):
    enedis.today = date(2024, 6, 10)
    fields = enedis.dev_config()["fields"]
    first = token(enedis, fields["client_id"], fields["client_secret"])
    second = token(enedis, "second-app", "second-secret")
    burst = [daily(enedis, first) for _ in range(6)]
    assert burst.count(200) == 5 and burst[-1] == 429  # the first application's sixth call within a second
    assert daily(enedis, second) == 200  # the second application's quota is untouched
    enedis.reset_quotas()
    assert daily(enedis, first) == 200


def test_an_unknown_application_gets_no_token(enedis):
    form = {"grant_type": "client_credentials", "client_id": "second-app", "client_secret": "wrong"}
    assert requests.post(f"{enedis.url}/oauth2/v3/token", data=form, timeout=5).status_code == 401
