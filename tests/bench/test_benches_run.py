"""Each bench script runs end to end on tiny sizes (the figures themselves are not checked here:
benches run by hand, see bench/README.md; this only keeps them from rotting)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
TINY = {
    "store_ingest.py": [
        "--days", "2", "--repeats", "1", "--modes", "memory", "--cozy-days", "1",
        "--history-days", "1", "2", "--rss-days", "1",
    ],
    "embedded_store.py": ["--days", "2", "--repeats", "1"],
}  # fmt: skip


@pytest.mark.parametrize("script", sorted(TINY))
def test_bench_runs_and_prints_median_and_range(script):
    done = subprocess.run(
        [sys.executable, str(BENCH / script), *TINY[script]], capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "interleaved repetitions" in done.stdout
    assert "target" in done.stdout and "[" in done.stdout, done.stdout
