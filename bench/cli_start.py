"""CLI start benchmark: `konnector --help` and `konnector list` against a bare `python -c pass`.

Run:  .venv/bin/python bench/cli_start.py [--repeats 20] [--no-wheel] [--venv DIR] [--no-cache]

Two installations are measured in the same run: this checkout's venv (an editable install) and a
**wheel install**, what users get: the wheel is built once per run from a copy of this checkout
(``python -m build --wheel``) and installed into a temporary venv whose dependencies are this
venv's, linked through a ``.pth`` file (no index needed, as tests/distribution/test_wheel.py
does). They differ: the editable install's ``.pth`` finder imports pathlib, re and urllib.parse
into every interpreter, ``python -c pass`` included, so a command importing them costs nothing
more there; in the wheel install they are paid by the command alone, while pip's console script
imports ``re`` before any of ours: ``python -c 'import re'`` is measured there too, as the floor
of any pip-installed command (shown, not counted in the goal). ``--no-wheel`` measures the
editable venv alone; ``--venv DIR`` measures the installation in DIR instead of building a wheel.

Each command is a fresh process, all commands of both installations interleaved round by round
(see bench/harness.py). Two measures per run: wall-clock time, and the CPU time (user + system)
of that very child, from ``os.wait4``: on a shared machine the CPU time is the steadier of the
two, as waiting for a core is not counted. The ratio to the same installation's
``python -c pass`` is taken within each round.

``konnector --help`` is served from the user cache of click's rendering and ``list`` from the
cache of its text (framework/launch.py): the warm-up rounds fill that cache, so the figures are
those of every run but the first after an install or an edit. ``--no-cache`` measures with the
cache turned off (``KONNECTOR_CACHE_DIR=""``): click, discovery and jsonschema every time.
The children run without ``PYTHONDONTWRITEBYTECODE``, so that the warm-up writes the ``.pyc``
files an installed package has: otherwise every run compiles the framework's modules again.

Then ``python -X importtime`` of each command: the modules it loads beyond the installation's
bare interpreter, which heavy libraries among them (each should be loaded only by the commands
that use it), and the costliest imports.
For whole-process timing by another tool:  hyperfine -N -w 3 '.venv/bin/python -c pass' \\
'.venv/bin/konnector --help' '.venv/bin/konnector list'
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from harness import Samples, header, ratios, verdict

HEAVY = ("zeep", "lxml", "cryptography", "jsonschema", "requests", "jwt", "urllib3", "click")
REPO = Path(__file__).resolve().parents[1]
COPIED_OUT = (
    ".git",
    ".venv",
    "node_modules",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
    "bench-results",
)
OWN = ("framework", "konnectors", "__editable__", "__editable___", "konnectors-", "tests")
"""This project's entries in the venv's site-packages: not shared with the wheel's venv."""


FLOOR = "python -c 'import re'"
"""What pip's console script imports before ours (``re``, for a Windows suffix): the floor of
any pip-installed command, shown beside the goal, not counted in it; ``re`` is already in the
editable venv's bare interpreter, so it is measured for the wheel install only."""


def commands(bin_dir: Path, floor: bool = False) -> dict[str, list[str]]:
    """The commands, run by the ``python`` and ``konnector`` of one installation."""
    python, konnector = str(bin_dir / "python"), str(bin_dir / "konnector")
    return {
        "python -c pass": [python, "-c", "pass"],
        **({FLOOR: [python, "-c", "import re"]} if floor else {}),
        "konnector --help": [python, konnector, "--help"],
        "konnector list": [python, konnector, "list"],
    }


def wheel_venv(root: Path) -> Path:
    """A venv in ``root`` with this checkout's wheel installed (not editable), its ``bin`` folder.

    Built from a copy, so that setuptools' ``build/`` and ``*.egg-info`` do not land in the
    checkout (an ``*.egg-info`` there would be one more installed distribution when the
    checkout is the current directory)."""
    source, dist, venv, deps = root / "source", root / "dist", root / "venv", root / "deps"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*COPIED_OUT))
    _run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(source)])
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    deps.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.startswith(OWN) and entry.suffix != ".pth":
            (deps / entry.name).symlink_to(entry)
    python = venv / "bin" / "python"
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).strip()
    Path(purelib, "shared-dependencies.pth").write_text(f"{deps}\n")
    wheel = next(dist.glob("*.whl"))
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)])
    return venv / "bin"


def _run(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done.stdout


ENV = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


ENVS: dict[str, dict[str, str]] = {}
"""Per installation, when it differs from ENV (the wheel's temporary venv: a temporary cache)."""


def run_once(command: list[str]) -> tuple[float, float]:
    """Wall seconds and the child's own CPU seconds (user + system)."""
    started = time.perf_counter()
    env = ENVS.get(command[0], ENV)
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"{command} exited {child.returncode}")
    return wall, usage.ru_utime + usage.ru_stime


def imports_of(command: list[str]) -> list[tuple[int, int, str]]:
    """``(self µs, cumulative µs, module)`` for every module the command imports."""
    env = ENVS.get(command[0], ENV)
    done = subprocess.run([command[0], "-X", "importtime", *command[1:]], capture_output=True, text=True, env=env)
    rows = []
    for line in done.stderr.splitlines():
        found = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if found:
            rows.append((int(found[1]), int(found[2]), found[4]))
    return rows


def measure(installations: dict[str, Path], repeats: int) -> None:
    """Every command of every installation, interleaved; times, then ratios per installation."""
    cases = {
        (where, name): command
        for where, bin_dir in installations.items()
        for name, command in commands(bin_dir, floor=where != "editable").items()
    }
    for _ in range(2):  # warm the page cache, the .pyc files and the user cache
        for command in cases.values():
            run_once(command)
    keys = list(cases)
    wall = {key: Samples(" ".join(key)) for key in keys}
    cpu = {key: Samples(" ".join(key)) for key in keys}
    for round_number in range(repeats):
        shift = round_number % len(keys)
        for key in keys[shift:] + keys[:shift]:
            seconds, used = run_once(cases[key])
            wall[key].values.append(seconds)
            cpu[key].values.append(used)
    for where in installations:
        print(f"## {where}: {installations[where].parent}")
        names = [name for place, name in keys if place == where]
        for name in names:
            key = (where, name)
            print(f"  {name:18} wall {wall[key].show(1000, 1).replace(' s', ' ms', 1)}"
                  f"   CPU {cpu[key].show(1000, 1).replace(' s', ' ms', 1)}")  # fmt: skip
        base = (where, names[0])
        for name in names[1:]:
            key = (where, name)
            for measure_name, samples in (("wall", wall), ("CPU ", cpu)):
                ratio = ratios("", samples[key], samples[base])
                shown = (
                    ratio.show() + " (not the goal: the installer's)" if name == FLOOR else verdict(ratio, 2.0, False)
                )
                print(f"  {name} / {names[0]}: {measure_name} {shown}")


def show_imports(installations: dict[str, Path]) -> None:
    """``-X importtime`` of each command: what it loads beyond the bare interpreter."""
    print("## python -X importtime (one run each; microseconds)")
    for where, bin_dir in installations.items():
        listed = commands(bin_dir)
        bare = {module for _, _, module in imports_of(listed["python -c pass"])}
        for name, command in list(listed.items())[1:]:
            rows = imports_of(command)
            loaded = {module.split(".")[0] for _, _, module in rows}
            heavy = ", ".join(h for h in HEAVY if h in loaded) or "none"
            total = sum(own for own, _, _ in rows)
            print(f"  {where}, {name}: {len(rows)} modules, {total / 1000:.1f} ms of imports; heavy: {heavy}")
            extra = [module for _, _, module in rows if module not in bare]
            print(f"      beyond python -c pass ({len(extra)}): {', '.join(extra)}")
            for own, cumulative, module in sorted(rows, key=lambda row: -row[1])[:6]:
                print(f"      {cumulative:8d} cumulative {own:7d} self  {module}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument(
        "--no-cache", action="store_true", help="KONNECTOR_CACHE_DIR='': no help, list or manifest cache"
    )
    parser.add_argument("--no-wheel", action="store_true", help="measure this venv only, no wheel install")
    parser.add_argument("--venv", type=Path, help="measure the installation in this venv instead of building a wheel")
    args = parser.parse_args()
    if args.no_cache:
        ENV["KONNECTOR_CACHE_DIR"] = ""
    installations = {"editable": Path(sys.executable).parent}
    with tempfile.TemporaryDirectory(prefix="cli-start-") as scratch:
        if args.venv:
            installations["other"] = args.venv / "bin"
        elif not args.no_wheel:
            print("# building the wheel and its venv...", flush=True)
            installations["wheel"] = wheel_venv(Path(scratch))
            if not args.no_cache:  # its cache goes with it, not into the user's
                ENVS[str(installations["wheel"] / "python")] = {**ENV, "KONNECTOR_CACHE_DIR": f"{scratch}/cache"}
        header("CLI start: fresh processes" + (", cache off" if args.no_cache else ""), args.repeats)
        measure(installations, args.repeats)
        show_imports(installations)


if __name__ == "__main__":
    main()
