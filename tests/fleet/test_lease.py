"""The account lease and its fencing token, on a real redis-server."""

from __future__ import annotations

import time
import uuid

import pytest

from framework.fleet.lease import Lease, LeaseLost, fence
from framework.fleet.limiter import client


def test_one_holder_at_a_time_and_a_stalled_holder_is_fenced_off(redis_url, monkeypatch):
    account = uuid.uuid4().hex
    first, second = (Lease(client(redis_url), "probe", account, ttl=0.3) for _ in range(2))
    assert first.acquire() and not second.acquire()
    for name, value in first.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("KONNECTOR_FLEET_REDIS", redis_url)
    fence()  # still ours: writing is allowed
    time.sleep(0.4)  # the first holder stalled past its lease
    assert not first.renew()
    assert second.acquire() and int(second.token) > int(first.token)
    with pytest.raises(LeaseLost, match="another job took this account"):
        fence()
    first.release()  # a stale holder's release leaves the new holder's lease alone
    assert second.remaining() > 0 and second.renew()
    second.release()
    assert first.acquire()
    first.release()
