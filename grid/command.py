"""``qaug grid FILE`` (run or resume), ``qaug grid --status FILE`` and ``qaug show --grid NAME``."""

from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from grid.spec import GridError


@contextmanager
def exclusive(out: Path) -> Iterator[None]:
    """One grid run per output folder: a second is refused instead of racing on the store."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise GridError(f"another qaug grid is running on {out} (pid {handle.read().strip() or '?'}); wait for it or use --out") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield


@contextmanager
def one_prefect_api() -> Iterator[None]:
    """Every worker must report to the same Prefect API: the user's (PREFECT_API_URL), else one temporary
    server for the whole grid (left to themselves, spawned workers would each start their own)."""
    from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

    if get_current_settings().api.url:
        yield
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    server.start(timeout=180)
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            yield
    finally:
        server.stop()


def run(grid_file: Path, out: Path, engine: str, workers: int, address: str | None, progress: bool) -> dict:
    """Validate the grid (every cell's params) before any work, then run what is not in the store yet."""
    from grid.engine import grid_flow, task_runner
    from grid.outputs import load_plan
    from grid.store import clean_partial

    spec, cells, runs, _ = load_plan(grid_file)  # bad grid files fail here
    with exclusive(out), one_prefect_api():
        removed = clean_partial(out / "store")
        if removed:
            print(f"removed {removed} unfinished stage run(s) left by an interrupted grid")
        runner = task_runner(engine, workers, address)  # type: ignore[arg-type]
        where = address or f"{workers} local worker process(es)"
        print(f"grid {spec.name}: {len(cells)} cells, {len(runs)} stage runs on {engine} ({where}, one torch thread each) → {out}")
        return grid_flow.with_options(task_runner=runner)(name=spec.name, grid_file=str(grid_file), out=str(out), in_flight=workers + 1,
                                                          progress=progress)


def show(out: Path) -> dict:
    """The grid's summary.json (raises GridError naming the folder when the grid has not run)."""
    path = out / "summary.json"
    if not path.is_file():
        raise GridError(f"{path} not found: run `qaug grid grids/{out.name}.yaml` first")
    return json.loads(path.read_text())
