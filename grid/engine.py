"""The grid as one Prefect flow run whose stage runs are task runs, on local processes, Dask or Ray.

Seeds come in waves (grid.waves): the flow runs the first wave's cells of the arms its primary comparisons name,
judges them, runs the next wave's seeds only for arms with an open question until all are decided or the plan
ends, then the first wave of the exploratory arms. Within a wave
the flow is the scheduler: a stage run is submitted once the runs that make its
inputs have finished (``wait_for`` on their futures draws the real graph in the UI),
so no worker ever sits waiting for another. Every worker process uses one torch
thread: qaug's circuits are tiny, and intra-op threads that spin on them run 12–15×
slower as soon as another process is busy on the machine.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from grid.plan import StageRun
from grid.store import execute, failures, is_done
from qaug.lifeline import stopping_first
from qaug.reproducible import pin

Engine = Literal["process", "dask", "ray"]


def pin_threads() -> None:
    """qaug's reproducibility pins, and one intra-op thread in any case (workers inherit the variables)."""
    pin()
    import torch

    torch.set_num_threads(1)


class _Terminal(logging.Handler):
    """Hands a record to the root logger's handlers: the terminal (and whatever else the worker logs to)."""

    def emit(self, record: logging.LogRecord) -> None:
        logging.getLogger().handle(record)


@contextmanager
def logs_to_task_run() -> Iterator[None]:
    """The stage's own log lines (loggers ``qaug.*``: filter rounds, generation, progress) at INFO and above into
    this task run's log at their levels; the terminal still gets only warnings and errors (the grid's progress
    bar). A worker process left ``qaug`` at the root's WARNING, so its INFO lines went nowhere. One stage run
    at a time per worker process (process pool, one-thread Dask and Ray workers): the logger is the process's."""
    from prefect.logging.handlers import APILogHandler

    qaug = logging.getLogger("qaug")
    saved = qaug.level, qaug.propagate, list(qaug.handlers)
    qaug.handlers = [APILogHandler(), _Terminal(logging.WARNING)]
    qaug.setLevel(logging.INFO)
    qaug.propagate = False
    try:
        yield
    finally:
        qaug.setLevel(saved[0])
        qaug.propagate = saved[1]
        qaug.handlers = saved[2]


@task(cache_policy=NO_CACHE, persist_result=False, task_run_name="{run.label}")
def stage_task(run: StageRun, store: str, upstream: dict[str, StageRun]) -> dict:
    """One stage run in the grid's store (a no-op if another process finished it), its log lines in the task run's."""
    pin_threads()
    with logs_to_task_run():
        return execute(Path(store), run, upstream)


def task_runner(engine: Engine, workers: int, address: str | None = None):
    """Prefect's process pool, prefect-dask (a LocalCluster, or ``address`` of a running scheduler) or prefect-ray."""
    pin_threads()  # before any worker starts: they inherit the environment
    if engine == "process":
        from prefect.task_runners import ProcessPoolTaskRunner

        return ProcessPoolTaskRunner(max_workers=workers)
    if engine == "dask":
        from prefect_dask import DaskTaskRunner

        if address:
            return DaskTaskRunner(address=address)
        return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True,
                                              "dashboard_address": None})
    try:
        from prefect_ray import RayTaskRunner
    except ImportError:
        raise RuntimeError("--engine ray needs prefect-ray: pip install 'qaug[ray]'") from None
    if address:
        return RayTaskRunner(address=address)
    # "local": always a new instance of N CPUs; without it ray.init joins whatever cluster the machine's
    # /tmp/ray/ray_current_cluster names (another user's, or a dead one's stale address)
    return RayTaskRunner(address="local", init_kwargs={"num_cpus": workers})


@dataclass
class Outcome:
    executed: list[str] = field(default_factory=list)  # keys run now
    reused: list[str] = field(default_factory=list)  # keys found finished in the store
    failed: dict[str, str] = field(default_factory=dict)  # key → error
    blocked: list[str] = field(default_factory=list)  # keys not run because an input failed
    seconds: float = 0.0

    def add(self, wave: "Outcome") -> None:
        """A wave's outcome into the grid's (what the finished cells reused is counted once, at the end)."""
        self.executed += wave.executed
        self.failed |= wave.failed
        self.blocked += wave.blocked
        self.seconds += wave.seconds


def schedule(runs: dict[str, StageRun], store: Path, in_flight: int, on_done=lambda run, ok: None) -> Outcome:
    """Run every unfinished stage run once its inputs exist; returns what ran, what was reused and what failed.

    At most ``in_flight`` runs are submitted at a time, the earliest in plan order first, so
    cells finish in the grid file's order (regime by regime) instead of all at the very end."""
    outcome = Outcome(reused=[k for k, r in runs.items() if is_done(store, r)])
    finished = set(outcome.reused)
    waiting = {k: r for k, r in runs.items() if k not in finished}
    futures: dict = {}
    done: queue.Queue = queue.Queue()
    active = 0
    start = time.perf_counter()

    def submit_ready() -> None:
        nonlocal active
        for key, run in list(waiting.items()):
            if active >= in_flight:
                return
            if all(u in finished for u in run.upstream):
                del waiting[key]
                future = stage_task.submit(run, str(store), {u: runs[u] for u in run.upstream},
                                           wait_for=[futures[u] for u in run.upstream if u in futures])
                future.add_done_callback(lambda f, key=key: done.put(key))
                futures[key] = future
                active += 1

    submit_ready()
    while active:
        key = done.get()
        active -= 1
        try:  # the state a done-callback sees can lag behind; the result cannot
            futures[key].result()
            finished.add(key)
            outcome.executed.append(key)
        except Exception as err:  # the stage's own message (e.g. a failed data check)
            outcome.failed[key] = f"{type(err).__name__}: {err}"
        on_done(runs[key], key in finished)
        submit_ready()
    outcome.blocked = list(waiting)
    for key in outcome.blocked:
        on_done(runs[key], False)
    outcome.seconds = time.perf_counter() - start
    return outcome


@flow(name="qaug-grid", flow_run_name="{name}", validate_parameters=False)
def grid_flow(name: str, grid_file: str, out: str, in_flight: int = 4, progress: bool = True) -> dict:
    """Run (or resume) the grid wave by wave, then write its verdicts, tables and report and publish them as artifacts."""
    from grid.outputs import failed_cells, finish, finished_records, load_plan
    from grid.primaries import design
    from grid.progress import GridProgress
    from grid.waves import replay

    spec, cells, runs, per_cell = load_plan(Path(grid_file))
    questions = design(spec)
    store = Path(out).resolve() / "store"  # workers of an existing cluster may run elsewhere: they need the full path
    total = Outcome()
    with stopping_first():
        while not (state := replay(spec, questions, cells, finished_records(cells, runs, per_cell, store),
                                   set(failed_cells(cells, runs, per_cell, store)))).finished:
            keys = {k for c in state.to_run for k in per_cell[c.id].values()}
            wave = {k: r for k, r in runs.items() if k in keys}  # plan order: inputs first
            label = (f"wave {state.judged + 1}/{questions.looks}" if questions.looks > 1 else "") if state.missing else "exploratory arms"
            with GridProgress(spec.name, wave, {c.id: per_cell[c.id] for c in state.to_run}, store, terminal=progress, wave=label) as bar:
                outcome = schedule(wave, store, in_flight, on_done=bar.advance)
            total.add(outcome)
            unexplained = set(outcome.failed) - set(failures(store, runs))  # not a failed data check: the look cannot be judged
            if unexplained or not (outcome.executed or outcome.failed):  # new failure marks let the look be judged
                break
    used = {k for keys in per_cell.values() if all(is_done(store, runs[k]) for k in keys.values()) for k in keys.values()}
    total.reused = [k for k in runs if k in used and k not in total.executed]  # every run the finished cells took from the store
    return finish(spec, cells, runs, per_cell, Path(out), total)


@flow(name="qaug-grid-report", flow_run_name="{name}", validate_parameters=False)
def report_flow(name: str, grid_file: str, out: str) -> dict:
    """Verdicts, tables and report from the cells finished so far, running nothing (e.g. while a long grid is still running)."""
    from grid.outputs import finish, load_plan

    spec, cells, runs, per_cell = load_plan(Path(grid_file))
    outcome = Outcome(reused=[k for k, r in runs.items() if is_done(Path(out) / "store", r)])
    return finish(spec, cells, runs, per_cell, Path(out), outcome)
