"""Fleet settings, from the environment (the same for every worker, scheduler and enqueuer).

| variable | default | meaning |
| --- | --- | --- |
| ``KONNECTOR_FLEET_REDIS`` | (required) | Redis for leases and shared quotas; the broker too by default |
| ``KONNECTOR_BROKER_URL`` | the Redis URL | Celery broker: ``redis://…`` or ``amqp://…`` (RabbitMQ) |
| ``COUCHDB_URL``, ``KONNECTOR_DB_PREFIX`` | (required) | the store of accounts, data, jobs and triggers |
| ``COZY_TIME_LIMIT`` | 300 | seconds a job may run when its manifest gives no ``time_limit`` |
| ``KONNECTOR_VISIBILITY_TIMEOUT`` | 3600 | Redis broker: seconds before an unacknowledged job is redelivered |
| ``KONNECTOR_LEASE_SECONDS`` | 60 | an account's lease, renewed every third of it while its job runs |
| ``KONNECTOR_RETRY_SECONDS`` | 60 | first wait before a failed job is retried (then doubled) |
| ``KONNECTOR_JOBS_RETENTION`` | 2W | finished jobs older than this are purged (cozy-stack's default) |
| ``KONNECTOR_JOB_PROCESS`` | fork | ``fork``: a job forks the worker (imports done once); else ``subprocess`` |
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import ConfigurationError
from .jobprocess import MODES
from .jobs import RETENTION, retention_seconds
from .limiter import REDIS_ENV


@dataclass(frozen=True)
class Settings:
    redis_url: str
    broker_url: str
    couchdb_url: str
    prefix: str
    time_limit: float
    visibility_timeout: float
    lease_seconds: float
    retry_seconds: float
    job_process: str = "fork"
    jobs_retention: float = 14 * 86400

    @classmethod
    def from_environment(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        redis_url = env.get(REDIS_ENV, "")
        if not redis_url:
            raise ConfigurationError(f"fleet mode needs {REDIS_ENV} (e.g. redis://127.0.0.1:6379/0)")
        if not env.get("COUCHDB_URL"):
            raise ConfigurationError("fleet mode needs COUCHDB_URL: the store of accounts, jobs and triggers")
        settings = cls(
            redis_url=redis_url,
            broker_url=env.get("KONNECTOR_BROKER_URL") or redis_url,
            couchdb_url=env["COUCHDB_URL"],
            prefix=env.get("KONNECTOR_DB_PREFIX", ""),
            time_limit=_seconds(env, "COZY_TIME_LIMIT", 300),
            visibility_timeout=_seconds(env, "KONNECTOR_VISIBILITY_TIMEOUT", 3600),
            lease_seconds=_seconds(env, "KONNECTOR_LEASE_SECONDS", 60),
            retry_seconds=_seconds(env, "KONNECTOR_RETRY_SECONDS", 60),
            job_process=_choice(env, "KONNECTOR_JOB_PROCESS", MODES),
            jobs_retention=retention_seconds(env.get("KONNECTOR_JOBS_RETENTION") or RETENTION),
        )
        return settings


def _seconds(env: dict[str, str], name: str, default: float) -> float:
    value = env.get(name)
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        raise ConfigurationError(f"{name} is not a number of seconds: {value!r}") from None
    if seconds <= 0:
        raise ConfigurationError(f"{name} must be positive: {value!r}")
    return seconds


def _choice(env: dict[str, str], name: str, choices: tuple[str, ...]) -> str:
    value = env.get(name) or choices[0]
    if value not in choices:
        raise ConfigurationError(f"{name} must be one of {', '.join(choices)}: {value!r}")
    return value
