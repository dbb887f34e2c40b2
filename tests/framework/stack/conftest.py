"""Fixtures of the stack tests: the CLI finding this folder's test konnectors."""

from __future__ import annotations

from pathlib import Path

import pytest

from framework.testing.runner import run_cli

KONNECTORS = Path(__file__).parent / "konnectors"


@pytest.fixture
def stack_cli(tmp_path):
    """``konnector ARGS`` in a subprocess, in a temporary directory, finding the echo konnector."""

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60):
        return run_cli(*args, env={"KONNECTOR_PATH": str(KONNECTORS), **(env or {})}, cwd=tmp_path, timeout=timeout)

    return run
