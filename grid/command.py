"""``qaug grid FILE`` (run or resume), ``qaug grid --status FILE`` and ``qaug show --grid NAME``."""

from __future__ import annotations

import json
import math
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from grid.format import canonical, pts
from grid.plan import axes
from grid.primaries import design
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


@contextmanager
def said_once(runs: dict, store: Path) -> Iterator[None]:
    """Say "Inception FID skipped" once for the grid, when a score_generated run still to do has no weights,
    and keep the stage runs from saying it once per cell (the workers inherit the variable)."""
    from grid.store import is_done
    from qaug.inception import SKIPPED, SKIPPED_SAID, MetricsParams
    from qaug.params import section

    if any(r.stage == "score_generated" and not is_done(store, r) and section(MetricsParams, r.params, "metrics").inception_weights is None
           for r in runs.values()):
        print(f"{SKIPPED} (every cell that scores its generated samples)", flush=True)
    before = os.environ.get(SKIPPED_SAID)
    os.environ[SKIPPED_SAID] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(SKIPPED_SAID, None)
        else:
            os.environ[SKIPPED_SAID] = before


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
    questions = design(spec)
    pending = {canonical(c.params.get("ingest")): c for c in cells if not is_done(out / "store", runs[per_cell[c.id]["ingest"]])}
    for cell in pending.values():  # each regime's data and classes still to ingest, before any work; errors name the regime
        try:
            check_data(cell.params)
        except (ValueError, FileNotFoundError) as err:
            raise GridError(f"{grid_file}: {axes(cell)}: {str(err).removeprefix('params.yaml: ')}") from None
    with exclusive(out), one_prefect_api(), said_once(runs, out / "store"):
        removed = clean_partial(out / "store")
        if removed:
            print(f"removed {removed} unfinished stage run(s) left by an interrupted grid")
        runner = task_runner(engine, workers, address)  # type: ignore[arg-type]
        where = address or f"{workers} local worker process(es)"
        waves = f" in waves of up to {', '.join(map(str, questions.plan))} seeds" if questions.looks > 1 else ""
        print(f"grid {spec.name}: {'up to ' if waves else ''}{len(cells)} cells{waves}, {len(questions.primaries)} primary comparisons, "
              f"{len(runs)} stage runs at most, on {engine} ({where}, one torch thread each) → {out}")
        return grid_flow.with_options(task_runner=runner)(name=spec.name, grid_file=str(grid_file), out=str(out), in_flight=workers + 1,
                                                          progress=progress)


def show(name: Path) -> dict:
    """A grid's summary.json, by folder or by name (``regimes`` → grids/regimes/); GridError when it has not run."""
    out = name if name.is_dir() or name.parent != Path(".") else Path("grids") / name
    path = out / "summary.json"
    if not path.is_file():
        raise GridError(f"{path} not found: run `qaug grid grids/{out.name}.yaml` first")
    return json.loads(path.read_text())


def print_summary(summary: dict, width: int = 100) -> None:
    """The decisions (every primary comparison's verdict), then per regime the headline metric's arms (exploratory),
    in tables that fit ``width`` columns."""
    from rich.console import Console
    from rich.table import Table

    from grid.format import ci, group_label, pts
    from grid.report import groups, headline, judges, verdicts

    import shutil

    console = Console(width=min(width, shutil.get_terminal_size((width, 24)).columns))  # piped: ``width`` columns
    console.print(f"grid {summary['grid']}, judged by {judges(summary.get('classifiers', ['hqcnn']))}")
    if summary.get("decisions"):
        console.print(summary.get("family", ""))
        table = Table(title=f"grid {summary['grid']} · decisions (percentage points)", pad_edge=False)
        for col in ("compared", "regime", "metric", "verdict", "seeds", "Δ [CI]", "±δ", "P(better)"):
            words = col in ("compared", "regime", "metric", "verdict")  # only "qgan vs / duplicates" wraps: 100 columns
            table.add_column(col, justify="left" if words else "right", no_wrap=col != "compared")
        for d in summary["decisions"]:
            p_better = d.get("p_better")
            p_better = None if p_better is None or not math.isfinite(p_better) else p_better
            table.add_row(f"{d['arm']} vs {d['reference']}", group_label(d["regime"], d["point"]), d["metric"],
                          d["verdict"] + (" (and equivalent)" if d["within_margin"] else ""), str(d["n"]), f"{pts(d['mean'])} [{pts(d['low'])}, {pts(d['high'])}]",
                          pts(d["margin"], False), "—" if p_better is None else f"{p_better:.2f}")
        console.print(table)
    for (regime, point), (label, sentences) in zip(groups(summary), verdicts(summary)):
        arms = [a for a in summary["arms"] if a["regime"] == regime and a["point"] == point]
        metric = headline({m for a in arms for m in a["metrics"]})
        table = Table(title=f"{label} · {metric} (points; exploratory, unadjusted 95 % CIs)")
        for col in ("arm", "seeds", "mean ± sd", "Δ vs none", "Δ vs duplicates"):
            table.add_column(col, justify="left" if col == "arm" else "right")
        for a in arms:
            rows = {r["reference"]: r for r in summary["comparisons"] if r["regime"] == regime and r["point"] == point
                    and r["arm"] == a["arm"] and r["metric"] == metric}
            m, none, dup = a["metrics"].get(metric), rows.get("none"), rows.get("duplicates")
            table.add_row(a["arm"], str(a["seeds"]) + (f" ({a['collapsed']} out)" if a["collapsed"] else ""),
                          f"{pts(m['mean'], False)} ± {pts(m['sd'], False)}" if m else "—",
                          f"{pts(none['mean'])} {ci(none)}" if none else "", f"{pts(dup['mean'])} {ci(dup)}" if dup else "")
        console.print(table)
        for s in sentences:  # the primaries' verdicts in words; the exploratory arms are the table above
            if not s.startswith("Exploratory"):
                console.print("• " + s)


def status_text(info: dict) -> str:
    """``qaug grid --status``: cells and stage runs done, the looks judged, each primary's verdict so far, the next wave."""
    lines = [f"grid {info['grid']}: {info['cells_done']}/{info['cells']} cells, {info['stage_runs_done']}/{info['stage_runs']} stage runs done",
             *(f"  {stage:16s} {v['done']:4d}/{v['runs']} done" for stage, v in info["per_stage"].items()),
             f"waves {info['plan']}: {info['looks_judged']} look(s) judged"]
    for d in info["decisions"]:  # the estimate so far, at the interval's deciding level (a long verdict on a line of its own)
        text = f"{d['text']}; margin ±{pts(d['margin'], False)}"
        line = f"  {d['comparison']}: {text}"
        lines += [line] if len(line) <= 100 else [f"  {d['comparison']}:", f"      {text}"]
    wave = info["next_wave"]
    if wave is None:
        lines.append("every look is judged: nothing left to run")
    else:
        cells = ", ".join(f"{what} ×{n}" for what, n in wave["cells_to_run"].items()) or "none (judged on the next run)"
        what = f"wave {wave['look']} (seeds up to {wave['seeds']})" if wave["look"] else f"the exploratory arms (seeds up to {wave['seeds']})"
        lines.append(f"next: {what}: {wave['stage_runs_to_run']} stage runs; cells to run: {cells}")
    return "\n".join(lines)
