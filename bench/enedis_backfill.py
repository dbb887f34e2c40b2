"""Enedis Data Connect backfill rate against the sandbox with provider-like latency.

Run:  .venv/bin/python bench/enedis_backfill.py [--latency 0.15 0.3 0.6] [--repeats 5]

A first run of ``enedis-dataconnect`` (v5) loads 36 months of daily data and max power and 24
months of load curve (7-day windows): about 113 data calls. Enedis allows 5 calls a second,
so the best possible time is calls / 5. Each repetition runs the konnector through the CLI
(a fresh process) against a fresh sandbox answering after the given latency, the latencies
interleaved round by round (see bench/harness.py). Only ACCEPTED data calls count: an answer
429 (over quota) is counted apart and must not happen at all.

Printed per latency, accepted calls per second as a share of the quota over: the whole run,
process start to exit (the goal's figure: what a person waits for, start-up and token call
included); the run from the first data call's arrival to exit (start-up and token call left out,
the store of the last answers kept in); the span of the data calls alone (first call in to last
answer out); the pacing alone (accepted arrivals, first to last: the ceiling is 1 / (1 + the
konnector's margin)). Then the
start-up (process start to the first data call's arrival), the tightest six consecutive data
calls at arrival (the sandbox refuses a sixth call within one second: the margin left before a
429), and the 429s.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from harness import MIN_REPEATS, Samples, header, verdict

from konnectors.enedis_dataconnect.sandbox import EnedisSandbox

QUOTA = 5.0
DATA = "metering_data"


class CountingSandbox(EnedisSandbox):
    """The provider's sandbox, recording when each data call came in and how it was answered."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.answers: list[tuple[float, float, int, str]] = []
        self._answers_lock = threading.Lock()

    def handle(self, request):
        arrived = time.monotonic()
        response = super().handle(request)
        if DATA in request.path:
            with self._answers_lock:
                self.answers.append((arrived, time.monotonic(), response.status, request.path))
        return response


def backfill(latency: float) -> dict[str, float]:
    with CountingSandbox() as sandbox, tempfile.TemporaryDirectory() as work:
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
        if done.returncode != 0:
            raise RuntimeError(f"the backfill failed ({done.returncode}): {done.stderr[-800:]}")
        ended = time.monotonic()
        accepted = [a for a in sandbox.answers if a[2] != 429]
        first_in = min(a[0] for a in sandbox.answers)
        span = max(a[1] for a in accepted) - min(a[0] for a in accepted)
        arrived = sorted(a[0] for a in accepted)
        arrivals = sorted(a[0] for a in sandbox.answers)
        return {
            "accepted": len(accepted),
            "refused": len(sandbox.answers) - len(accepted),
            "run": len(accepted) / elapsed / QUOTA,
            "from_first": len(accepted) / (ended - first_in) / QUOTA,
            "span": len(accepted) / span / QUOTA,
            "pacing": (len(arrived) - 1) / (arrived[-1] - arrived[0]) / QUOTA,
            "seconds": elapsed,
            "startup": elapsed - (ended - first_in),
            "tightest": min(b - a for a, b in zip(arrivals, arrivals[5:], strict=False)),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency", type=float, nargs="+", default=[0.15, 0.3, 0.6])
    parser.add_argument("--repeats", type=int, default=MIN_REPEATS)
    args = parser.parse_args()
    header("Enedis Data Connect first run through the CLI, sandbox with latency", args.repeats)
    results: dict[float, list[dict[str, float]]] = {latency: [] for latency in args.latency}
    for round_number in range(args.repeats):
        shift = round_number % len(args.latency)
        for latency in args.latency[shift:] + args.latency[:shift]:
            results[latency].append(backfill(latency))
    for latency, runs in results.items():

        def samples(key: str, runs=runs) -> Samples:
            return Samples(key, "", [run[key] for run in runs])

        print(f"## latency {latency * 1000:.0f} ms")
        print(f"  accepted data calls {samples('accepted').show(digits=0)}, run time {samples('seconds').show()} s")
        print(f"  share of the 5/s quota, whole run (accepted only): {verdict(samples('run'), 0.9)}")
        print(f"  share of the 5/s quota, first data call to exit:   {samples('from_first').show()}")
        print(f"  share of the 5/s quota, span of the data calls:     {samples('span').show()}")
        print(f"  share of the 5/s quota, pacing (arrivals):          {samples('pacing').show()}")
        print(f"  start-up (process start to first data call in):    {samples('startup').show()} s")
        tightest = samples("tightest").show(digits=3)
        print(f"  tightest 6 consecutive data calls at arrival:       {tightest} s (a 429 below 1 s)")
        refused = samples("refused")
        print(f"  answers 429: {refused.show(digits=0)}; total {sum(refused.values):.0f} (target 0: "
              f"{'met' if sum(refused.values) == 0 else 'NOT met'})")  # fmt: skip


if __name__ == "__main__":
    main()
