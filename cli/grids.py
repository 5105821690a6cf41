"""Comparison grids: ``qaug grid FILE`` (run, resume, --status, --report) and ``qaug show --grid NAME``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _grid_out(args: argparse.Namespace) -> Path:
    from grid.outputs import default_out

    return Path(args.out) if args.out else default_out(Path(args.file))


def grid(args: argparse.Namespace) -> int:
    from grid import command
    from grid.outputs import status

    out = _grid_out(args)
    if args.address and args.engine == "process":
        print("qaug grid: --address needs --engine dask or --engine ray", file=sys.stderr)
        return 2
    if args.status:
        info = status(Path(args.file), out)
        print(json.dumps(info, indent=2) if args.json else command.status_text(info))
        return 0
    if args.report:
        from grid.engine import report_flow
        from grid.spec import load_grid

        result = report_flow(name=load_grid(Path(args.file)).name, grid_file=args.file, out=str(out))
    else:
        result = command.run(Path(args.file), out, args.engine, args.workers, args.address, progress=not args.no_progress)
    print(f"grid {result['grid']}: {result['cells_finished']}/{result['cells']} cells finished in {result['wall_seconds']:.0f} s "
          f"(stage runs executed {sum(result['executed'].values())}, reused {sum(result['reused'].values())}); report: {out / 'report.html'}")
    show_grid(argparse.Namespace(grid=str(out), json=False))
    for label, error in result["failed"].items():
        print(f"failed: {label}: {error}", file=sys.stderr)
    return 1 if result["failed"] else 0


def show_grid(args: argparse.Namespace) -> int:
    from grid.command import print_summary, show

    summary = show(Path(args.grid))
    if args.json:
        print(json.dumps(summary["comparisons"], indent=2))
    elif getattr(args, "markdown", False):
        from grid.report import markdown

        print(markdown(summary))
    else:
        print_summary(summary)
    return 0
