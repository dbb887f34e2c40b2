"""The Enedis sandbox counts the quota (5 data calls a second) as a call arrives, as Enedis' gateway does."""

from __future__ import annotations

import threading
import time

import requests

from konnectors.enedis_dataconnect.sandbox import CLIENT_ID, CLIENT_SECRET, EnedisSandbox

DAILY = "/metering_data_dc/v5/daily_consumption"


def token(sandbox: EnedisSandbox) -> str:
    answer = requests.post(
        sandbox.url + "/oauth2/v3/token",
        data={"grant_type": "client_credentials"},
        auth=(CLIENT_ID, CLIENT_SECRET),
        timeout=5,
    )
    return answer.json()["access_token"]


def call(sandbox: EnedisSandbox, bearer: str, out: list[tuple[int, float]]) -> None:
    query = {"usage_point_id": "22516914714270", "start": "2024-06-01", "end": "2024-06-08"}
    started = time.monotonic()
    answer = requests.get(sandbox.url + DAILY, params=query, headers={"Authorization": f"Bearer {bearer}"}, timeout=10)
    out.append((answer.status_code, time.monotonic() - started))


def test_six_calls_within_a_second_one_is_refused_at_arrival_without_the_latency():
    with EnedisSandbox(seed=7) as sandbox:
        sandbox.latency = 0.6
        bearer = token(sandbox)
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
        sandbox.latency = 0.3
        bearer = token(sandbox)
        answers: list[tuple[int, float]] = []
        threads = []
        for _ in range(8):
            threads.append(threading.Thread(target=call, args=(sandbox, bearer, answers)))
            threads[-1].start()
            time.sleep(0.21)
        for thread in threads:
            thread.join()
        assert [status for status, _ in answers] == [200] * 8
