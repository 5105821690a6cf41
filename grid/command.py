"""``qaug grid FILE`` (run or resume), ``qaug grid --status FILE`` and ``qaug show --grid NAME``."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from grid.format import canonical
from grid.plan import axes
from grid.spec import GridError, load_grid
from qaug.params import lookup
from qaug.lock import held


def exclusive(out: Path):
    """One grid run per output folder: a second is refused instead of racing on the store."""
    return held(out / ".lock", lambda pid: GridError(f"another qaug grid is running on {out} (pid {pid}); wait for it or use --out"))


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
    from grid.store import clean_partial, is_done
    from tasks.preflight import check_data

    spec = load_grid(grid_file)  # bad grid files fail here (every cell's params are checked once)
    for cell in {canonical(c.params.get("ingest")): c for c in spec.cells() if lookup(c.params, "ingest.download")}.values():
        check_data(cell.params)  # a torchvision download first: the plan keys runs by the data as ingest will read it
    spec, cells, runs, per_cell = load_plan(grid_file, spec)
    pending = {canonical(c.params.get("ingest")): c for c in cells if not is_done(out / "store", runs[per_cell[c.id]["ingest"]])}
    for cell in pending.values():  # each regime's data and classes still to ingest, before any work; errors name the regime
        try:
            check_data(cell.params)
        except (ValueError, FileNotFoundError) as err:
            raise GridError(f"{grid_file}: {axes(cell)}: {str(err).removeprefix('params.yaml: ')}") from None
    with exclusive(out), one_prefect_api():
        removed = clean_partial(out / "store")
        if removed:
            print(f"removed {removed} unfinished stage run(s) left by an interrupted grid")
        runner = task_runner(engine, workers, address)  # type: ignore[arg-type]
        where = address or f"{workers} local worker process(es)"
        print(f"grid {spec.name}: {len(cells)} cells, {len(runs)} stage runs on {engine} ({where}, one torch thread each) → {out}")
        return grid_flow.with_options(task_runner=runner)(name=spec.name, grid_file=str(grid_file), out=str(out), in_flight=workers + 1,
                                                          progress=progress)


def show(name: Path) -> dict:
    """A grid's summary.json, by folder or by name (``regimes`` → grids/regimes/); GridError when it has not run."""
    out = name if name.is_dir() or name.parent != Path(".") else Path("grids") / name
    path = out / "summary.json"
    if not path.is_file():
        raise GridError(f"{path} not found: run `qaug grid grids/{out.name}.yaml` first")
    return json.loads(path.read_text())


def print_summary(summary: dict) -> None:
    """Per regime (and sweep point): the headline metric's table, then the verdicts in words."""
    from rich.console import Console
    from rich.table import Table

    from grid.format import ci, pts, pvalue
    from grid.report import groups, headline, judges, verdicts

    console = Console()
    console.print(f"grid {summary['grid']}, judged by {judges(summary.get('classifiers', ['hqcnn']))}")
    for (regime, point), (label, sentences) in zip(groups(summary), verdicts(summary)):
        arms = [a for a in summary["arms"] if a["regime"] == regime and a["point"] == point]
        metric = headline({m for a in arms for m in a["metrics"]})
        table = Table(title=f"grid {summary['grid']} · {label} · {metric} (percentage points)")
        for col in ("arm", "seeds", "mean ± sd", "Δ vs none [95% CI]", "Holm p", "Δ vs dup. [95% CI]", "Holm p", "vs none"):
            table.add_column(col, justify="left" if col == "arm" else "right")
        for a in arms:
            rows = {r["reference"]: r for r in summary["comparisons"] if r["regime"] == regime and r["point"] == point
                    and r["arm"] == a["arm"] and r["metric"] == metric}
            m, none, dup = a["metrics"].get(metric), rows.get("none"), rows.get("duplicates")
            table.add_row(a["arm"], str(a["seeds"]) + (f" ({a['collapsed']} left out)" if a["collapsed"] else ""),
                          f"{pts(m['mean'], False)} ± {pts(m['sd'], False)}" if m else "—",
                          f"{pts(none['mean'])} {ci(none)}" if none else "", pvalue(none["p_holm"]) if none else "",
                          f"{pts(dup['mean'])} {ci(dup)}" if dup else "", pvalue(dup["p_holm"]) if dup else "",
                          none["verdict"] if none else "")
        console.print(table)
        for s in sentences:
            console.print("• " + s)
