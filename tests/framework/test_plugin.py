"""The pytest plugin in a third-party project: it finds the project's own pouchdb-server, and when it
cannot start one, the skip message names the settings that fix it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from framework.testing.couchdb_server import REPOSITORY

REAL_SERVER = REPOSITORY / "node_modules" / ".bin" / "pouchdb-server"
TEST = """
import requests

def test_server_answers(couchdb_url):
    assert requests.put(couchdb_url + "/made-by-a-third-party", timeout=10).json() == {"ok": True}
"""


def _pytest(project: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("POUCHDB_SERVER", "COUCHDB_URL", "CI")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "tests"],
        cwd=project,
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.fixture
def project(tmp_path) -> Path:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_store.py").write_text(TEST)
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'konnector-x'\n")
    return tmp_path


@pytest.mark.skipif(not REAL_SERVER.exists(), reason="npm ci --ignore-scripts was not run here")
def test_a_project_uses_its_own_node_modules(project):
    launcher = project / "node_modules" / ".bin" / "pouchdb-server"
    launcher.parent.mkdir(parents=True)
    launcher.write_text(f'#!/bin/sh\necho started > "{project / "used"}"\nexec "{REAL_SERVER}" "$@"\n')
    launcher.chmod(0o755)
    done = _pytest(project)
    assert done.returncode == 0, done.stdout[-2000:]
    assert "1 passed" in done.stdout and (project / "used").exists()


def test_a_wrong_setting_is_named_in_the_skip_and_fails_under_ci(project):
    skipped = _pytest(project, POUCHDB_SERVER=str(project / "missing"))
    assert skipped.returncode == 0 and "1 skipped" in skipped.stdout
    assert f"POUCHDB_SERVER names {project / 'missing'}, which is not an executable file" in skipped.stdout
    failed = _pytest(project, POUCHDB_SERVER=str(project / "missing"), CI="1")
    assert failed.returncode == 1 and "CouchDB tests must run in CI" in failed.stdout
