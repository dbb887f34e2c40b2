"""The ``redis_url`` pytest fixture (registered by framework.testing.plugin).

A real redis-server on a free port, once per test session. Where it cannot
start it skips the test with the reason, except under CI (``CI`` set), where it
fails: CI installs redis-server.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from framework.testing.required import server_unavailable


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    try:
        from .redis_server import RedisServer  # imports redis-py only when asked for

        server = RedisServer().start()
    except (ImportError, RuntimeError) as reason:
        server_unavailable("fleet", "redis-server", reason)
    try:
        yield server.url
    finally:
        server.close()
