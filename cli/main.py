"""Command line.

  qaug run [--force]        the whole pipeline through ``dvc repro`` (what ``make run`` does), then ``dvc push``
  qaug stage NAME           one stage with params.yaml (what each dvc.yaml stage runs)
  qaug show [--json]        baseline vs augmented metrics and deltas
  qaug datasets             the augmented-set versions (rev, method, sizes, Δ accuracy) and the command restoring each
  qaug show --compare A B   runs side by side (e.g. exact vs a fake device, as DVC experiments)
  qaug exps                 DVC experiments: the params that differ and the headline metrics, in 120 columns
  qaug grid FILE            a comparison grid (methods × controls × regimes × seeds), paired statistics, HTML report
  qaug show --grid NAME     a grid's verdicts and paired differences with confidence intervals
  qaug flow [--force]       the same as one Prefect flow run: what dvc repro would run, a task run per stage
  qaug deploy               register prefect.yaml's nightly deployment on its work pool (a worker runs it)
  qaug automations          on the Prefect server: runs whose process died are marked Crashed (deploy does it too)
  qaug schedule --cron ...  serve the nightly deployment from this process instead (one machine, no worker)
  qaug demo                 the quantum core alone: HQCNN + QGAN, no pipeline
  qaug gaussian             Gunduz's 1-D WGAN-GP experiment: N(0, 0.2), moments + histogram
"""

from __future__ import annotations

import argparse
import logging
import sys

from cli import experiments, grids, pipeline, results
from cli.errors import input_errors, rewrite_hint
from cli.server import ServerLost
from qaug import __version__
from qaug.lifeline import hold
from qaug.reproducible import pin
from qaug.settings import LOG_FORMAT, configure


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
    run.set_defaults(func=pipeline.run)

    stage = sub.add_parser("stage", help="run one pipeline stage")
    stage.add_argument("name", choices=NAMES)
    stage.add_argument("--params", default="params.yaml")
    stage.set_defaults(func=pipeline.stage)

    show = sub.add_parser("show", help="baseline vs augmented metrics with deltas")
    show.add_argument("--json", action="store_true", help="print the rows as JSON")
    show.add_argument("--compare", nargs="+", metavar="RUN",
                      help="put runs side by side: DVC experiment names, git revisions or 'workspace' (the params that differ, backend, "
                           "label fidelity, accuracy deltas)")
    show.add_argument("--grid", metavar="NAME", help="a comparison grid's verdicts and paired differences (grids/NAME or a folder)")
    show.add_argument("--markdown", action="store_true", help="with --grid: the tables and verdicts as Markdown")
    show.set_defaults(func=results.show)

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
    grid.set_defaults(func=grids.grid)

    datasets = sub.add_parser("datasets", help="the augmented training sets of this repository's history and how to restore each")
    datasets.add_argument("--json", action="store_true")
    datasets.add_argument("--all-branches", action="store_true", help="every local branch's history (e.g. a deployment's commit_branch), not only HEAD's")
    datasets.set_defaults(func=results.datasets)

    exps = sub.add_parser("exps", help="DVC experiments in 120 columns: the params that differ, then accuracy, macro F1 and "
                                       "generated images (dvc exp show --only-changed cuts the param at that width)")
    exps.add_argument("-A", "--all-commits", action="store_true", help="every commit's experiments, not only HEAD's")
    exps.add_argument("--json", action="store_true", help="print the rows as JSON")
    exps.set_defaults(func=results.exps)

    docs = sub.add_parser("docs", help="build Great Expectations Data Docs (gx/, offline HTML) from the run's data checks")
    docs.set_defaults(func=results.docs)

    flow = sub.add_parser("flow", help="the pipeline as one Prefect flow run: what dvc repro would run, a task run per stage")
    flow.add_argument("--force", action="store_true", help="rerun every stage")
    flow.set_defaults(func=pipeline.flow)

    schedule = sub.add_parser("schedule", help="serve the scheduled dvc-repro flow (Ctrl-C to stop)")
    schedule.add_argument("--cron", default="0 3 * * *", help="cron schedule (default: daily at 03:00)")
    schedule.add_argument("--name", default="qaug-nightly", help="deployment name")
    schedule.add_argument("--timezone", default="UTC", help="the cron's time zone, e.g. Europe/Berlin (default UTC)")
    schedule.set_defaults(func=pipeline.schedule)

    deploy = sub.add_parser("deploy", help="register prefect.yaml's nightly deployment on its process work pool (run from the project root)")
    deploy.add_argument("--name", default="qaug-nightly", help="deployment in prefect.yaml (default qaug-nightly)")
    deploy.add_argument("--notify", metavar="TYPE/NAME", help="also message failed runs through this notification block, e.g. slack-webhook/team")
    deploy.set_defaults(func=pipeline.deploy)

    automations = sub.add_parser("automations", help="install the server's automations: runs whose heartbeats stopped are marked Crashed")
    automations.add_argument("--notify", metavar="TYPE/NAME",
                             help="also message failed, crashed or timed-out runs through this notification block, e.g. slack-webhook/team")
    automations.set_defaults(func=pipeline.automations)

    demo = sub.add_parser("demo", help="train the baseline HQCNN and the QGAN on digits 0/1/2 of the embedded MNIST")
    demo.add_argument("--out", default="outputs/demo", help="output folder (default: outputs/demo)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--image-size", type=int, default=28, choices=(28, 14, 8))
    demo.add_argument("--epochs", type=int, default=30)
    demo.add_argument("--qgan-steps", type=int, default=1200)
    demo.set_defaults(func=experiments.demo)

    gauss = sub.add_parser("gaussian", help="Gunduz (2025): a WGAN-GP hybrid QGAN learns N(0, 0.2); exit 1 if a seed misses ±0.05")
    gauss.add_argument("--out", default="outputs/gaussian", help="output folder (default: outputs/gaussian)")
    gauss.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    gauss.add_argument("--steps", type=_positive, default=None, help="generator steps (default: 1500, the tested setting)")
    gauss.set_defaults(func=experiments.gaussian)

    args = parser.parse_args(argv)
    if argv is None and args.command in OWNERS:  # this process is the command (not a caller's function call)
        hold()
    configure(quiet_prefect=args.command == "grid")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format=LOG_FORMAT)
    logging.getLogger("qaug").setLevel(logging.INFO)  # stages' own progress and outcomes (a Prefect run's log shows them)
    try:
        return args.func(args)
    except ServerLost:
        return 2
    except input_errors() as err:
        print(f"qaug {args.command}: {err}{rewrite_hint(err)}", file=sys.stderr)
        return 2

