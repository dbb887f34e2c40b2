"""CLI start benchmark: `konnector --help` and `konnector list` against a bare `python -c pass`.

Run:  .venv/bin/python bench/cli_start.py [--repeats 20]

Each command is a fresh process, the commands interleaved round by round (see bench/harness.py).
Two measures per run: wall-clock time, and the CPU time (user + system) of that very child,
from ``os.wait4``: on a shared machine the CPU time is the steadier of the two, as waiting
for a core is not counted. The ratio to ``python -c pass`` is taken within each round.

``konnector --help`` is served from the user cache of click's rendering and ``list`` finds
every manifest already known valid (framework/launch.py): the warm-up rounds fill that cache, so
the figures are those of every run but the first after an install or an edit. ``--no-cache``
measures with the cache turned off (``KONNECTOR_CACHE_DIR=""``): click and jsonschema every time.
``--venv DIR`` measures another installation: this checkout's venv is an editable install, whose
``.pth`` finder imports pathlib, re and urllib.parse into every interpreter, ``python -c pass``
included; a wheel install has a lighter bare interpreter, so a higher ratio.
The children run without ``PYTHONDONTWRITEBYTECODE``, so that the warm-up writes the ``.pyc``
files an installed package has: otherwise every run compiles the framework's modules again.

Then ``python -X importtime`` of each command: which heavy libraries it loads (each should be
loaded only by the commands that use it) and the costliest imports.
For whole-process timing by another tool:  hyperfine -N -w 3 '.venv/bin/python -c pass' \\
'.venv/bin/konnector --help' '.venv/bin/konnector list'
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from harness import Samples, header, ratios, verdict

HEAVY = ("zeep", "lxml", "cryptography", "jsonschema", "requests", "jwt", "urllib3")
COMMANDS: dict[str, list[str]] = {}


def commands(bin_dir: Path) -> dict[str, list[str]]:
    """The three commands, run by the ``python`` and ``konnector`` of one installation."""
    python, konnector = str(bin_dir / "python"), str(bin_dir / "konnector")
    return {
        "python -c pass": [python, "-c", "pass"],
        "konnector --help": [python, konnector, "--help"],
        "konnector list": [python, konnector, "list"],
    }


ENV = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


def run_once(command: list[str]) -> tuple[float, float]:
    """Wall seconds and the child's own CPU seconds (user + system)."""
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"{command} exited {child.returncode}")
    return wall, usage.ru_utime + usage.ru_stime


def imports_of(command: list[str]) -> list[tuple[int, int, str]]:
    """``(self µs, cumulative µs, module)`` for every module the command imports."""
    done = subprocess.run([command[0], "-X", "importtime", *command[1:]], capture_output=True, text=True, env=ENV)
    rows = []
    for line in done.stderr.splitlines():
        found = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if found:
            rows.append((int(found[1]), int(found[2]), found[4]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--no-cache", action="store_true", help="KONNECTOR_CACHE_DIR='': no help or manifest cache")
    parser.add_argument(
        "--venv", type=Path, help="Measure this installation (e.g. a venv with the wheel): default, this one"
    )
    args = parser.parse_args()
    COMMANDS.update(commands(args.venv / "bin" if args.venv else Path(sys.executable).parent))
    if args.no_cache:
        ENV["KONNECTOR_CACHE_DIR"] = ""
    header("CLI start: fresh processes" + (", cache off" if args.no_cache else ""), args.repeats)
    names = list(COMMANDS)
    wall = {name: Samples(name) for name in names}
    cpu = {name: Samples(name) for name in names}
    for _ in range(2):  # warm the page cache and .pyc files
        for command in COMMANDS.values():
            run_once(command)
    for round_number in range(args.repeats):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            seconds, used = run_once(COMMANDS[name])
            wall[name].values.append(seconds)
            cpu[name].values.append(used)
    base = names[0]
    for name in names:
        print(f"  {name:18} wall {wall[name].show(1000, 1).replace(' s', ' ms', 1)}"
              f"   CPU {cpu[name].show(1000, 1).replace(' s', ' ms', 1)}")  # fmt: skip
    for name in names[1:]:
        print(f"  {name} / {base}: wall {verdict(ratios('', wall[name], wall[base]), 2.0, higher_is_better=False)}")
        print(f"  {name} / {base}: CPU  {verdict(ratios('', cpu[name], cpu[base]), 2.0, higher_is_better=False)}")
    print("## python -X importtime (one run each; microseconds)")
    for name in names[1:]:
        rows = imports_of(COMMANDS[name])
        loaded = {module.split(".")[0] for _, _, module in rows}
        heavy = ", ".join(h for h in HEAVY if h in loaded) or "none"
        total = sum(own for own, _, _ in rows)
        print(f"  {name}: {len(rows)} modules, {total / 1000:.1f} ms of imports; heavy libraries loaded: {heavy}")
        for own, cumulative, module in sorted(rows, key=lambda row: -row[1])[:8]:
            print(f"      {cumulative:8d} cumulative {own:7d} self  {module}")


if __name__ == "__main__":
    main()
