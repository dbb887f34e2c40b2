"""The reliability suite's tools: the report, and the testing kit's kill/snapshot helpers
(framework/testing/reliability.py, which konnector authors use too) with the probe konnector.

Each check adds a row with ``reliability.record(area, check, tried, outcome)``. With
``RELIABILITY_REPORT=docs/reliability.md`` set, the session writes the table there:

    RELIABILITY_REPORT=docs/reliability.md .venv/bin/python -m pytest tests/reliability
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from framework.testing import reliability as reliability_kit
from framework.testing.reliability import embedded_snapshot, kill_after_requests, kill_after_seconds
from tests.conftest import PATH_KONNECTORS

__all__ = ["embedded_snapshot", "kill_after_requests", "kill_after_seconds", "konnector"]

ROWS: list[tuple[str, str, str, str]] = []
HEADER = """# Reliability

What the reliability suite (`tests/reliability`) tried, and what happened. Made by:

```sh
RELIABILITY_REPORT=docs/reliability.md .venv/bin/python -m pytest tests/reliability
```

The CouchDB crash test runs on pouchdb-server in memory (20 kill points) and on disk (LevelDB,
which answers bulk writes out of order): on disk a subset of 12 kill points (every request, five
moments) keeps CI time down; the store contract and aggregate tests (`tests/framework/store`) run
on both server modes in full. Transport faults are made at the TCP level by
`framework/testing/faultproxy.py`; the attacker konnector is in `tests/reliability/konnectors`.

| area | check | tried | outcome |
| --- | --- | --- | --- |
"""


class Reliability:
    def record(self, area: str, check: str, tried: str, outcome: str) -> None:
        ROWS.append((area, check, tried, outcome))


@pytest.fixture(scope="session")
def reliability() -> Reliability:
    return Reliability()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    target = os.environ.get("RELIABILITY_REPORT")
    if target and ROWS:
        lines = [f"| {area} | {check} | {tried} | {outcome} |" for area, check, tried, outcome in ROWS]
        status = "all green" if exitstatus == 0 else f"FAILED (pytest exit {exitstatus})"
        Path(target).write_text(HEADER + "\n".join(lines) + f"\n\nSuite result: {status}.\n", encoding="utf-8")


def konnector(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """``konnector ARGS`` in the background (the testing kit's), also finding the probe konnector."""
    return reliability_kit.konnector(*args, cwd=cwd, env={"KONNECTOR_PATH": str(PATH_KONNECTORS), **(env or {})})
