"""The session's quota keeping over real sockets: the token is taken as a request is sent, threads
are served in the order they came, and a 429 pauses every call of the limiter.

Arrival times are read on the provider's side (the sandbox's ``on_request`` runs as a request
comes in), since that is where a quota is counted.
"""

from __future__ import annotations

import itertools
import threading
import time

import requests

from framework.http import ProviderSession, RateLimiter, RetryPolicy
from tests.framework.test_http import Provider


def arrivals(sandbox: Provider) -> list[tuple[float, str]]:
    seen: list[tuple[float, str]] = []
    sandbox.on_request = lambda request: seen.append((time.monotonic(), request.path))
    return seen


class SlowAuth(requests.auth.AuthBase):
    """Preparing the request takes a while (a signature, a busy interpreter)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        time.sleep(self.seconds)
        return request


def test_the_spacing_holds_at_arrival_when_preparing_a_request_takes_time():
    with Provider() as sandbox:
        seen = arrivals(sandbox)
        session = ProviderSession("p", base_url=sandbox.url, limiter=RateLimiter(5, capacity=1))
        session.get("/open")  # the token of the moment is used
        slow = threading.Thread(target=session.get, args=("/open",), kwargs={"auth": SlowAuth(0.15)})
        slow.start()
        time.sleep(0.02)  # the slow one came first
        session.get("/open")  # prepared at once: goes first, the slow one waits its turn after it
        slow.join()
    times = [t for t, _ in seen]
    # A token taken before preparing would let the slow call arrive 0.15 s late, right before the next.
    assert min(b - a for a, b in itertools.pairwise(times)) >= 0.15  # 0.2 s, less jitter


def test_waiting_threads_are_served_in_the_order_they_came():
    limiter = RateLimiter(20, capacity=1)
    limiter.acquire()
    served: list[int] = []

    def take(n: int) -> None:
        limiter.acquire()
        served.append(n)

    threads = []
    for n in range(6):
        threads.append(threading.Thread(target=take, args=(n,)))
        threads[-1].start()
        time.sleep(0.005)  # they come in this order, all before the next token
    for thread in threads:
        thread.join()
    assert served == list(range(6))


def test_a_late_call_does_not_bunch_the_next_one():
    limiter = RateLimiter(10, capacity=1)
    limiter.acquire()
    time.sleep(0.25)  # the next call goes late: its slot has long passed
    limiter.acquire()
    went = time.monotonic()
    limiter.acquire()
    assert time.monotonic() - went >= 0.1 - 0.005  # a full interval after the late one, not its slot's


def test_a_429_without_retry_after_pauses_every_call_of_the_limiter():
    with Provider() as sandbox:
        seen = arrivals(sandbox)
        sandbox.inject(429, {"error": "quota"}, path="/open")
        retry = RetryPolicy(attempts=3, backoff=0.6, max_wait=1.0, total=10)
        session = ProviderSession("p", base_url=sandbox.url, limiter=RateLimiter(50, capacity=1), retry=retry)
        first = threading.Thread(target=session.get, args=("/open",))
        first.start()
        while not seen:
            time.sleep(0.005)
        time.sleep(0.05)  # the 429 is back
        session.get("/data/other")  # another call of the same application
        first.join()
    refused_at = seen[0][0]
    other = next(t for t, path in seen if path == "/data/other")
    assert other - refused_at >= 0.3  # paused for the backoff (0.3-0.6 s), not 20 ms later


class HeldUpSession(ProviderSession):
    """A session whose first request is held up after its token was taken, before its bytes go out."""

    held = False

    def get_adapter(self, url: str):
        if not HeldUpSession.held:
            HeldUpSession.held = True
            time.sleep(0.15)  # a busy interpreter, a loaded machine
        return super().get_adapter(url)


def test_the_spacing_counts_from_when_a_request_is_out_not_from_its_token():
    with Provider() as sandbox:
        seen = arrivals(sandbox)
        session = HeldUpSession("p", base_url=sandbox.url, limiter=RateLimiter(5, capacity=1))
        held = threading.Thread(target=session.get, args=("/open",))
        held.start()
        time.sleep(0.02)  # its token is taken; it is held up
        session.get("/open")
        held.join()
    first, second = (t for t, _ in seen)
    # Counted from the token, the second call would go 0.2 s after it: 0.05 s behind the held-up one.
    assert second - first >= 0.15  # 0.2 s, less jitter
