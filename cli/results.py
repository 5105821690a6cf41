"""What a run left: ``qaug show`` (metrics, generated samples, data checks; runs side by side), ``qaug datasets``
(the augmented sets in the history), ``qaug exps`` (DVC experiments) and ``qaug docs`` (the data checks' Data Docs)."""

from __future__ import annotations

import argparse
import json
import sys

from cli import grids


def docs(args: argparse.Namespace) -> int:
    """gx/ and its Data Docs from data/checks/*.json; the checks' verdicts and where the site is."""
    from qaug.data_docs import build_from_reports
    from tasks.report import CHECKS, checks_markdown
    from tasks.stages import writer

    index, old = build_from_reports(list(CHECKS))
    for path in old:
        print(f"qaug docs: {path} was written before the stages kept GX's results; left out "
              f"(`dvc repro -f -s {writer(path)}` rewrites it)", file=sys.stderr)
    if index is None:
        print("qaug docs: no data checks to show yet: run the pipeline (`qaug run`)", file=sys.stderr)
        return 1
    print("\n".join(checks_markdown()[1:]))
    return 0


def datasets(args: argparse.Namespace, width: int = 100) -> int:
    """The versions in a table that fits ``width`` columns, then one restore command per pushed version (a line
    each, to copy whole); a version whose bytes are in no remote is marked "not pushed" and gets none."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from tasks.datasets import AUGMENTED, versions

    found, problem = versions(branches=args.all_branches)
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    console = Console(width=width)
    table = Table(title=f"augmented training sets ({AUGMENTED}), newest first", box=box.SIMPLE_HEAD)
    for col in ("rev", "date", "method", "strategy", "seed", "real", "gen.", "Δ acc.", "data"):
        table.add_column(col, justify="right" if col in ("seed", "real", "gen.", "Δ acc.") else "left", no_wrap=True)
    for v in found:
        delta = "—" if v["accuracy_delta"] is None else f"{v['accuracy_delta']:+.3f}"
        table.add_row(v["rev"], v["date"], str(v["method"]), str(v["strategy"]), str(v["seed"]), str(v["real"]), str(v["generated"]),
                      delta, "pushed" if v["pushed"] else "[yellow]not pushed[/]")
    console.print(table)
    if problem:
        console.print(f"no version counts as pushed: {problem}", style="yellow", highlight=False)
    commands = [v["restore"] for v in found if v["restore"]]
    if commands:
        console.print("restore a pushed version next to the workspace (any clone, a fresh one too):", highlight=False)
        for command in commands:
            console.print(command, highlight=False, markup=False, soft_wrap=True)  # one line to copy, however long
    if len(commands) < len(found):
        console.print('"not pushed": its bytes are in no default remote, at most in the cache of the machine that made it',
                      style="dim", highlight=False)
    return 0


def exps(args: argparse.Namespace, width: int = 120) -> int:
    """DVC experiments in at most ``width`` columns: the params that differ between the runs, then the headline
    metrics (``dvc exp show --only-changed`` hides the changed param behind "…" at 120 columns)."""
    from rich.console import Console
    from rich.table import Table

    from tasks.experiments import HEADLINE, dvc_experiments, rows

    found = rows(dvc_experiments(all_commits=args.all_commits))
    if args.json:
        print(json.dumps(found, indent=2, default=str))
        return 0
    table = Table(title="experiments: the params that differ, and metrics/summary.json's headline numbers")
    table.add_column("run", no_wrap=True)
    table.add_column("params that differ", overflow="fold", min_width=18)  # wrapped, never cut: they are what tells the runs apart
    for label in HEADLINE.values():
        table.add_column(label, justify="right", no_wrap=True)
    for r in found:
        changed = ", ".join(f"{k}={v}" for k, v in r["changed"].items()) or "—"
        numbers = ["—" if r[k] is None else str(r[k]) if isinstance(r[k], int) else f"{r[k]:+.3f}" if k.endswith("delta")
                   else f"{r[k]:.3f}" for k in HEADLINE]
        table.add_row(("└ " if r["experiment"] else "") + r["run"] + (" (failed)" if r["failed"] else ""), changed, *numbers)
    Console(width=min(width, Console().width)).print(table)
    return 0


def show(args: argparse.Namespace) -> int:
    if getattr(args, "compare", None):
        return _show_runs(args)
    if getattr(args, "grid", None):
        return grids.show_grid(args)
    from tasks.report import comparison_rows

    rows = comparison_rows()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    from qaug.io import read_json
    from tasks.report import COMPARISON

    judged_by = read_json(COMPARISON).get("classifier", "HQCNN") if COMPARISON.is_file() else "HQCNN"
    table = Table(title=f"{judged_by} test metrics: baseline vs augmented")
    for col in ("metric", "baseline", "augmented", "delta"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for r in rows:
        colour = "green" if r["delta"] > 0 else "red" if r["delta"] < 0 else ""
        table.add_row(r["metric"], f"{r['baseline']:.3f}", f"{r['augmented']:.3f}", f"[{colour}]{r['delta']:+.3f}[/]" if colour else f"{r['delta']:+.3f}")
    console = Console()
    console.print(table)
    _show_generation(console)
    _show_checks(console)
    return 0


def _show_checks(console) -> None:
    """Each checked set's verdict, the failed expectations in full, and where the Data Docs are."""
    from rich.markup import escape

    from tasks.report import checks_markdown

    for line in checks_markdown()[1:]:
        console.print(escape(line).replace(": failed ", ": [red]failed[/] ", 1), highlight=False)


def _show_generation(console) -> None:
    """The score_generated metrics (when that stage has run), candidates next to the accepted set; per class in the file."""
    from rich.table import Table

    from qaug.io import read_json
    from tasks.report import GENERATION, generation_rows, inception_note, judge_accuracy, judge_note

    if not GENERATION.exists():
        return
    g = read_json(GENERATION)
    sets = {r["set"]: r for r in generation_rows(g) if r["class"] == "all"}
    table = Table(title=f"generated samples ({g['method']}), scored by an independent CNN", caption=f"judge: {judge_accuracy(g)}")
    table.add_column("metric")
    for name in sets:
        table.add_column(name, justify="right")
    labels = {"n": "samples", "label_fidelity": "label fidelity", "frechet_distance": "classifier-feature FD (class mean)", "kid": "classifier-feature KID (class mean)",
              "inception_fid": "Inception FID (class mean)", "diversity": "diversity", "real_diversity": "diversity of real images",
              "near_duplicates": "near-duplicate rate", "nearest_test": "nearest test distance"}
    for key, label in labels.items():
        table.add_row(label, *("not measured" if key == "label_fidelity" and not r["measured"] else "—" if r[key] is None
                               else str(r[key]) if key == "n" else f"{r[key]:.3f}" for r in sets.values()))
    console.print(table)
    if judge_note(g):
        console.print(judge_note(g), style="yellow")
    if inception_note(g):
        console.print(inception_note(g), style="dim")


def _show_runs(args: argparse.Namespace) -> int:
    """Runs side by side: e.g. the exact workspace next to an experiment on a fake device."""
    from tasks.report import side_by_side

    runs = side_by_side(args.compare)
    if args.json:
        print(json.dumps(runs, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    def cell(label: str, value) -> str:
        if value is None or isinstance(value, str) or label.startswith("param "):
            return "—" if value is None else str(value)
        if label.startswith("Δ"):
            return f"{value:+.3f}"
        return str(int(value)) if float(value).is_integer() else f"{value:.3f}"

    table = Table(title="qaug runs side by side")
    table.add_column("")
    for run in runs:
        table.add_column(run, justify="right")
    for label in next(iter(runs.values())):
        table.add_row(label, *(cell(label, values[label]) for values in runs.values()))
    Console().print(table)
    return 0
