"""What a test does when a server it needs cannot start: skip with the reason, or fail under CI.

A developer without Node.js or redis-server still gets a green run of what they can test; CI
(``CI`` set) installs every server, so there a missing one is a broken setup, never a skip.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def server_unavailable(tests: str, server: str, reason: object) -> NoReturn:
    """Fail (under CI) or skip the test, naming which ``tests`` need which ``server`` and why."""
    if os.environ.get("CI"):
        pytest.fail(f"{tests} tests must run in CI: {reason}")
    pytest.skip(f"no {server}: {reason}")
