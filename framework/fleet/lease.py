"""One run per account at a time: a lease in Redis, and the fencing token checked before writes.

The worker takes ``konnector:lease:<slug>:<account>`` (``SET NX PX``) with a
token drawn from an ever-increasing counter, renews it while the job process
lives, and releases it at the end; a second job for the account finds the
lease taken and is deferred. If a worker stalls past the lease (paused VM,
partition), another may take the account: the stalled job's process then finds,
before its next state or bookmark write (``ctx.fence``, named by
``KONNECTOR_FENCE_HOOK=framework.fleet.lease:fence``), that the lease no longer
holds its token, and stops without writing.
"""

from __future__ import annotations

import os

import redis

from ..errors import KonnectorError
from .limiter import REDIS_ENV, client

LEASE_ENV = "KONNECTOR_FLEET_LEASE"
TOKEN_ENV = "KONNECTOR_FLEET_TOKEN"
PREFIX = "konnector:lease"

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class LeaseLost(KonnectorError):
    """Another job holds the account now: this one must not write."""


class Lease:
    """The lease of one account, for ``ttl`` seconds at a time."""

    def __init__(self, redis_client: redis.Redis, slug: str, account: str, ttl: float) -> None:
        self.redis, self.ttl_ms = redis_client, max(1, int(ttl * 1000))
        self.key = f"{PREFIX}:{slug}:{account}"
        self.token: str | None = None

    def acquire(self) -> bool:
        """Take the lease if free; the token is higher than any given before for this account."""
        token = str(self.redis.incr(f"{self.key}:fence"))
        if self.redis.set(self.key, token, px=self.ttl_ms, nx=True):
            self.token = token
            return True
        return False

    def remaining(self) -> float:
        """Seconds before the current holder's lease expires unless renewed."""
        return max(0, self.redis.pttl(self.key)) / 1000

    def renew(self) -> bool:
        """Extend the lease; False when it was lost (expired, and maybe taken by another job)."""
        return bool(self.token and self.redis.eval(_RENEW, 1, self.key, self.token, self.ttl_ms))

    def release(self) -> None:
        if self.token:
            self.redis.eval(_RELEASE, 1, self.key, self.token)
            self.token = None

    def environment(self) -> dict[str, str]:
        """What the job process needs to check its token before writing."""
        return {
            "KONNECTOR_FENCE_HOOK": "framework.fleet.lease:fence",
            LEASE_ENV: self.key,
            TOKEN_ENV: self.token or "",
        }


def fence() -> None:
    """The ``ctx.fence`` of a fleet job: raise :class:`LeaseLost` unless the lease still holds our token."""
    key, token, url = os.environ.get(LEASE_ENV), os.environ.get(TOKEN_ENV), os.environ.get(REDIS_ENV)
    if not (key and token and url):
        return
    try:
        holder = client(url).get(key)
    except redis.RedisError as exc:
        raise LeaseLost(f"fleet: cannot check this job's lease in Redis ({exc}); nothing written") from None
    if holder is None or holder.decode() != token:
        raise LeaseLost(
            "fleet: another job took this account (this job's lease expired); stopping without writing its state"
        )
