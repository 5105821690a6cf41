"""A grid's confirmatory questions: its primary comparisons, their equivalence margins and the seed waves.

Declared in the grid file before any data (a verdict is only as honest as its question was fixed first):

.. code-block:: yaml

    seeds: {waves: [5, 10, 20, 40]}     # looks after 5, 10, 20 and 40 seeds (seeds 0..39 at most); or a count / list: one look
    margins: {accuracy: 2, rare_recall: 5}   # ±δ in percentage points: a difference inside it is one we don't care about
    primary:                            # each entry: method, reference; metric, regime and point default to all
      - {method: qgan, reference: none, metric: rare_recall, regime: imbalanced}
      - {method: qgan, reference: duplicates}

Without ``primary:`` every non-control method is compared with ``none`` and with ``duplicates`` on each regime's
headline metric (the rarest class's recall where the regime's training split is imbalanced, else accuracy), at every
sweep point. Every other comparison of the grid is exploratory: shown with unadjusted intervals, never a verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from grid.format import canonical, point_label
from grid.spec import REFERENCES, GridError, GridSpec, apply
from qaug.params import lookup

# Default margins, in percentage points. Accuracy and the macro scores: 2 points, the smallest gain the augmentation
# papers qaug reproduces report as one (He et al. 2025: +2 to +5 points) and 6 test images of the default 300.
# The rare class's recall: 5 points, since it is measured on a third of the test set (1 image ≈ 1 point) and moves
# ~10 points between seeds. A grid that cares about smaller effects says so in `margins:`.
DEFAULT_MARGINS = {"accuracy": 2.0, "macro_f1": 2.0, "macro_precision": 2.0, "macro_recall": 2.0, "rare_recall": 5.0}
METRICS = tuple(DEFAULT_MARGINS)


@dataclass(frozen=True)
class Primary:
    arm: str  # the method
    reference: str
    metric: str
    regime: str
    point: tuple[tuple[str, Any], ...]  # the sweep point, as Cell.point
    margin: float  # δ in the metric's units (a share: 0.02 is 2 points)

    @property
    def group(self) -> tuple[str, str]:
        """(regime, canonical point): how records are grouped."""
        return self.regime, canonical(dict(self.point))

    @property
    def label(self) -> str:
        where = self.regime + (f" · {point_label(dict(self.point))}" if self.point else "")
        return f"{self.arm} vs {self.reference} · {self.metric} · {where}"


@dataclass(frozen=True)
class Design:
    """What the grid file fixes before any data: the wave plan (seeds after each look) and the primaries."""

    plan: tuple[int, ...]
    primaries: tuple[Primary, ...]
    margins: dict[str, float]  # percentage points, per metric (defaults merged)

    @property
    def looks(self) -> int:
        return len(self.plan)


def headline_of(params: dict) -> str:
    """The headline metric fixed from params (before any data): rare_recall when the training split asks for unequal
    class counts, else accuracy (results.cell_metrics measures rare_recall exactly then)."""
    counts = lookup(params, "ingest.train_per_class")
    return "rare_recall" if isinstance(counts, dict) and len(set(counts.values())) > 1 else "accuracy"


def design(spec: GridSpec) -> Design:
    """The grid file's ``primary`` and ``margins`` keys, validated against its arms, regimes and sweep."""
    where = str(spec.path)
    margins = _margins(spec.questions.get("margins"), where)
    entries = spec.questions.get("primary")
    if entries is None:
        refs = [r for r in REFERENCES if r in {a.name for a in spec.arms}]
        entries = [{"method": a.name, "reference": r} for a in spec.arms if not a.control for r in refs]
        where_entry = f"{where}: the default primaries"
    else:
        where_entry = f"{where}: primary"
    if not isinstance(entries, list) or not entries:
        raise GridError(f"{where}: primary must be a non-empty list of {{method, reference, metric, regime, point}} entries")
    primaries: dict[tuple, Primary] = {}
    for i, entry in enumerate(entries):
        for p in _expand(entry, spec, margins, f"{where_entry}[{i}]"):
            primaries.setdefault((p.arm, p.reference, p.metric, p.group), p)
    return Design(spec.plan, tuple(primaries.values()), margins)


def _margins(value: Any, where: str) -> dict[str, float]:
    if value is None:
        return dict(DEFAULT_MARGINS)
    if not isinstance(value, dict):
        raise GridError(f"{where}: margins must be a mapping metric → percentage points, e.g. {{accuracy: 2, rare_recall: 5}}")
    out = dict(DEFAULT_MARGINS)
    for metric, pts in value.items():
        if metric not in DEFAULT_MARGINS:
            raise GridError(f"{where}: margins.{metric}: not a metric a primary can use ({', '.join(METRICS)})")
        if isinstance(pts, bool) or not isinstance(pts, (int, float)) or not math.isfinite(pts) or not 0 < pts < 100:
            raise GridError(f"{where}: margins.{metric} must be a number of percentage points between 0 and 100, got {pts!r}")
        out[metric] = float(pts)
    return out


def _expand(entry: Any, spec: GridSpec, margins: dict[str, float], where: str) -> list[Primary]:
    """One entry → its primaries (a missing regime, point or metric means every regime, every sweep point, the headline)."""
    if not isinstance(entry, dict):
        raise GridError(f"{where} must be a mapping with method and reference, got {entry!r}")
    unknown = sorted(set(entry) - {"method", "reference", "metric", "regime", "point"})
    if unknown:
        raise GridError(f"{where}: unknown key(s) {', '.join(unknown)} (keys: method, reference, metric, regime, point)")
    arms = [a.name for a in spec.arms]
    method, reference = entry.get("method"), entry.get("reference")
    for key, value in (("method", method), ("reference", reference)):
        if value not in arms:
            raise GridError(f"{where}.{key}: {value!r} is not an arm of this grid (arms: {', '.join(arms)})")
    if method == reference or method == "none":
        raise GridError(f"{where}: method {method!r} against reference {reference!r}: a method is compared with another arm, "
                        "and none is the reference everything else is compared with")
    regimes = [entry["regime"]] if "regime" in entry else list(spec.regimes)
    for r in regimes:
        if not isinstance(r, str) or r not in spec.regimes:
            raise GridError(f"{where}.regime: {r!r} is not a regime of this grid (regimes: {', '.join(spec.regimes)})")
    points = _points(entry.get("point"), spec, where)
    metric = entry.get("metric", "headline")
    if not isinstance(metric, str) or (metric != "headline" and metric not in METRICS):
        raise GridError(f"{where}.metric: {metric!r} is not a metric a primary can use (headline, {', '.join(METRICS)})")
    out = []
    for regime in regimes:
        params = apply(spec.base, spec.regimes[regime])
        chosen = headline_of(params) if metric == "headline" else metric
        if chosen == "rare_recall" and headline_of(params) != "rare_recall":
            raise GridError(f"{where}.metric: rare_recall in regime {regime!r}, whose training split is balanced "
                            "(no rare class); use accuracy or a macro score there")
        out += [Primary(method, reference, chosen, regime, point, margins[chosen] / 100) for point in points]
    return out


def _points(value: Any, spec: GridSpec, where: str) -> list[tuple[tuple[str, Any], ...]]:
    """Every sweep point, or the one the entry names (all sweep keys given, each one of its values)."""
    import itertools

    every = [tuple(p) for p in itertools.product(*[[(k, v) for v in vs] for k, vs in spec.sweep.items()])]
    if value is None:
        return every
    if not isinstance(value, dict) or set(value) != set(spec.sweep):
        raise GridError(f"{where}.point must give a value for each sweep key ({', '.join(spec.sweep) or 'the grid has no sweep'}), got {value!r}")
    point = tuple((k, value[k]) for k in spec.sweep)
    if point not in every:
        raise GridError(f"{where}.point: {point_label(dict(point))} is not a point of the sweep "
                        f"({'; '.join(point_label(dict(p)) for p in every)})")
    return [point]
