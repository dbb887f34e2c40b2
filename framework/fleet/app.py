"""The Celery application: one queue of konnector jobs, a job's message being its ``io.cozy.jobs`` id.

Why Celery: a job queue with late acknowledgement, redelivery of the jobs of
dead workers, per-task time limits and brokers we do not write (Redis here,
RabbitMQ by setting ``KONNECTOR_BROKER_URL=amqp://…`` alone), run by operators
everywhere. How it is configured, and why:

- ``task_acks_late``: a job is acknowledged when it has ended, not when a worker
  takes it, so a worker that dies mid-job loses nothing;
- ``task_reject_on_worker_lost``: a job whose pool process was killed is put
  back in the queue rather than marked failed;
- ``worker_prefetch_multiplier = 1``: a worker holds no more jobs than it runs,
  so queued jobs go to whichever worker is free;
- ``visibility_timeout`` (Redis) longer than the longest job: a job still running
  is not handed to a second worker (if it is anyway, the account's lease defers
  the copy), and a dead worker's job comes back after it;
- ``task_time_limit``: the job's own limit (manifest ``time_limit`` or
  ``COZY_TIME_LIMIT``) is enforced on its process; Celery's hard limit is a
  backstop above it;
- results are not kept in the broker: the outcome is in ``io.cozy.jobs``;
- a job whose worker-side bookkeeping fails (the store or Redis unreachable for
  a moment: a reset connection) is queued again, after 1, 2, 4… s, up to
  ``BOOKKEEPING_TRIES`` times, rather than left ``running`` for ever (its run is
  idempotent: the account's bookmarks say what is stored).
"""

from __future__ import annotations

from celery import Celery

from .settings import Settings

QUEUE = "konnectors"
TASK = "konnector.run"
BOOKKEEPING_TRIES = 6


def make_app(settings: Settings) -> Celery:
    app = Celery("konnectors", broker=settings.broker_url, set_as_current=True)
    restore = max(1, int(min(10, settings.visibility_timeout / 4)))
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=QUEUE,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_time_limit=longest_job(settings) * 2 + settings.lease_seconds,
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout,
            "unacked_restore_interval": restore,
            "unacked_restore_throttle": 1,
        },
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )

    @app.task(name=TASK, acks_late=True, reject_on_worker_lost=True)
    def run_job(job_id: str, tries: int = 0) -> None:
        from .worker import execute, log

        try:
            execute(settings, job_id, requeue=lambda delay: run_job.apply_async((job_id,), countdown=delay))
        except Exception as error:
            if tries + 1 >= BOOKKEEPING_TRIES:
                raise
            log.warning(f"job {job_id}: {error}; queued again in {2**tries} s")
            run_job.apply_async((job_id, tries + 1), countdown=2**tries)

    return app


def longest_job(settings: Settings) -> float:
    """The longest time limit of any konnector found (manifest ``time_limit``, else the default)."""
    from ..registry import Registry

    limits = [float(m.data.get("time_limit") or settings.time_limit) for m in Registry.discover()]
    return max([settings.time_limit, *limits])


def enqueue(app: Celery, job_id: str, delay: float = 0) -> None:
    app.send_task(TASK, (job_id,), queue=QUEUE, countdown=delay or None)
