"""Command line.

  qaug run [--force]        the whole pipeline through ``dvc repro`` (what ``make run`` does), then ``dvc push``
  qaug stage NAME           one stage with params.yaml (what each dvc.yaml stage runs)
  qaug show [--json]        baseline vs augmented metrics and deltas
  qaug datasets             the augmented-set versions (rev, method, sizes, Δ accuracy) and the command restoring each
  qaug show --compare A B   runs side by side (e.g. exact vs a fake device, as DVC experiments)
  qaug grid FILE            a comparison grid (methods × controls × regimes × seeds), paired statistics, HTML report
  qaug show --grid NAME     a grid's verdicts and paired differences with confidence intervals
  qaug flow [--force]       the same as one Prefect flow run: what dvc repro would run, a task run per stage
  qaug deploy               register prefect.yaml's nightly deployment on its work pool (a worker runs it)
  qaug schedule --cron ...  serve the nightly deployment from this process instead (one machine, no worker)
  qaug demo                 the quantum core alone: HQCNN + QGAN, no pipeline
  qaug gaussian             Gunduz's 1-D WGAN-GP experiment: N(0, 0.2), moments + histogram
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

from qaug import __version__
from qaug.lifeline import hold
from qaug.reproducible import pin
from qaug.settings import configure


def _stage(args: argparse.Namespace) -> int:
    from qaug.params import load_params
    from tasks.stages import NAMES, get

    stage = get(args.name)
    raw = load_params(args.params)
    stage.parse(raw)  # bad params fail here, before any work
    print(f"[{NAMES.index(args.name) + 1}/{len(NAMES)}] {args.name}", flush=True)
    start = time.perf_counter()
    if _watched(required=False):  # a server is watching and this is not a stage of the pipeline flow: its own flow run
        from flows.stage import stage_flow

        summary = stage_flow(args.name, args.params)
    else:
        summary = stage.run(raw)
    print(f"{args.name}: done in {time.perf_counter() - start:.1f} s  {json.dumps(summary)}", flush=True)
    return 0


class ServerDown(RuntimeError):
    """The configured Prefect server does not answer."""


def _watched(required: bool) -> bool:
    """Whether a Prefect server is configured and answers. A stage of a run that already decided (the pipeline
    flow logs its output; a fallback run goes without) does not ask. A configured server that is down: a warning
    (``required=False``: go on without Prefect) or ServerDown."""
    from qaug.repro import NO_STAGE_FLOW

    if os.environ.get(NO_STAGE_FLOW):
        return False
    from flows.server import api_url, down_message, unreachable

    url = api_url()
    why = unreachable(url) if url else None
    if why and required:
        raise ServerDown(down_message(url, why))
    if why:
        print(f"qaug: warning: {down_message(url, why)}; running without Prefect", file=sys.stderr, flush=True)
    return bool(url) and not why


def _pipeline_flow(force: bool, command: str) -> dict[str, str] | None:
    """The pipeline flow (a task run per stage, through DVC): each stage's outcome ("ran", "restored",
    "unchanged"), or None after a failed stage (its output is in the flow run's log); input errors propagate,
    and a server lost mid-run is one line, not tracebacks."""
    from flows.pipeline import pipeline
    from flows.server import api_url, lost_server_errors
    from tasks.preflight import RESTORE_HINT

    try:
        return pipeline(force=force)
    except lost_server_errors() as err:
        raise ServerDown(f"lost the Prefect server at {api_url() or 'its temporary address'} during the run "
                         f"({type(err).__name__}); the stages that finished are recorded in dvc.lock: run again to go on") from None
    except Exception as err:
        if isinstance(err, _input_errors()):
            raise
        print(f"qaug {command}: {err}; {RESTORE_HINT}", file=sys.stderr)
        return None


def _run(args: argparse.Namespace) -> int:
    from qaug.params import load_params
    import yaml

    from qaug.repro import committed_lock, dvc_repro, exclusive, lock_difference
    from tasks.preflight import RESTORE_HINT, before_repro
    from tasks.stages import NAMES

    if _watched(required=False):  # the UI shows one pipeline run with a task run per stage
        outcome = _pipeline_flow(args.force, "run")
        if outcome is None:
            return 1
    else:
        with exclusive():
            before_repro(load_params("params.yaml"), force=args.force)  # data, classes, backend: before dvc deletes any output
            code, outcome = dvc_repro(force=args.force)
            _build_docs()
        if code != 0:
            print(f"qaug run: a stage failed (dvc repro exit code {code}); {RESTORE_HINT}", file=sys.stderr)
            return 1
    _show(argparse.Namespace(json=False))
    if not args.no_push:
        _push()
    committed = committed_lock()
    if committed is not None and Path("dvc.lock").is_file():  # "reproduced" only of the stages this run ran
        print(lock_difference(committed, yaml.safe_load(Path("dvc.lock").read_text()), list(NAMES), outcome))
    return 0


def _push() -> None:
    """The run's data to the default DVC remote, so a fresh clone can `dvc pull` this version; a failed push
    is a warning (the run itself succeeded and its data is in the local cache)."""
    from qaug.repro import dvc_push

    proc = dvc_push()
    if proc.returncode != 0:
        why = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        print(f"qaug run: warning: dvc push failed, the data stays in this machine's cache only: {why}", file=sys.stderr)
    else:
        print("pushed the run's data to the default DVC remote (`dvc remote list`; `qaug datasets` lists the versions)")


def _docs(args: argparse.Namespace) -> int:
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


def _build_docs() -> None:
    """Data Docs after a run (a failed one too: its failing checks are what to look at); best effort."""
    from qaug.data_docs import build_from_reports
    from tasks.report import CHECKS

    try:
        build_from_reports(list(CHECKS))
    except Exception as err:  # noqa: BLE001 - the run's outputs are in place; docs are a view of them
        print(f"qaug: warning: Data Docs not built ({type(err).__name__}: {err}); `qaug docs` retries", file=sys.stderr)


def _datasets(args: argparse.Namespace) -> int:
    from tasks.datasets import versions

    found = versions(branches=args.all_branches)
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="augmented training sets (data/augmented/train.npz), newest first")
    for col in ("rev", "date", "method", "strategy", "seed", "real", "generated", "Δ accuracy", "restore with"):
        table.add_column(col, justify="right" if col in ("seed", "real", "generated", "Δ accuracy") else "left")
    for v in found:
        delta = "—" if v["accuracy_delta"] is None else f"{v['accuracy_delta']:+.3f}"
        table.add_row(v["rev"], v["date"], str(v["method"]), str(v["strategy"]), str(v["seed"]), str(v["real"]), str(v["generated"]),
                      delta, v["restore"])
    Console(width=220).print(table)
    return 0


def _show(args: argparse.Namespace) -> int:
    if getattr(args, "compare", None):
        return _show_runs(args)
    if getattr(args, "grid", None):
        return _show_grid(args)
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


def _grid_out(args: argparse.Namespace) -> Path:
    from grid.outputs import default_out

    return Path(args.out) if args.out else default_out(Path(args.file))


def _grid(args: argparse.Namespace) -> int:
    from grid import command
    from grid.outputs import status

    out = _grid_out(args)
    if args.address and args.engine == "process":
        print("qaug grid: --address needs --engine dask or --engine ray", file=sys.stderr)
        return 2
    if args.status:
        info = status(Path(args.file), out)
        print(json.dumps(info, indent=2) if args.json else
              f"grid {info['grid']}: {info['cells_done']}/{info['cells']} cells, {info['stage_runs_done']}/{info['stage_runs']} stage runs done\n" +
              "\n".join(f"  {stage:16s} {v['done']:4d}/{v['runs']} done" for stage, v in info["per_stage"].items()))
        return 0
    if args.report:
        from grid.engine import report_flow
        from grid.spec import load_grid

        result = report_flow(name=load_grid(Path(args.file)).name, grid_file=args.file, out=str(out))
    else:
        result = command.run(Path(args.file), out, args.engine, args.workers, args.address, progress=not args.no_progress)
    print(f"grid {result['grid']}: {result['cells_finished']}/{result['cells']} cells finished in {result['wall_seconds']:.0f} s "
          f"(stage runs executed {sum(result['executed'].values())}, reused {sum(result['reused'].values())}); report: {out / 'report.html'}")
    _show_grid(argparse.Namespace(grid=str(out), json=False))
    for label, error in result["failed"].items():
        print(f"failed: {label}: {error}", file=sys.stderr)
    return 1 if result["failed"] else 0


def _show_grid(args: argparse.Namespace) -> int:
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


def _flow(args: argparse.Namespace) -> int:
    _watched(required=True)  # a configured server that is down: one line, before any work
    return 1 if _pipeline_flow(args.force, "flow") is None else _show(argparse.Namespace(json=False))


def _schedule(args: argparse.Namespace) -> int:
    from flows.scheduled import serve

    return serve(cron=args.cron, name=args.name, timezone=args.timezone)


def _deploy(args: argparse.Namespace) -> int:
    from flows.scheduled import deploy

    _watched(required=True)
    return deploy(args.name)


def _demo(args: argparse.Namespace) -> int:
    from qaug.demo import demo

    demo(Path(args.out), seed=args.seed, image_size=args.image_size, epochs=args.epochs, qgan_steps=args.qgan_steps)
    return 0


def _gaussian(args: argparse.Namespace) -> int:
    from qaug.gaussian import gaussian_experiment
    from qmodels.wgan import SampleQGANConfig

    cfg = SampleQGANConfig() if args.steps is None else SampleQGANConfig(steps=args.steps)
    result = gaussian_experiment(Path(args.out), args.seeds, cfg, progress=True)
    return 0 if result["all_within_tolerance"] else 1


# The commands whose processes (Prefect server and workers, DVC, stages) must not outlive them: qaug.lifeline.
OWNERS = ("grid", "run", "flow")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def main(argv: list[str] | None = None) -> int:
    pin()  # threads and CPU code paths, before anything imports torch
    from tasks.stages import NAMES

    parser = argparse.ArgumentParser(prog="qaug", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"qaug {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the pipeline with dvc repro (only stages whose inputs changed)")
    run.add_argument("--force", action="store_true", help="rerun every stage")
    run.add_argument("--no-push", action="store_true", help="do not `dvc push` the run's data to the default DVC remote")
    run.set_defaults(func=_run)

    stage = sub.add_parser("stage", help="run one pipeline stage")
    stage.add_argument("name", choices=NAMES)
    stage.add_argument("--params", default="params.yaml")
    stage.set_defaults(func=_stage)

    show = sub.add_parser("show", help="baseline vs augmented metrics with deltas")
    show.add_argument("--json", action="store_true", help="print the rows as JSON")
    show.add_argument("--compare", nargs="+", metavar="RUN",
                      help="put runs side by side: DVC experiment names, git revisions or 'workspace' (the params that differ, backend, "
                           "label fidelity, accuracy deltas)")
    show.add_argument("--grid", metavar="NAME", help="a comparison grid's verdicts and paired differences (grids/NAME or a folder)")
    show.add_argument("--markdown", action="store_true", help="with --grid: the tables and verdicts as Markdown")
    show.set_defaults(func=_show)

    grid = sub.add_parser("grid", help="run or resume a comparison grid: methods × controls × regimes × seeds, paired statistics, HTML report")
    grid.add_argument("file", help="grid file, e.g. grids/quick.yaml")
    grid.add_argument("--status", action="store_true", help="only say how much of the grid has run")
    grid.add_argument("--json", action="store_true", help="with --status: as JSON")
    grid.add_argument("--report", action="store_true", help="write the tables and report from the cells finished so far; run nothing")
    grid.add_argument("--workers", type=_positive, default=2, help="worker processes, one torch thread each (default 2)")
    grid.add_argument("--engine", choices=("process", "dask", "ray"), default="process",
                      help="Prefect task runner: local processes (default), prefect-dask or prefect-ray")
    grid.add_argument("--address", help="an existing cluster's scheduler (dask: tcp://host:8786; ray: host:port)")
    grid.add_argument("--out", help="output folder (default: the grid file's folder / its name, e.g. grids/quick/)")
    grid.add_argument("--no-progress", action="store_true", help="no progress bar in the terminal")
    grid.set_defaults(func=_grid)

    datasets = sub.add_parser("datasets", help="the augmented training sets of this repository's history and how to restore each")
    datasets.add_argument("--json", action="store_true")
    datasets.add_argument("--all-branches", action="store_true", help="every local branch's history (e.g. a deployment's commit_branch), not only HEAD's")
    datasets.set_defaults(func=_datasets)

    docs = sub.add_parser("docs", help="build Great Expectations Data Docs (gx/, offline HTML) from the run's data checks")
    docs.set_defaults(func=_docs)

    flow = sub.add_parser("flow", help="the pipeline as one Prefect flow run: what dvc repro would run, a task run per stage")
    flow.add_argument("--force", action="store_true", help="rerun every stage")
    flow.set_defaults(func=_flow)

    schedule = sub.add_parser("schedule", help="serve the scheduled dvc-repro flow (Ctrl-C to stop)")
    schedule.add_argument("--cron", default="0 3 * * *", help="cron schedule (default: daily at 03:00)")
    schedule.add_argument("--name", default="qaug-nightly", help="deployment name")
    schedule.add_argument("--timezone", default="UTC", help="the cron's time zone, e.g. Europe/Berlin (default UTC)")
    schedule.set_defaults(func=_schedule)

    deploy = sub.add_parser("deploy", help="register prefect.yaml's nightly deployment on its process work pool (run from the project root)")
    deploy.add_argument("--name", default="qaug-nightly", help="deployment in prefect.yaml (default qaug-nightly)")
    deploy.set_defaults(func=_deploy)

    demo = sub.add_parser("demo", help="train the baseline HQCNN and the QGAN on digits 0/1/2 of the embedded MNIST")
    demo.add_argument("--out", default="outputs/demo", help="output folder (default: outputs/demo)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--image-size", type=int, default=28, choices=(28, 14, 8))
    demo.add_argument("--epochs", type=int, default=30)
    demo.add_argument("--qgan-steps", type=int, default=1200)
    demo.set_defaults(func=_demo)

    gauss = sub.add_parser("gaussian", help="Gunduz (2025): a WGAN-GP hybrid QGAN learns N(0, 0.2); exit 1 if a seed misses ±0.05")
    gauss.add_argument("--out", default="outputs/gaussian", help="output folder (default: outputs/gaussian)")
    gauss.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    gauss.add_argument("--steps", type=_positive, default=None, help="generator steps (default: 1500, the tested setting)")
    gauss.set_defaults(func=_gaussian)

    args = parser.parse_args(argv)
    if argv is None and args.command in OWNERS:  # this process is the command (not a caller's function call)
        hold()
    configure(quiet_prefect=args.command == "grid")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("qaug").setLevel(logging.INFO)  # stages' own progress and outcomes (a Prefect run's log shows them)
    try:
        return args.func(args)
    except _input_errors() as err:
        print(f"qaug {args.command}: {err}{_rewrite_hint(err)}", file=sys.stderr)
        return 2


def _input_errors() -> tuple[type[Exception], ...]:
    """Errors that are the input's fault (params, data, files, backend, server, a busy project): one line, exit 2."""
    from qaug.checks import DataCheckError
    from qaug.io import InputError
    from qaug.params import ParamsError
    from qaug.repro import PipelineBusy
    from qmodels.backends import BackendError

    return (ParamsError, DataCheckError, InputError, BackendError, FileNotFoundError, ServerDown, PipelineBusy)


def _rewrite_hint(err: Exception) -> str:
    """For a damaged input file: which stage writes it and how to get it back."""
    from qaug.io import InputError
    from tasks.stages import writer

    stage = writer(err.path) if isinstance(err, InputError) and err.path else None
    if stage is None:
        return ""
    in_git = err.path.parts[0] in ("metrics", "plots")  # dvc.yaml keeps them out of the DVC cache (cache: false)
    restore = f"`git checkout -- {err.path}` restores the committed version" if in_git else f"`dvc checkout {err.path}` restores the cached version"
    return f"\n  {err.path} is written by stage {stage}: {restore}, `dvc repro -f -s {stage}` rewrites it"
