"""Run every bench, one after the other, and keep their output: the source of docs/performance.md.

Run:  .venv/bin/python bench/run_all.py [--out bench-results] [--quick] [--only NAME ...]

Each bench prints medians and ranges of interleaved repetitions and the ratios its goal is
stated in; this script runs them with their documented arguments, echoes their output, and
writes it to ``<out>/<name>.txt`` so that the figures in docs/performance.md can be checked
against the very run they came from. ``--quick`` runs tiny sizes (a smoke run, minutes not
tens of minutes; its figures mean nothing).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES: dict[str, tuple[list[str], list[str]]] = {
    # name: (full arguments, quick arguments)
    "store_ingest": ([], ["--days", "3", "--repeats", "1", "--cozy-days", "1", "--history-days", "1", "2",
                          "--rss-days", "1"]),
    "embedded_store": ([], ["--days", "3", "--repeats", "1"]),
    "cli_start": ([], ["--repeats", "2"]),
    "enedis_backfill": ([], ["--latency", "0.3", "--repeats", "1"]),
    "espi_parse": ([], ["--repeat", "1", "--days", "20"]),
    "fleet": ([], ["--accounts", "4", "--applications", "2", "--workers", "1", "--concurrency", "2", "--no-kill"]),
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the benches run, nothing more")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHES), default=sorted(BENCHES))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    failed = []
    for name in args.only:
        script = HERE / f"{name}.py"
        if not script.exists():
            print(f"== {name}: not in this checkout, skipped")
            continue
        full, quick = BENCHES[name]
        command = [sys.executable, str(script), *(quick if args.quick else full)]
        print(f"== {name}: {' '.join(command[1:])}", flush=True)
        started = time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True)
        output = done.stdout + (f"\n[stderr]\n{done.stderr[-3000:]}" if done.returncode else "")
        (args.out / f"{name}.txt").write_text(f"$ {' '.join(command[1:])}\n{output}")
        print(output, flush=True)
        print(f"== {name}: exit {done.returncode} after {time.monotonic() - started:.0f} s", flush=True)
        if done.returncode:
            failed.append(name)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
