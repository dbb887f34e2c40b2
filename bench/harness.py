"""What every bench shares: interleaved repetitions, median and range, ratios within a round, peak memory.

The machine is shared and noisy, so a single timing says little. Every bench here runs its cases
round-robin (case A, B, C, then A, B, C again, the order rotated each round so that no case always
runs first or last), at least :data:`MIN_REPEATS` rounds, and prints the median and the range.
A ratio is computed within each round, from timings taken seconds apart, then summarised the same
way: load that slows the whole machine slows both sides of a ratio.

Peak memory is a process's own high-water mark, ``VmHWM`` in ``/proc/<pid>/status``, read by the
process itself. ``getrusage(RUSAGE_SELF).ru_maxrss`` of a forked child starts from its parent's
peak (the child inherits the parent's reading at fork), which is how an earlier figure came out
111 MiB for a run peaking at 74.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

MIN_REPEATS = 5


@dataclass
class Samples:
    """Repeated measurements of one quantity, summarised as median [min–max]."""

    name: str
    unit: str = "s"
    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def show(self, scale: float = 1.0, digits: int = 2) -> str:
        low, high = min(self.values), max(self.values)
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.median * scale:.{digits}f}{unit} [{low * scale:.{digits}f}–{high * scale:.{digits}f}]"


def timed(function: Callable[[], object]) -> float:
    """Wall-clock seconds of one call."""
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def interleaved(cases: dict[str, Callable[[], float]], repeats: int = MIN_REPEATS) -> dict[str, Samples]:
    """Run each case once per round, rounds repeated, the order rotated each round.

    Each case returns the quantity it measured (usually seconds, from :func:`timed`).
    """
    names = list(cases)
    samples = {name: Samples(name) for name in names}
    for round_number in range(repeats):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].values.append(cases[name]())
    return samples


def ratios(name: str, numerators: Samples, denominators: Samples) -> Samples:
    """Round-by-round ratio ``numerator / denominator`` (e.g. raw time / our time = our share of raw speed)."""
    values = [a / b for a, b in zip(numerators.values, denominators.values, strict=True)]
    return Samples(name, "", values)


def best_per_round(name: str, candidates: Sequence[Samples]) -> Samples:
    """The fastest candidate of each round (e.g. the best raw batch size, chosen round by round)."""
    return Samples(
        name, candidates[0].unit, [min(values) for values in zip(*(c.values for c in candidates), strict=True)]
    )


def verdict(ratio: Samples, target: float, higher_is_better: bool = True) -> str:
    met = ratio.median >= target if higher_is_better else ratio.median <= target
    sign = ">=" if higher_is_better else "<="
    return f"{ratio.show()} (target {sign} {target}: {'met' if met else 'NOT met'})"


def own_peak_kib(pid: int | str = "self") -> int:
    """A process's own peak resident memory (``VmHWM``), in KiB, from ``/proc``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc: peak memory needs Linux")


def run_child(command: Sequence[str], env: dict[str, str] | None = None) -> dict:
    """Run a bench child that prints one JSON object as its last stdout line; return that object."""
    done = subprocess.run(list(command), env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"bench child {command[1:3]} failed ({done.returncode}): {done.stderr[-800:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report_child(result: dict) -> None:
    """The child's side of :func:`run_child`: its result plus its own peak memory, as one JSON line."""
    print(json.dumps({**result, "peak_kib": own_peak_kib()}))
    sys.stdout.flush()


def header(title: str, repeats: int) -> None:
    print(f"# {title}")
    print(f"# {repeats} interleaved repetitions; figures are median [min–max]; ratios are taken within each round")
