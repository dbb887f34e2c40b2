"""Provider quotas shared by worker processes through a real redis-server (fleet mode)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import pytest

from framework.fleet.limiter import SharedLimiter, client, quota_of
from framework.http import RateLimiter
from framework.sandbox import Request, Sandbox, json_response, route

CLIENT = """
import sys
from framework.http import ProviderSession, RateLimiter, RetryPolicy
session = ProviderSession("provider", base_url=sys.argv[1], limiter=RateLimiter(5, capacity=1),
                          application=sys.argv[3], retry=RetryPolicy(backoff=0.01))
for _ in range(int(sys.argv[2])):
    session.get("/open")
"""


class Provider(Sandbox):
    name = "quota"

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[float] = []
        self.on_request = lambda request: self.arrivals.append(time.monotonic())

    @route("GET", "/open")
    def open(self, request: Request):
        return json_response({"ok": True})


def busiest_second(arrivals: list[float]) -> int:
    """The most requests that arrived within any one second."""
    times = sorted(arrivals)
    return max(sum(1 for t in times[i:] if t - start < 1.0) for i, start in enumerate(times))


def run_clients(url: str, count: int, each: int, application: str, redis_url: str | None) -> None:
    env = (
        _fleet_env(redis_url) if redis_url else {k: v for k, v in os.environ.items() if not k.startswith("KONNECTOR_")}
    )
    clients = [
        subprocess.Popen([sys.executable, "-c", CLIENT, url, str(each), application], env=env) for _ in range(count)
    ]
    assert [c.wait(60) for c in clients] == [0] * count


@pytest.fixture
def provider():
    with Provider() as sandbox:
        yield sandbox


def test_processes_sharing_an_application_never_exceed_its_quota_together(provider, redis_url):
    run_clients(provider.url, 3, 4, f"app-{uuid.uuid4().hex}", redis_url)
    assert len(provider.arrivals) == 12
    assert busiest_second(provider.arrivals) <= 5
    assert max(provider.arrivals) - min(provider.arrivals) >= 11 * 0.2  # evenly spaced, as the konnector asks


def test_without_the_fleet_limiter_the_same_processes_exceed_it(provider):
    run_clients(provider.url, 3, 4, "app", None)
    assert busiest_second(provider.arrivals) > 5


def test_applications_have_separate_quotas(redis_url):
    limit, window = quota_of(RateLimiter.per(2, 60))
    first, second = (
        SharedLimiter(client(redis_url), "p", f"app-{uuid.uuid4().hex}", limit, window, sleep=pytest.fail)
        for _ in range(2)
    )
    first.acquire(), first.acquire(), second.acquire(), second.acquire()
    assert 59 < first.wait_time() <= 61.2 and 59 < second.wait_time() <= 61.2


def test_a_429_pauses_the_application_in_every_process(provider, redis_url):
    application = f"app-{uuid.uuid4().hex}"
    provider.inject(429, {"error": "quota"}, headers={"Retry-After": "2"}, path="/open")
    run_clients(provider.url, 1, 1, application, redis_url)  # got the 429, waited, then succeeded
    limit, window = quota_of(RateLimiter(5, capacity=1))
    other = SharedLimiter(client(redis_url), "provider", application, limit, window)
    assert other.wait_time() < 0.25  # the pause is over once the first process went on (one 220 ms slot)
    provider.inject(429, {"error": "quota"}, headers={"Retry-After": "2"}, path="/open")
    started = time.monotonic()
    first = subprocess.Popen([sys.executable, "-c", CLIENT, provider.url, "1", application], env=_fleet_env(redis_url))
    while len(provider.arrivals) < 3:  # the 429 has been answered
        time.sleep(0.01)
    time.sleep(0.1)
    assert other.wait_time() > 1.0  # this process, which saw no 429, is paused too
    waited = other.acquire()
    assert waited > 1.0 and time.monotonic() - started >= 2.0
    assert first.wait(30) == 0


def test_quota_shape_keeps_a_margin():
    assert quota_of(RateLimiter(5, capacity=1)) == (1, 220)
    assert quota_of(RateLimiter.per(50, 60)) == (50, 61200)
    assert quota_of(RateLimiter.per(1, 900)) == (1, 918000)


def _fleet_env(redis_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KONNECTOR_")}
    if redis_url is None:
        return env
    return env | {"KONNECTOR_LIMITER_HOOK": "framework.fleet.limiter:shared", "KONNECTOR_FLEET_REDIS": redis_url}


def test_a_grant_counts_from_when_its_request_is_written(redis_url):
    """A process held up between its grant and its write must not arrive right behind the next grant."""
    limiter = SharedLimiter(client(redis_url), "stamp", uuid.uuid4().hex, 2, 300)
    with limiter.sending() as written:
        time.sleep(0.2)  # a loaded machine between the grant and the bytes going out
        written()
        written_at = time.monotonic()
    limiter.acquire()  # the second grant of the window: at once
    limiter.acquire()  # the third waits for the first to leave the window, counted from its write
    assert time.monotonic() - written_at >= 0.3 - 0.01
