"""Provider quotas shared by a fleet: one Redis log per provider and application.

A provider counts its quota per *application* (``client_id``) whatever the
number of processes calling it; a token bucket per process lets N workers send
N times the quota. In fleet mode every ``ProviderSession`` limiter (and every
``ctx.rate_limit``) is replaced by a :class:`SharedLimiter` through the hook of
``framework.http`` (``KONNECTOR_LIMITER_HOOK=framework.fleet.limiter:shared``,
Redis at ``KONNECTOR_FLEET_REDIS``), keyed by provider and application.

Why a Lua script rather than the ``limits`` library: ``limits`` (moving window
on Redis) stamps each hit with the *client's* clock, so workers on machines
whose clocks differ would open the window early; its windows are whole seconds,
so the konnector's own shape (Enedis: one call per 200 ms) and a safety margin
cannot be expressed; and it has no pause. The script below takes the time from
Redis (``TIME``), keeps the grants of the last ``window`` milliseconds in a sorted
set (a sliding log: never more than ``limit`` grants in any ``window``), and
checks the application's pause — set fleet-wide by a 429's ``Retry-After`` — in
the same atomic step.

A provider counts a call when it *arrives*: a grant is stamped again, with Redis's
time, once its request's bytes are written (:meth:`SharedLimiter.sending`, as
``framework.http.RateLimiter`` does within a process), so that a process held up
between the grant and the write (a loaded machine: 50–120 ms were seen) does not
arrive right behind the next grant. Without it, a fleet bench round with one
worker killed saw six calls of one application within a second and a 429.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import redis

from ..errors import ConfigurationError, KonnectorError
from ..http import RateLimiter

REDIS_ENV = "KONNECTOR_FLEET_REDIS"
PREFIX = "konnector:quota"
MARGIN = 0.02
"""Each window is kept 2 % (at least 20 ms) longer than the quota's, so that the jitter between
a grant here and the request's arrival at the provider never makes the provider count one too many."""

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

_TAKE = (
    _NOW
    + """
local paused = redis.call('PTTL', KEYS[2])
if paused > 0 then return paused end
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count >= limit then
  local freeing = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
  return math.max(1, tonumber(freeing[2]) + window - now)
end
if ARGV[3] == '1' then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], 2 * window)
end
return 0
"""
)
"""KEYS: the grant log, the pause. ARGV: limit, window (ms), take (1) or only look (0), the grant's
name. Returns 0 when granted (or grantable), else the milliseconds to wait."""

_STAMP = (
    _NOW
    + """
redis.call('ZADD', KEYS[1], 'XX', now, ARGV[1])
"""
)
"""KEYS: the grant log. ARGV: a grant's name: it now counts from Redis's present time."""

_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()


def client(url: str) -> redis.Redis:
    """One connection pool per Redis URL and process."""
    with _clients_lock:
        if url not in _clients:
            _clients[url] = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        return _clients[url]


def quota_of(limiter: RateLimiter) -> tuple[int, int]:
    """``(limit, window in ms)`` with the local bucket's shape: ``capacity`` calls per ``capacity / rate`` s."""
    limit = max(1, math.floor(limiter.capacity))
    seconds = limit / limiter.rate
    return limit, math.ceil(seconds * 1000 + max(20.0, seconds * 1000 * MARGIN))


class SharedLimiter:
    """The quota of one application at one provider, shared through Redis by every process."""

    def __init__(
        self,
        redis_client: redis.Redis,
        provider: str,
        application: str | None,
        limit: int,
        window_ms: int,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        key = f"{provider}:{application or '-'}"
        self.keys = [f"{PREFIX}:{key}:log", f"{PREFIX}:{key}:pause"]
        self.limit, self.window_ms = limit, window_ms
        self.redis, self.sleep = redis_client, sleep
        self._take = redis_client.register_script(_TAKE)
        self._stamp = redis_client.register_script(_STAMP)

    def _call(self, take: bool, grant: str = "") -> float:
        try:
            return int(self._take(keys=self.keys, args=[self.limit, self.window_ms, int(take), grant])) / 1000
        except redis.RedisError as exc:
            raise KonnectorError(f"fleet: the shared quota store (Redis) did not answer: {exc}") from None

    def acquire(self) -> float:
        """Take a grant, waiting as long as the window or a pause says; return the seconds waited."""
        return self._acquire(uuid.uuid4().hex)

    def _acquire(self, grant: str) -> float:
        waited = 0.0
        while (delay := self._call(take=True, grant=grant)) > 0:
            delay += random.uniform(0, 0.005)  # waiting workers do not all ask again at the same instant
            self.sleep(delay)
            waited += delay
        return waited

    @contextlib.contextmanager
    def sending(self) -> Iterator[Callable[[], None]]:
        """Take a grant for a request about to be sent; call what is yielded once its bytes are out,
        which stamps the grant with that moment (the provider counts arrivals, not our grants)."""
        grant = uuid.uuid4().hex
        self._acquire(grant)
        stamped = False

        def written() -> None:
            nonlocal stamped
            if not stamped:
                stamped = True
                # Called as the bytes go out: a Redis fault must not break the request; the grant
                # then keeps its grant time (the next take reports the fault).
                with contextlib.suppress(redis.RedisError):
                    self._stamp(keys=self.keys[:1], args=[grant])

        try:
            yield written
        finally:
            written()

    def wait_time(self) -> float:
        return self._call(take=False)

    def hold(self, seconds: float) -> None:
        """Pause the application fleet-wide for ``seconds`` (never shortening a longer pause)."""
        ms = max(1, math.ceil(seconds * 1000))
        try:
            with self.redis.pipeline() as pipe:
                pipe.set(self.keys[1], "1", px=ms, nx=True)
                pipe.pexpire(self.keys[1], ms, gt=True)
                pipe.execute()
        except redis.RedisError as exc:
            raise KonnectorError(f"fleet: the shared quota store (Redis) did not answer: {exc}") from None

    def snapshot(self) -> dict[str, float]:
        """Nothing to keep in the account: the quota lives in Redis."""
        return {}

    def restore(self, saved: dict[str, float] | None) -> None:
        """Nothing to restore: the quota lives in Redis."""


def shared(provider: str, application: str | None, limiter: RateLimiter) -> SharedLimiter:
    """The ``framework.http`` limiter hook of fleet mode (Redis at ``KONNECTOR_FLEET_REDIS``)."""
    url = os.environ.get(REDIS_ENV)
    if not url:
        raise ConfigurationError(f"fleet mode needs {REDIS_ENV} (the Redis URL of the shared quotas)")
    limit, window_ms = quota_of(limiter)
    return SharedLimiter(client(url), provider, application, limit, window_ms)
