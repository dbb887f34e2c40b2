"""``konnector new``: the generated distribution installs with pip, lints, lists, and its tests pass.

pip installs it for real (``--target`` a temporary site directory put on PYTHONPATH), so
the entry point is found exactly as in a user's environment, without touching ours.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import requests

from framework.testing.runner import run_cli


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """``konnector new solar-meter``, then ``pip install`` of the result into a site directory."""
    parent = tmp_path_factory.mktemp("scaffold")
    created = run_cli("new", "solar-meter", "--directory", str(parent))
    assert created.status == 0, created.output
    project, site = parent / "solar-meter", parent / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(project)],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stderr
    return project, {"PYTHONPATH": str(site)}


def test_generated_code_lints_and_is_listed(installed):
    project, env = installed
    assert (project / "solar_meter" / "manifest.json").is_file()
    rules = ["--isolated", "--select", "E,F,W,B,UP,SIM,I", "--line-length", "120"]
    lint = subprocess.run(
        [sys.executable, "-m", "ruff", "check", *rules, "."], capture_output=True, text=True, cwd=project
    )
    assert lint.returncode == 0, lint.stdout
    listed = run_cli("list", env=env)
    assert "solar-meter" in listed.stdout and "entry point 'solar-meter' of konnector-solar-meter" in listed.stdout


def test_generated_gitignore_keeps_secrets_and_run_files_out(installed):
    project, _ = installed
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    for name in ("konnector-data/store.sqlite3", "konnector-data/secret.key", "secret.key", "dev.json", ".venv/x"):
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text("x")
    names = ["konnector-data/secret.key", "secret.key", "dev.json", ".venv/x", "konnector-data/store.sqlite3"]
    ignored = subprocess.run(["git", "check-ignore", *names], cwd=project, capture_output=True, text=True)
    assert ignored.stdout.split() == names
    assert subprocess.run(["git", "check-ignore", "-q", "solar_meter/konnector.py"], cwd=project).returncode == 1


def test_generated_tests_pass_against_the_sandbox(installed, tmp_path):
    project, env = installed
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(project / "tests")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, **env},
    )
    assert tests.returncode == 0, tests.stdout[-3000:]
    assert "6 passed" in tests.stdout


def test_sandbox_command_serves_and_prints_a_dev_config(installed):
    _, env = installed
    environment = {k: v for k, v in os.environ.items() if k != "COZY_FIELDS"}
    server = subprocess.Popen(
        [sys.executable, "-m", "framework", "sandbox", "solar-meter", "--seed", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**environment, **env},
    )
    try:
        config_text = ""
        for line in server.stdout:
            config_text += line
            if line.startswith("}"):
                break
        config = json.loads(config_text)
        answer = requests.get(
            config["fields"]["base_url"] + "/v1/consumption",
            params={"from": "2024-01-01", "to": "2024-01-03"},
            headers={"X-Api-Key": config["fields"]["api_key"]},
            timeout=10,
        )
        assert [r["date"] for r in answer.json()["readings"]] == ["2024-01-01", "2024-01-02"]
    finally:
        server.terminate()
        server.wait(10)
    assert server.returncode == 0


@pytest.mark.parametrize("slug", ["Bad", "a_b", "x--y", "x-", "1abc"])
def test_bad_slugs_are_refused(tmp_path, slug):
    result = run_cli("new", slug, "--directory", str(tmp_path))
    assert result.status == 1 and "use lower-case words joined by dashes" in result.stderr
