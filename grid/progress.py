"""Grid progress where users look: a terminal bar (cells done / total, ETA) and a Prefect progress artifact."""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

from prefect.artifacts import create_progress_artifact, update_progress_artifact
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from grid.format import artifact_key
from grid.plan import StageRun
from grid.store import is_done


class GridProgress:
    """Counts stage runs (the bar) and cells (a cell is done when all its stage runs are)."""

    def __init__(self, name: str, runs: dict[str, StageRun], per_cell: dict[str, dict[str, str]], store: Path, terminal: bool = True,
                 wave: str = "") -> None:
        self.name, self.runs, self.wave = name, runs, wave
        self.missing = {cell: {k for k in keys.values() if not is_done(store, runs[k])} for cell, keys in per_cell.items()}
        self.users = defaultdict(set)
        for cell, keys in self.missing.items():
            for k in keys:
                self.users[k].add(cell)
        self.total_cells, self.todo = len(per_cell), len({k for keys in self.missing.values() for k in keys})
        self.done, self.failed, self.last_update = 0, 0, 0.0
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("stage runs"),
                            TimeElapsedColumn(), TimeRemainingColumn(), disable=not terminal)
        self.task = self.bar.add_task(self._text(), total=self.todo)
        self.artifact = None

    def _cells_done(self) -> int:
        return sum(1 for keys in self.missing.values() if not keys)

    def _text(self) -> str:
        failed = f", {self.failed} failed or blocked" if self.failed else ""
        wave = f" {self.wave}" if self.wave else ""
        return f"grid {self.name}{wave}: {self._cells_done()}/{self.total_cells} cells{failed}"

    def __enter__(self) -> "GridProgress":
        self.bar.__enter__()
        self.artifact = create_progress_artifact(progress=self._percent(), key=artifact_key("grid", self.name, "progress"),
                                                 description=f"grid {self.name}{' ' + self.wave if self.wave else ''}: stage runs finished (of {self.todo} to run)")
        return self

    def _percent(self) -> float:
        return 100.0 if not self.todo else round(100.0 * self.done / self.todo, 1)

    def advance(self, run: StageRun, ok: bool) -> None:
        self.done += 1
        if ok:
            for cell in self.users[run.key]:
                self.missing[cell].discard(run.key)
        else:
            self.failed += 1
        self.bar.update(self.task, advance=1, description=self._text())
        now = time.monotonic()
        if self.artifact is not None and (now - self.last_update > 2 or self.done == self.todo):
            update_progress_artifact(self.artifact, self._percent())
            self.last_update = now

    def __exit__(self, *exc) -> None:
        if self.artifact is not None:
            update_progress_artifact(self.artifact, self._percent())
        self.bar.__exit__(*exc)
