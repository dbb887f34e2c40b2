"""Enedis Data Connect backfill rate against the sandbox with provider-like latency.

Run:  .venv/bin/python bench/enedis_backfill.py [--latency 0.15 0.3]

A first run of ``enedis-dataconnect`` (v5) loads 36 months of daily data and max power and 24
months of load curve (7-day windows): about 113 calls. Enedis allows 5 calls a second, so the
best possible time is calls / 5. For each latency, the script runs the konnector through the
CLI against a fresh sandbox and prints the achieved rate as a share of that quota.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from konnectors.enedis_dataconnect.sandbox import EnedisSandbox

QUOTA = 5.0


def backfill(latency: float) -> tuple[int, float, int]:
    with EnedisSandbox() as sandbox, tempfile.TemporaryDirectory() as work:
        sandbox.latency = latency
        Path(work, "dev.json").write_text(json.dumps(sandbox.dev_config()))
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "framework", "run", "enedis-dataconnect", "--config", "dev.json"],
            cwd=work,
            capture_output=True,
            text=True,
        )
        elapsed = time.perf_counter() - started
        data_calls = len(sandbox.requests_to("metering_data"))
        return data_calls, elapsed, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, nargs="+", default=[0.15, 0.3])
    args = parser.parse_args()
    for latency in args.latency:
        calls, elapsed, status = backfill(latency)
        rate = calls / elapsed
        print(
            f"latency {latency * 1000:.0f} ms: {calls} calls in {elapsed:.1f} s = {rate:.2f} calls/s = "
            f"{rate / QUOTA:.0%} of the 5 calls/s quota (exit {status})"
        )


if __name__ == "__main__":
    main()
