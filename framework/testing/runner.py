"""Run the ``konnector`` command as a platform or a developer would, and read what it did."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PLATFORM_VARIABLES = ("COZY_FIELDS", "COZY_PARAMETERS", "COZY_TIME_LIMIT", "COZY_JOB_MANUAL_EXECUTION")


@dataclass
class CliResult:
    status: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[dict]:
        """stdout as JSON log lines (raises if a line is not JSON: a platform would choke on it)."""
        return [json.loads(line) for line in self.stdout.splitlines()]

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def error_code(self) -> str | None:
        """The code of the final ``critical`` line, if the job failed."""
        critical = [line for line in self.lines if line["type"] == "critical"]
        return critical[-1]["message"] if critical else None


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | str | None = None, timeout: float = 120
) -> CliResult:
    """``konnector ARGS`` in a subprocess, without any platform variable of the calling shell."""
    environment = {k: v for k, v in os.environ.items() if k not in PLATFORM_VARIABLES}
    environment.update(env or {})
    done = subprocess.run(
        [sys.executable, "-m", "framework", *args],
        capture_output=True,
        text=True,
        env=environment,
        cwd=cwd,
        timeout=timeout,
    )
    return CliResult(done.returncode, done.stdout, done.stderr)
