"""Shared helpers: run the ``konnector`` CLI (the testing kit's runner) with the test konnectors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from framework.testing.runner import run_cli

FIXTURES = Path(__file__).parent / "fixtures"
PATH_KONNECTORS = FIXTURES / "path_konnectors"
DATA = Path(__file__).parent / "data"
"""Public sample data the tests read, carried in the project (origins and licences in each SOURCES.md)."""


@pytest.fixture(autouse=True, scope="session")
def _private_user_cache(tmp_path_factory):
    """The tests (and the commands they start) neither read nor fill the user's cache of help text
    and valid manifests (framework/usercache.py), but one of their own."""
    before = os.environ.get("KONNECTOR_CACHE_DIR")
    os.environ["KONNECTOR_CACHE_DIR"] = str(tmp_path_factory.mktemp("user-cache"))
    yield
    if before is None:
        os.environ.pop("KONNECTOR_CACHE_DIR", None)
    else:
        os.environ["KONNECTOR_CACHE_DIR"] = before


@pytest.fixture
def cli(tmp_path):
    """``konnector ARGS`` in a subprocess, in a temporary directory, finding the probe konnector."""

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60):
        return run_cli(
            *args, env={"KONNECTOR_PATH": str(PATH_KONNECTORS), **(env or {})}, cwd=tmp_path, timeout=timeout
        )

    return run


def write_json(path: Path, value: object) -> Path:
    path.write_text(json.dumps(value))
    return path
