"""Shared helpers: run the ``konnector`` CLI as a subprocess and read what it printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
PATH_KONNECTORS = FIXTURES / "path_konnectors"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PLATFORM_VARIABLES = ("COZY_FIELDS", "COZY_PARAMETERS", "COZY_TIME_LIMIT", "COZY_JOB_MANUAL_EXECUTION")


@dataclass
class Result:
    status: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[dict]:
        """stdout as JSON lines; fails the test if any line is not JSON."""
        return [json.loads(line) for line in self.stdout.splitlines()]

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@pytest.fixture
def cli(tmp_path):
    """Run ``konnector ARGS`` in a subprocess with a clean platform environment."""

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> Result:
        environment = {k: v for k, v in os.environ.items() if k not in PLATFORM_VARIABLES}
        environment.setdefault("KONNECTOR_PATH", str(PATH_KONNECTORS))
        environment.update(env or {})
        done = subprocess.run(
            [sys.executable, "-m", "framework", *args],
            capture_output=True,
            text=True,
            env=environment,
            cwd=tmp_path,
            timeout=timeout,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    return run


def write_json(path: Path, value: object) -> Path:
    path.write_text(json.dumps(value))
    return path
