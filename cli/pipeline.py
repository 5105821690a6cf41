"""The pipeline's commands: ``qaug run``, ``stage``, ``flow`` (through DVC, as Prefect flow runs when a server
watches), and the nightly deployment's ``schedule`` and ``deploy``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import nullcontext
from pathlib import Path

from cli import results, server
from cli.errors import input_errors
from cli.server import ServerDown, ServerLost


def stage(args: argparse.Namespace) -> int:
    from qaug.params import load_params
    from tasks.stages import NAMES, get

    chosen = get(args.name)
    raw = load_params(args.params)
    chosen.parse(raw)  # bad params fail here, before any work
    print(f"[{NAMES.index(args.name) + 1}/{len(NAMES)}] {args.name}", flush=True)
    start = time.perf_counter()
    if server.watched(required=False):  # a server is watching and this is not a stage of the pipeline flow
        from flows import experiment

        if experiment.current():  # a stage of `dvc exp run`: a task run of the experiment's one flow run
            summary = experiment.run_stage(args.name, raw, experiment.current())
        else:  # run by hand: its own flow run
            from flows.stage import stage_flow

            summary = stage_flow(args.name, args.params)
    else:
        summary = chosen.run(raw)
    print(f"{args.name}: done in {time.perf_counter() - start:.1f} s  {json.dumps(summary)}", flush=True)
    return 0


def pipeline_flow(force: bool, command: str) -> dict[str, str] | None:
    """The pipeline flow (a task run per stage, through DVC): each stage's outcome ("ran", "restored",
    "unchanged"), or None after a failed stage (its output is in the flow run's log); input errors propagate.
    A server lost mid-run is one line, said when it goes (Prefect then retries for minutes before it gives up),
    instead of Prefect's tracebacks and event dumps."""
    from flows.pipeline import pipeline
    from flows.server import api_url, lost_server_errors, watching
    from qaug.repro import exclusive, restore_hint

    with exclusive():  # a second run is refused here, before it makes a flow run (the flow takes the lock itself)
        pass
    url = api_url()
    lost_line = (f"qaug {command}: lost the Prefect server at {url or 'its temporary address'}: this run stops once its running stage "
                 f"ends (dvc.lock keeps every finished stage); start the server again (`prefect server start`) and run `qaug {command}` "
                 "to go on (`qaug automations` marks this run Crashed once the server is back)")
    with watching(url, on_lost=lambda: print(lost_line, file=sys.stderr, flush=True)) if url else nullcontext(None) as lost:
        try:
            return pipeline(force=force)
        except Exception as err:
            if lost is not None and lost.is_set():
                raise ServerLost() from None
            if isinstance(err, lost_server_errors()):  # a temporary server, or one the watcher had not yet missed
                raise ServerDown(lost_line.split(": ", 1)[1]) from None
            if isinstance(err, input_errors()):
                raise
            print(f"qaug {command}: {err}; {restore_hint()}", file=sys.stderr)
            return None


def run(args: argparse.Namespace) -> int:
    from qaug.params import load_params
    import yaml

    from qaug.repro import committed_lock, dvc_repro, exclusive, lock_difference, restore_hint
    from tasks.preflight import before_repro
    from tasks.stages import NAMES

    if server.watched(required=False):  # the UI shows one pipeline run with a task run per stage
        outcome = pipeline_flow(args.force, "run")
        if outcome is None:
            return 1
    else:
        with exclusive():
            before_repro(load_params("params.yaml"), force=args.force)  # data, classes, backend: before dvc deletes any output
            code, outcome = dvc_repro(force=args.force)
            build_docs()
        if code != 0:
            print(f"qaug run: a stage failed (dvc repro exit code {code}); {restore_hint()}", file=sys.stderr)
            return 1
    results.show(argparse.Namespace(json=False))
    if not args.no_push:
        push()
    committed = committed_lock()
    if committed is not None and Path("dvc.lock").is_file():  # "reproduced" only of the stages this run ran
        print(lock_difference(committed, yaml.safe_load(Path("dvc.lock").read_text()), list(NAMES), outcome))
    return 0


def push() -> None:
    """The run's data to the default DVC remote, so a fresh clone can `dvc pull` this version; a failed push
    is a warning (the run itself succeeded and its data is in the local cache)."""
    from qaug.repro import dvc_push

    proc = dvc_push()
    if proc.returncode != 0:
        why = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        print(f"qaug run: warning: dvc push failed, the data stays in this machine's cache only: {why}", file=sys.stderr)
    else:
        print("pushed the run's data to the default DVC remote (`dvc remote list`; `qaug datasets` lists the versions)")


def build_docs() -> None:
    """Data Docs after a run (a failed one too: its failing checks are what to look at); best effort."""
    from qaug.data_docs import build_from_reports
    from tasks.report import CHECKS

    try:
        build_from_reports(list(CHECKS))
    except Exception as err:  # noqa: BLE001 - the run's outputs are in place; docs are a view of them
        print(f"qaug: warning: Data Docs not built ({type(err).__name__}: {err}); `qaug docs` retries", file=sys.stderr)


def flow(args: argparse.Namespace) -> int:
    server.watched(required=True)  # a configured server that is down: one line, before any work
    return 1 if pipeline_flow(args.force, "flow") is None else results.show(argparse.Namespace(json=False))


def schedule(args: argparse.Namespace) -> int:
    from flows.scheduled import serve

    return serve(cron=args.cron, name=args.name, timezone=args.timezone)


def deploy(args: argparse.Namespace) -> int:
    from flows.scheduled import deploy as register

    server.watched(required=True)
    code = register(args.name)
    return code or automations(args)


def automations(args: argparse.Namespace) -> int:
    """The server's automations: runs whose heartbeats stopped are marked Crashed; with ``--notify``, failed runs
    send a message (``qaug deploy`` installs them too)."""
    from flows.automations import install
    from flows.server import api_url

    server.watched(required=True)
    for name in install(notify=args.notify):
        print(f"installed the automation {name!r} on {api_url()}")
    return 0
