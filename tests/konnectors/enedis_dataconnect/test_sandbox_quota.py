"""The sandbox counts Enedis' quotas per application (client_id) and as a call arrives, as Enedis' gateway does."""

from __future__ import annotations

import threading
import time
from datetime import date, timedelta

import pytest
import requests

from konnectors.enedis_dataconnect.sandbox import CLIENT_ID, CLIENT_SECRET, EnedisSandbox

DAILY = "/metering_data_dc/v5/daily_consumption"
CREDENTIALS = (CLIENT_ID, CLIENT_SECRET)


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


def call(sandbox: EnedisSandbox, bearer: str, out: list[tuple[int, float]]) -> None:
    query = {"usage_point_id": "22516914714270", "start": "2024-06-01", "end": "2024-06-08"}
    started = time.monotonic()
    answer = requests.get(sandbox.url + DAILY, params=query, headers={"Authorization": f"Bearer {bearer}"}, timeout=10)
    out.append((answer.status_code, time.monotonic() - started))


def test_six_calls_within_a_second_one_is_refused_at_arrival_without_the_latency():
    with EnedisSandbox(seed=7) as sandbox:
        sandbox.today = date(2024, 6, 10)
        sandbox.latency = 0.6
        bearer = token(sandbox, *CREDENTIALS)
        answers: list[tuple[int, float]] = []
        threads = [threading.Thread(target=call, args=(sandbox, bearer, answers)) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        statuses = sorted(status for status, _ in answers)
        assert statuses == [200] * 5 + [429]
        refused = next(seconds for status, seconds in answers if status == 429)
        served = [seconds for status, seconds in answers if status == 200]
        # Counted after the latency, the refusal would come back after it too.
        assert refused < 0.3 and min(served) >= 0.6
        time.sleep(1.0)  # the second has slid by: a call is accepted again
        again: list[tuple[int, float]] = []
        call(sandbox, bearer, again)
        assert again[0][0] == 200


def test_calls_spaced_over_a_second_are_all_accepted():
    with EnedisSandbox(seed=7) as sandbox:
        sandbox.today = date(2024, 6, 10)
        sandbox.latency = 0.3
        bearer = token(sandbox, *CREDENTIALS)
        answers: list[tuple[int, float]] = []
        threads = []
        for _ in range(8):
            threads.append(threading.Thread(target=call, args=(sandbox, bearer, answers)))
            threads[-1].start()
            time.sleep(0.21)
        for thread in threads:
            thread.join()
        assert [status for status, _ in answers] == [200] * 8
