"""The ``redis_url`` pytest fixture (registered by framework.testing.plugin).

A real redis-server on a free port, once per test session. Where it cannot
start it skips the test with the reason, except under CI (``CI`` set), where it
fails: CI installs redis-server.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    try:
        from .redis_server import RedisServer  # imports redis-py only when asked for

        server = RedisServer().start()
    except (ImportError, RuntimeError) as reason:
        if os.environ.get("CI"):
            pytest.fail(f"fleet tests must run in CI: {reason}")
        pytest.skip(f"no redis-server: {reason}")
    try:
        yield server.url
    finally:
        server.close()
