"""Green Button memory: does the ESPI parse, and the whole greenbutton-file import, stay flat in the file size?

Run:  .venv/bin/python bench/espi_parse.py [--repeat 5] [--days 640]

Writes synthetic hourly household feeds (konnectors/greenbutton/synthetic.py) of ``days`` days
(~3 MB) and 10 x ``days`` (~30 MB), each in two layouts: one Atom entry per daily IntervalBlock
(as utilities write them) and every block inside a single entry (the layout that defeats a parser
freeing per entry). Each measure is a fresh child process (``--child``) that parses or imports
one file and then reports its own peak resident set, ``VmHWM`` from /proc/self/status (not
``RUSAGE_CHILDREN``, which would carry the parent's own peak). ``import`` is ``konnector run
greenbutton-file`` in-process on an empty embedded store. Repetitions are interleaved (every
file and way once per round); medians and ranges are printed, and the ratio of the 30 MB peak
to the 3 MB peak of the same round.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from konnectors.greenbutton.synthetic import household_feed

START = date(2008, 1, 1)


def one_entry(feed: str) -> str:
    """The same feed with every IntervalBlock moved into the first block's entry."""
    blocks = re.findall(r"<espi:IntervalBlock>.*?</espi:IntervalBlock>", feed, flags=re.S)
    first = feed.index("<entry><id>urn:uuid:ib0</id>")
    head, rest = feed[:first], feed[first:]
    entry_end = rest.index("</entry>") + len("</entry>")
    entry = rest[:entry_end]
    merged = entry.replace(blocks[0], "".join(blocks))
    return head + merged + "</feed>\n"


def write_files(folder: Path, days: int) -> dict[str, Path]:
    files = {}
    for label, count in (("3MB", days), ("30MB", 10 * days)):
        feed = household_feed(START, count, "America/Los_Angeles", "01")
        for layout, text in (("entries", feed), ("one-entry", one_entry(feed))):
            path = folder / f"{label}-{layout}.xml"
            path.write_text(text)
            files[f"{label}/{layout}"] = path
    return files


def vm_hwm_kib() -> int:
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"^VmHWM:\s+(\d+) kB", status, flags=re.M).group(1))


def child(way: str, path: Path, data_dir: Path) -> None:
    started = time.perf_counter()
    if way == "parse":
        from konnectors.greenbutton import espi

        with path.open("rb") as handle:
            count = sum(1 for _ in espi.parse(handle, path.name))
    else:
        from framework.cli import main

        config = data_dir / "dev.json"
        config.write_text(json.dumps({"fields": {"path": str(path)}}))
        try:
            main(["run", "greenbutton-file", "--config", str(config), "--data-dir", str(data_dir)])
        except SystemExit as exit_:
            if exit_.code:
                raise
        count = 0
    print(json.dumps({"seconds": time.perf_counter() - started, "hwm_kib": vm_hwm_kib(), "count": count}))


def measure(way: str, path: Path) -> dict:
    with tempfile.TemporaryDirectory() as data_dir:
        out = subprocess.run(
            [sys.executable, __file__, "--child", way, str(path), data_dir],
            capture_output=True,
            text=True,
            check=True,
        )
    return json.loads(out.stdout.strip().splitlines()[-1])


def summary(values: list[float], unit: str = "") -> str:
    return f"{statistics.median(values):.2f}{unit} [{min(values):.2f}–{max(values):.2f}]"


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--days", type=int, default=640, help="days in the small file (~4.7 kB a day)")
    parser.add_argument("--ways", nargs="+", default=["parse", "import"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        files = write_files(Path(folder), args.days)
        sizes = {name: path.stat().st_size / 1e6 for name, path in files.items()}
        results: dict[tuple[str, str], list[dict]] = {}
        for _ in range(args.repeat):
            for way in args.ways:
                for name, path in files.items():
                    results.setdefault((way, name), []).append(measure(way, path))
    print(f"{args.repeat} interleaved repetitions; peak RSS = the child's own VmHWM")
    print("| way | file | MB | peak RSS MiB, median [min–max] | seconds |")
    print("| --- | --- | --- | --- | --- |")
    for (way, name), runs in results.items():
        peaks = [r["hwm_kib"] / 1024 for r in runs]
        seconds = [r["seconds"] for r in runs]
        print(f"| {way} | {name} | {sizes[name]:.1f} | {summary(peaks)} | {summary(seconds)} |")
    print()
    print("| way | layout | peak 30 MB ÷ peak 3 MB, same round: median [min–max] | goal ≤ 1.2 |")
    print("| --- | --- | --- | --- |")
    for way in args.ways:
        for layout in ("entries", "one-entry"):
            big, small = results[(way, f"30MB/{layout}")], results[(way, f"3MB/{layout}")]
            ratios = [b["hwm_kib"] / s["hwm_kib"] for b, s in zip(big, small, strict=True)]
            print(f"| {way} | {layout} | {summary(ratios)} | {'met' if max(ratios) <= 1.2 else 'NOT met'} |")


if __name__ == "__main__":
    main()
