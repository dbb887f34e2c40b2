"""The distribution as a user gets it: built by ``python -m build``, installed from the wheel (not editable).

The fresh venv shares this environment's dependencies through a ``.pth`` file naming a folder of
links to them, so no index is needed; this project's own files (the editable install) are left out,
so everything the installed command uses comes from the wheel.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("framework", "konnectors")
OWN = ("framework", "konnectors", "__editable__", "__editable___", "konnectors-", "tests")


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """sdist, then the wheel built from that sdist (as ``python -m build`` does), in a fresh folder."""
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(REPO)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return out


def _data_files() -> set[str]:
    """Every non-Python file of the packages: what the code may read at run time."""
    found = set()
    for package in PACKAGES:
        for path in (REPO / package).rglob("*"):
            if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts:
                found.add(path.relative_to(REPO).as_posix())
    return found


def test_wheel_and_sdist_hold_every_data_file(dist):
    wheel = zipfile.ZipFile(next(dist.glob("*.whl"))).namelist()
    assert _data_files() <= set(wheel), sorted(_data_files() - set(wheel))
    assert {f"konnectors/manifests/{p.name}" for p in (REPO / "konnectors" / "manifests").glob("*.json")} <= set(wheel)
    assert not [name for name in wheel if name.startswith("tests/")]
    with tarfile.open(next(dist.glob("*.tar.gz"))) as sdist:
        names = {name.partition("/")[2] for name in sdist.getnames()}
    assert _data_files() <= names
    assert {"CHANGELOG.md", "package-lock.json", "tests/data/greenbutton/SOURCES.md", "docs/architecture.md"} <= names


def test_no_manifest_outside_the_package():
    """Built-in manifests live in konnectors/manifests (package data); a top-level one would not ship."""
    assert not list((REPO / "manifests").glob("*.json")), "move them to konnectors/manifests/"


@pytest.fixture(scope="module")
def installed(dist, tmp_path_factory) -> Path:
    """A fresh venv with the wheel installed (not editable); dependencies shared, this project not."""
    root = tmp_path_factory.mktemp("venv")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    deps = root / "deps"
    deps.mkdir()
    site = Path(sysconfig.get_paths()["purelib"])
    for entry in site.iterdir():
        if not entry.name.startswith(OWN) and entry.suffix != ".pth":
            (deps / entry.name).symlink_to(entry)
    target_site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(target_site, "shared-dependencies.pth").write_text(f"{deps}\n")
    wheel = next(dist.glob("*.whl"))
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return venv


def _run(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    hidden = ("PYTHONPATH", "KONNECTOR_PATH")
    env = {k: v for k, v in os.environ.items() if k not in hidden and not k.startswith("COZY")}
    return subprocess.run(
        [str(venv / "bin" / "konnector"), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )


def test_installed_wheel_lists_and_demos(installed, tmp_path):
    where = subprocess.run(
        [str(installed / "bin" / "python"), "-c", "import framework, konnectors; print(framework.__file__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert where.stdout.startswith(str(installed)), where.stdout + where.stderr

    listed = _run(installed, "list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    slugs = {line.split()[0] for line in listed.stdout.splitlines()[1:]}
    assert slugs == {p.stem for p in (REPO / "konnectors" / "manifests").glob("*.json")}
    assert str(installed) in listed.stdout and str(REPO) not in listed.stdout

    version = _run(installed, "--version", cwd=tmp_path)
    assert "0.2.0" in version.stdout

    demo = _run(installed, "demo", "--data-dir", "data", cwd=tmp_path)
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    assert "Traceback" not in demo.stdout + demo.stderr
    assert not [line for line in demo.stdout.splitlines() if line.startswith("konnectors")], "no progress bar in a pipe"
    rows = [line.split() for line in demo.stdout.splitlines() if line.split() and line.split()[0] in slugs]
    assert {row[0] for row in rows} == slugs and all(row[1] == "ok" for row in rows), demo.stdout
    assert (tmp_path / "data" / "report.html").stat().st_size > 10_000


def test_installed_wheel_warm_help_and_list_import_only_the_launcher(installed, tmp_path):
    """A wheel install has no editable finder importing pathlib, re and urllib.parse into every
    interpreter: what `konnector --help` and `list` import there is theirs alone (issue #22).
    Once their cache is warm, beyond a bare interpreter: pip's script's ``re`` and the launcher."""
    python, script = str(installed / "bin" / "python"), str(installed / "bin" / "konnector")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "KONNECTOR_PATH")}
    env["KONNECTOR_CACHE_DIR"] = str(tmp_path / "cache")

    def modules(*args: str) -> tuple[str, set[str]]:
        done = subprocess.run(
            [python, "-X", "importtime", *args], capture_output=True, text=True, env=env, cwd=tmp_path
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout, {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}

    _, bare = modules("-c", "import re")
    for command in ("--help", "list"):
        cold, _ = modules(script, command)
        warm, loaded = modules(script, command)
        assert warm == cold and warm
        assert {name for name in loaded - bare if name.startswith("framework")} == {
            "framework",
            "framework.launch",
            "framework.usercache",
            "framework.entrypoints",
        }
        costly = ("pathlib", "urllib.parse", "ipaddress", "json", "click", "importlib.util", "contextlib", "typing")
        assert [name for name in costly if name in loaded] == []
