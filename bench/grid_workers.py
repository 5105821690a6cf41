"""Speed-up of a grid on N worker processes over 1, the same grid from an empty store, both in this run.

Each run is a fresh `qaug grid` process (Prefect server start, worker spawn and imports
included, as a user sees it). The two runs must write byte-identical results.csv: more
workers change the wall time, never the numbers. Each run's wall time is split into the
engine's (from summary.json) and the rest (server start, planning, tables and report), and
the stage runs' own seconds are summed: where a speed-up below N is lost.

Run: python bench/grid_workers.py [--grid bench/speedup.yaml] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(grid: str, workers: int, out: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cli", "grid", grid, "--workers", str(workers), "--out", str(out), "--no-progress"],
                   check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def split(out: Path, wall: float) -> str:
    """The run's wall time taken apart: engine, the rest, and the stage runs' own seconds."""
    summary = json.loads((out / "summary.json").read_text())
    engine, stages = summary["wall_seconds"], sum(summary["stage_seconds"].values())
    return f"engine {engine:.0f} s, outside it {wall - engine:.0f} s, stage runs {stages:.0f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid", default="bench/speedup.yaml")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        one = timed(args.grid, 1, Path(tmp) / "one")
        split_one = split(Path(tmp) / "one", one)
        many = timed(args.grid, args.workers, Path(tmp) / "many")
        split_many = split(Path(tmp) / "many", many)
        same = (Path(tmp) / "one/results.csv").read_bytes() == (Path(tmp) / "many/results.csv").read_bytes()
    print(f"{args.grid}: 1 worker {one:.0f} s ({split_one}), {args.workers} workers {many:.0f} s ({split_many}); "
          f"speed-up {one / many:.2f}x; results {'identical' if same else 'DIFFER'}")
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
