"""The reliability suite's tools: run the CLI and kill it, snapshot a store, and the report.

Each check adds a row with ``reliability.record(area, check, tried, outcome)``. With
``RELIABILITY_REPORT=docs/reliability.md`` set, the session writes the table there:

    RELIABILITY_REPORT=docs/reliability.md .venv/bin/python -m pytest tests/reliability
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.conftest import PATH_KONNECTORS

ROWS: list[tuple[str, str, str, str]] = []
HEADER = """# Reliability

What the reliability suite (`tests/reliability`) tried, and what happened. Made by:

```sh
RELIABILITY_REPORT=docs/reliability.md .venv/bin/python -m pytest tests/reliability
```

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
    """``konnector ARGS`` started in the background, with a clean platform environment."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("COZY_")}
    environment.update({"KONNECTOR_PATH": str(PATH_KONNECTORS), **(env or {})})
    return subprocess.Popen(
        [sys.executable, "-m", "framework", *args],
        cwd=cwd,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def kill_after_requests(sandbox, process: subprocess.Popen, count: int) -> None:
    """SIGKILL the konnector when the sandbox receives its ``count``-th request, before answering it."""
    seen = []

    def maybe_kill(request) -> None:
        seen.append(request)
        if len(seen) == count:
            os.kill(process.pid, signal.SIGKILL)

    sandbox.on_request = maybe_kill


def kill_after_seconds(process: subprocess.Popen, seconds: float) -> threading.Timer:
    timer = threading.Timer(seconds, lambda: process.poll() is None and os.kill(process.pid, signal.SIGKILL))
    timer.start()
    return timer


def embedded_snapshot(data_dir: Path) -> dict[str, dict[str, dict]]:
    """Every live data document, without bookkeeping, by database (accounts left out)."""
    snapshot: dict[str, dict[str, dict]] = {}
    with sqlite3.connect(data_dir / "store.sqlite3") as connection:
        for db, doc_id, body in connection.execute("SELECT db, id, body FROM docs WHERE deleted = 0"):
            if db.endswith("io-cozy-accounts"):
                continue
            doc = json.loads(body)
            snapshot.setdefault(db, {})[doc_id] = {k: v for k, v in doc.items() if k not in ("_rev", "cozyMetadata")}
    return snapshot
