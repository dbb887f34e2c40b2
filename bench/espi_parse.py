"""ESPI parser speed and memory on the full-year Green Button sample.

Run:  .venv/bin/python bench/espi_parse.py [FILE]

Prints, measured in the same run: the time of a streaming ESPI parse and of a
whole-tree ElementTree parse (the usual approach, doing no ESPI work), and the
peak RSS each adds to a fresh process (libxml2 allocates outside Python's
tracing, so RSS is the honest measure).
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from konnectors.greenbutton import espi

DEFAULT = (
    Path(__file__).resolve().parents[1]
    / "tests/data/greenbutton"
    / "gba_coastal_multi_family_hourly_2011_full_year.xml"
)
WAYS = {
    "none": lambda path: 0,
    "stream": lambda path: sum(1 for _ in espi.parse(path.open("rb"), path.name)),
    "tree": lambda path: len(ET.parse(path).getroot()),
}


def child(way: str, path: Path) -> None:
    started = time.perf_counter()
    WAYS[way](path)
    elapsed = time.perf_counter() - started
    print(elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def run_child(way: str, path: Path) -> tuple[float, int]:
    out = subprocess.run([sys.executable, __file__, "--child", way, str(path)], capture_output=True, text=True)
    seconds, rss = out.stdout.split()
    return float(seconds), int(rss)


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], Path(sys.argv[3]))
        return
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    readings = WAYS["stream"](path)
    _, base = run_child("none", path)
    t_stream, rss_stream = run_child("stream", path)
    t_tree, rss_tree = run_child("tree", path)
    print(f"file: {path.name}, {path.stat().st_size / 1e6:.2f} MB, {readings} readings")
    print(f"streaming ESPI parse: {t_stream * 1000:.0f} ms, +{(rss_stream - base) / 1024:.1f} MiB RSS")
    print(f"ElementTree whole tree (no ESPI work): {t_tree * 1000:.0f} ms, +{(rss_tree - base) / 1024:.1f} MiB RSS")


if __name__ == "__main__":
    main()
