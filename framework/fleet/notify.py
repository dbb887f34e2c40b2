"""Notifications into the queue: ``konnector serve`` stores a notification, then a job is queued.

With ``KONNECTOR_NOTIFIED_HOOK=framework.fleet.notify:enqueue`` (and ``--no-worker``), the
receiver hands each stored notification to the fleet: a job for the account goes into the
queue and any worker handles it (the konnector's run handles stored notifications). The
notification is stored before the provider gets its 200 whatever happens here: if the queue
cannot be reached, the account's next scheduled run handles it.
"""

from __future__ import annotations

from functools import cache

from celery import Celery

from ..context import Context
from ..errors import KonnectorError
from .app import enqueue as send
from .app import make_app
from .settings import Settings
from .worker import job_store


@cache
def _app(settings: Settings) -> Celery:
    return make_app(settings)


def enqueue(ctx: Context) -> None:
    """Queue a job for the notified account (not manual: cozy-stack's webhook triggers are not)."""
    settings = Settings.from_environment()
    try:
        job = job_store(settings.couchdb_url, settings.prefix).create(ctx.slug, ctx.account.id, manual=False)
        send(_app(settings), job["_id"])
    except KonnectorError:
        raise
    except Exception as error:
        raise KonnectorError(f"fleet: no job queued ({type(error).__name__}: {error})") from None
    ctx.log.info(f"job {job['_id']} queued for account {ctx.account.id}")
