"""README's "Test it" on a fresh clone with nothing beside it: every file a test reads is in the project."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def readme_test_command() -> list[str]:
    """The pytest part of README's "Test it" command, as a list of arguments."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("**Test it**") :]
    block = re.search(r"```sh\n(.+?)\n```", section, re.S).group(1)
    steps = [shlex.split(step) for step in block.split("&&")]
    assert ["npm", "ci", "--ignore-scripts"] in steps, "the CouchDB-compatible test server is a prerequisite"
    return next(step for step in steps if step[1:3] == ["-m", "pytest"])


def _collect(root: Path) -> subprocess.CompletedProcess:
    command = readme_test_command()
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [sys.executable, *command[1:], "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.skipif(not (REPO / ".git").exists() or shutil.which("git") is None, reason="not a git checkout")
def test_fresh_clone_collects_the_whole_suite(tmp_path):
    clone = tmp_path / "alone" / "konnectors"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=120)
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    assert subprocess.run(["git", "-C", str(clone), "rev-parse", "HEAD"], capture_output=True, text=True).stdout == head
    assert sorted(p.name for p in clone.parent.iterdir()) == ["konnectors"]

    imported = subprocess.run(
        [sys.executable, "-c", "import framework; print(framework.__file__)"],
        cwd=clone,
        env={**os.environ, "PYTHONPATH": str(clone)},
        capture_output=True,
        text=True,
    )
    assert imported.stdout.startswith(str(clone)), "the clone's code must be the one collected"

    done = _collect(clone)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    collected = [line for line in done.stdout.splitlines() if "::" in line]
    assert re.search(r"^\d+ tests collected", done.stdout, re.M), done.stdout[-500:]
    assert len(collected) > 300
    readers = [
        str(path.relative_to(clone))
        for folder in ("tests", "framework", "konnectors", "bench")
        for path in (clone / folder).rglob("*.py")
        if path.name != Path(__file__).name
        and re.search(r"\.\./shared|/work/shared|parents\[\d\]\s*/\s*[\"']shared", path.read_text(encoding="utf-8"))
    ]
    assert not readers, f"these files read a data folder beside the checkout, which a fresh clone lacks: {readers}"
