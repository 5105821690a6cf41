"""Seeds in waves: which cells each look runs, and the primaries' verdicts, replayed from the finished cells.

The verdicts are a function of the store alone: every look is judged again from the cells finished so far, in
order, on the first n_k seeds only, so a killed grid resumes inside its wave and ``--status`` and the report say
what the running grid would. A look runs its seeds for the arms of every primary comparison still open in that
(regime, sweep point): the method and its reference (at look 1 all of them); arms with no open question stop.
Arms in no primary comparison (exploratory methods, most controls) run the first wave's seeds once the looks are
done: they are shown, never judged, and the answers should not wait for them. A cell whose generated set failed its data checks (grid.store's failure marks) has run, without a result:
its seed is missing from that arm's pairs, as a collapsed one is. A look whose other cells are not all finished is
the one in progress: nothing after it is judged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from grid import decide
from grid.format import canonical
from grid.primaries import Design, Primary
from grid.results import by_group, left_out
from grid.spec import Cell, GridSpec
from grid.stats import ZERO


@dataclass
class Replay:
    """Where the wave plan stands: the verdicts after the last complete look and what the next one needs."""

    judged: int  # looks judged (0 before the first wave finished)
    verdicts: list[decide.Verdict | None]  # per primary, after look ``judged``
    differences: list[list[float]]  # per primary: the paired differences its verdict was judged on
    needed: list[Cell] = field(default_factory=list)  # the next look's cells (empty once every look is judged)
    missing: list[Cell] = field(default_factory=list)  # … of those, the ones not finished yet
    exploratory: list[Cell] = field(default_factory=list)  # unfinished first-wave cells of arms in no primary

    @property
    def finished(self) -> bool:
        return not self.needed and not self.exploratory

    @property
    def to_run(self) -> list[Cell]:
        """What the grid runs next: the look in progress, else the exploratory arms."""
        return self.missing or self.exploratory


def open_arms(design: Design, verdicts: list[decide.Verdict | None]) -> set[tuple[str, str, str]]:
    """(regime, canonical point, arm) of every arm some still-open primary compares."""
    arms = set()
    for p, v in zip(design.primaries, verdicts):
        if v is None or not v.decided:
            arms |= {(*p.group, p.arm), (*p.group, p.reference)}
    return arms


def cells_for_look(spec: GridSpec, design: Design, cells: list[Cell], verdicts: list[decide.Verdict | None], look: int) -> list[Cell]:
    """The cells look ``look`` (1-based) needs: its seeds for the arms of every still-open primary."""
    now, active = set(spec.seeds[:design.plan[look - 1]]), open_arms(design, verdicts)
    return [c for c in cells if c.seed in now and (c.regime, canonical(dict(c.point)), c.arm.name) in active]


def exploratory_cells(spec: GridSpec, design: Design, cells: list[Cell]) -> list[Cell]:
    """The first wave's cells of arms no primary compares: shown with unadjusted numbers, never judged."""
    first, judged = set(spec.seeds[:design.plan[0]]), open_arms(design, [None] * len(design.primaries))
    return [c for c in cells if c.seed in first and (c.regime, canonical(dict(c.point)), c.arm.name) not in judged]


def differences(groups: dict[tuple, dict[str, dict[int, dict]]], primary: Primary, seeds: list[int]) -> list[float]:
    """Method − reference on ``seeds`` (in order), less those results.left_out drops (a collapsed model or baseline)."""
    arms = groups.get(primary.group, {})
    method, reference = arms.get(primary.arm, {}), arms.get(primary.reference, {})
    dropped = left_out(arms) if arms else {}
    out = []
    for s in seeds:
        if s in method and s in reference and s not in dropped.get(primary.arm, {}) and s not in dropped.get(primary.reference, {}):
            d = method[s]["metrics"][primary.metric] - reference[s]["metrics"][primary.metric]
            out.append(0.0 if abs(d) < ZERO else d)  # float noise of equal scores is a tie
    return out


def replay(spec: GridSpec, design: Design, cells: list[Cell], records: list[dict], failed: set[str] = frozenset()) -> Replay:
    """Judge every complete look in order; stop at the first look with unfinished cells (or at the end of the plan).
    ``failed``: ids of cells that ran without a result (their generated set failed its data checks)."""
    m = len(design.primaries)
    finished, groups = {r["cell"] for r in records} | set(failed), by_group(records)
    state = Replay(0, [None] * m, [[] for _ in range(m)])
    for look in range(1, design.looks + 1):
        need = cells_for_look(spec, design, cells, state.verdicts, look)
        missing = [c for c in need if c.id not in finished]
        if missing:
            state.needed, state.missing = need, missing
            break
        seeds = list(spec.seeds[:design.plan[look - 1]])
        diffs = [differences(groups, p, seeds) if not (v and v.decided) else old
                 for p, v, old in zip(design.primaries, state.verdicts, state.differences)]
        state.verdicts = judge(diffs, design, look, state.verdicts)
        state.differences, state.judged = diffs, look
        if all(v.decided for v in state.verdicts):
            break
    state.exploratory = [c for c in exploratory_cells(spec, design, cells) if c.id not in finished]
    return state


def judge(diffs: list[list[float]], design: Design, look: int, earlier: list[decide.Verdict | None]) -> list[decide.Verdict]:
    """decide.judge on the design's plan; a one-seed grid (a plan of one look at 1 seed) cannot test anything."""
    margins = [p.margin for p in design.primaries]
    if design.plan[-1] < 2:
        return [decide.Verdict("inconclusive", look, len(d), float(np.mean(d)) if d else math.nan, 0.0, mg, math.nan, math.nan, math.nan)
                for d, mg in zip(diffs, margins)]
    return decide.judge(diffs, margins, design.plan, look, earlier if look > 1 else None)
