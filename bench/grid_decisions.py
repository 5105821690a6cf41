"""What a grid's decisions cost: CPU-seconds, seeds spent per arm and decided primary comparisons per CPU-hour,
for the grid as it stands against the same grid's fixed-seed run committed at an earlier revision.

    python bench/grid_decisions.py regimes --before 901bde1

For the fixed run it counts the primaries its own rule called better or worse (Holm over every comparison of a
metric) and what today's rule decides on those very cells as one look (same primaries and margins): the first
is what readers got, the second isolates what the rule alone changes, the difference to the rerun what the waves add.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
from collections import defaultdict
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grid.decide import judge  # noqa: E402
from grid.primaries import design  # noqa: E402
from grid.spec import load_grid  # noqa: E402
from grid.results import by_group  # noqa: E402
from grid.waves import differences  # noqa: E402


def cost(summary: dict) -> tuple[float, dict[str, int]]:
    """One-thread CPU-seconds of every stage run the grid used, and the most seeds any regime ran per arm."""
    seeds: dict[str, int] = defaultdict(int)
    for a in summary["arms"]:
        seeds[a["arm"]] = max(seeds[a["arm"]], a["seeds"])
    return sum(summary["stage_seconds"].values()), dict(seeds)


def old_cells(rev: str, name: str) -> list[dict]:
    archive = subprocess.run(["git", "archive", rev, f"grids/{name}/cells"], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        return [json.load(tar.extractfile(m)) for m in tar.getmembers() if m.isfile()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("grid", help="a shipped grid's name, e.g. regimes")
    parser.add_argument("--before", required=True, help="the revision holding the fixed-seed run's grids/<name>/")
    args = parser.parse_args()
    spec = load_grid(ROOT / f"grids/{args.grid}.yaml", root=ROOT)
    questions = design(spec)
    now = json.loads((ROOT / f"grids/{args.grid}/summary.json").read_text())
    before = json.loads(subprocess.run(["git", "show", f"{args.before}:grids/{args.grid}/summary.json"], cwd=ROOT,
                                       capture_output=True, check=True, text=True).stdout)
    keys = {(p.regime, p.arm, p.reference, p.metric) for p in questions.primaries}
    old_decided = sum(r.get("verdict") in ("better", "worse") for r in before["comparisons"]
                      if (r["regime"], r["arm"], r["reference"], r["metric"]) in keys)
    records = old_cells(args.before, args.grid)
    seeds = sorted({r["seed"] for r in records})
    groups = by_group(records)
    diffs = [differences(groups, p, seeds) for p in questions.primaries]
    one_look = judge(diffs, [p.margin for p in questions.primaries], [len(seeds)], 1)
    rows = []
    for label, summary, decided in (("fixed run, its own rule", before, old_decided),
                                    ("fixed run, today's rule (one look)", before, sum(v.decided for v in one_look)),
                                    ("waves (this tree)", now, sum(d["verdict"] in ("better", "worse", "equivalent") for d in now.get("decisions", [])))):
        cpu, per_arm = cost(summary)
        rows.append((label, cpu, per_arm, decided))
    print(f"grid {args.grid}: {len(questions.primaries)} primary comparisons; fixed run at {args.before} ({len(seeds)} seeds)")
    for label, cpu, per_arm, decided in rows:
        print(f"  {label:36s} {cpu / 3600:6.2f} CPU-h  decided {decided:2d}/{len(questions.primaries)}  "
              f"{decided / (cpu / 3600):5.2f} per CPU-h  seeds per arm {per_arm}")
    print("  verdicts now: " + "; ".join(f"{d['arm']} vs {d['reference']} {d['regime']}: {d['verdict']} ({d['n']})" for d in now.get("decisions", [])))
    print("  today's rule on the fixed cells: " + "; ".join(f"{p.arm} vs {p.reference} {p.regime}: {v.verdict} ({v.n})"
                                                          for p, v in zip(questions.primaries, one_look)))


if __name__ == "__main__":
    main()
