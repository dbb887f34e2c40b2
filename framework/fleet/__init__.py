"""Fleet mode: many workers run konnector jobs from a shared queue (Celery on Redis).

- ``limiter``   provider quotas shared by every worker (one Redis log per provider and application)
- ``redis_server`` a throwaway redis-server on a free port (tests, benchmarks)
- ``testing``   the ``redis_url`` pytest fixture

Importing this package imports neither Celery nor Redis: the pytest plugin and the
job processes load only the module they need.
"""
