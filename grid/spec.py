"""A grid file (``grids/*.yaml``) → the cells of a paired comparison, every bad key named before any work.

A grid is a base params file plus axes: ``methods`` (named overrides, usually of
``augment.method``, ``qgan.model`` and ``augment.strategy``), the ``controls`` every
grid carries by default, ``regimes`` (named overrides, usually of ``ingest``), ``seeds``
and optional ``sweep`` values of any params key. A cell is one point of the product;
its params are the base, then the grid-wide ``params``, the regime, the sweep point,
the arm (method or control) and the seed, in that order.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from grid.format import canonical, point_label
from qaug.params import ParamsError, load_params, read_mapping, section

# The controls (issue: every grid has them unless it says otherwise); "none" is the baseline itself.
CONTROLS: dict[str, dict[str, Any]] = {
    "none": {},
    "duplicates": {"augment.method": "duplicates"},
    "equal-steps": {},
    "conventional": {"augment.method": "conventional"},
    "prototype": {"augment.method": "prototype"},
}
REFERENCES = ("none", "duplicates")  # every method is compared with these
_KEYS = {"description", "base", "params", "methods", "controls", "regimes", "seeds", "sweep", "score_generated", "primary", "margins"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
MAX_WAVE = 1000  # seeds a wave plan may reach: every cell is planned up front, and a grid of more is not one qaug can run
# What a method is paired on: changing it in a method would give that method its own subsample, baseline, error
# analysis, judge (evaluate: the classifier whose test scores are compared, and its training settings) or device.
PAIRED_ON = ("seed", "ingest", "baseline", "analysis", "quantum", "evaluate", "device")


class GridError(ParamsError):
    """A grid file is malformed, or one of its cells has params that would fail (the message names which)."""


@dataclass(frozen=True)
class Arm:
    """A method or control: what a cell does after the shared baseline."""

    name: str
    kind: Literal["none", "equal-steps", "augment"]
    overrides: dict[str, Any] = field(default_factory=dict)
    control: bool = False


@dataclass(frozen=True)
class Cell:
    regime: str
    point: tuple[tuple[str, Any], ...]  # sweep values, in the grid file's order
    arm: Arm
    seed: int
    params: dict[str, Any]  # the full params.yaml of this cell

    @property
    def point_label(self) -> str:
        return point_label(dict(self.point))

    @property
    def label(self) -> str:
        return " · ".join(filter(None, [self.arm.name, self.regime, self.point_label, f"seed {self.seed}"]))

    @property
    def id(self) -> str:
        text = canonical([self.regime, [list(p) for p in self.point], self.arm.name, self.seed])
        slug = re.sub(r"[^A-Za-z0-9]+", "-", f"{self.regime}-{self.arm.name}-s{self.seed}").strip("-")
        return f"{slug}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


@dataclass(frozen=True)
class GridSpec:
    name: str
    path: Path
    description: str
    base: dict[str, Any]
    arms: tuple[Arm, ...]
    regimes: dict[str, dict[str, Any]]
    seeds: tuple[int, ...]
    sweep: dict[str, tuple[Any, ...]]
    score_generated: bool
    plan: tuple[int, ...] = ()  # seeds after each look: a wave plan, or one look at every seed
    questions: dict[str, Any] = field(default_factory=dict)  # the file's primary and margins keys (grid.primaries reads them)

    def cells(self) -> list[Cell]:
        points = list(itertools.product(*[[(k, v) for v in values] for k, values in self.sweep.items()]))
        cells = []
        for regime, overrides in self.regimes.items():
            for point in points:
                for arm in self.arms:
                    for seed in self.seeds:
                        raw = apply(self.base, overrides, dict(point), arm.overrides, {"seed": seed})
                        cells.append(Cell(regime, tuple(point), arm, seed, raw))
        return cells


def set_key(raw: dict[str, Any], key: str, value: Any) -> None:
    """Set ``section.key`` (or a top-level key) in ``raw``; sections are created when missing."""
    *sections, last = key.split(".")
    node = raw
    for name in sections:
        child = node.get(name)
        if child is None:
            child = node[name] = {}
        if not isinstance(child, dict):
            raise GridError(f"{key}: {name} is not a section")
        node = child
    node[last] = copy.deepcopy(value)


def flatten(overrides: dict[str, Any]) -> dict[str, Any]:
    """``{augment: {method: gan1}}`` and ``{augment.method: gan1}`` alike → dotted keys (one level: values stay whole)."""
    flat: dict[str, Any] = {}
    for key, value in (overrides or {}).items():
        if "." not in str(key) and isinstance(value, dict) and str(key) != "seed":
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat[str(key)] = value
    return flat


def apply(base: dict[str, Any], *layers: dict[str, Any]) -> dict[str, Any]:
    raw = copy.deepcopy(base)
    for layer in layers:
        for key, value in flatten(layer).items():
            set_key(raw, key, value)
    return raw


def load_grid(path: str | Path, root: Path = Path(".")) -> GridSpec:
    """Read and validate a grid file: every cell's params are checked as ``qaug run`` would check them."""
    path = Path(path)
    doc = read_mapping(path, "grid files live in grids/, e.g. grids/quick.yaml", GridError)
    where = str(path)
    unknown = sorted(set(doc) - _KEYS)
    if unknown:
        raise GridError(f"{where}: unknown key(s) {', '.join(unknown)} (keys: {', '.join(sorted(_KEYS))})")
    base_path = root / doc.get("base", "params.yaml")
    try:
        base = apply(load_params(base_path), _mapping(doc.get("params"), f"{where}: params"))
    except ParamsError as err:
        raise GridError(f"{where}: base {base_path}: {err}") from None
    seeds, plan = _seeds(doc.get("seeds", [0]), where)
    spec = GridSpec(
        name=path.stem, path=path, description=str(doc.get("description", "")).strip(), base=base,
        arms=_arms(doc, where), regimes=_regimes(doc.get("regimes"), where), seeds=seeds,
        sweep=_sweep(doc.get("sweep"), where), score_generated=_bool(doc.get("score_generated", True), f"{where}: score_generated"),
        plan=plan, questions={k: doc[k] for k in ("primary", "margins") if k in doc},
    )
    _check_cells(spec, where)
    return spec


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise GridError(f"{where} must be a mapping, got {value!r}")
    return value


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise GridError(f"{where} must be true or false, got {value!r}")
    return value


def _name(name: Any, where: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise GridError(f"{where}: {name!r} is not a usable name (letters, digits, '_', '.', '+', '-')")
    return name


def _arms(doc: dict, where: str) -> tuple[Arm, ...]:
    controls = doc.get("controls", list(CONTROLS))
    if not isinstance(controls, list) or not all(isinstance(c, str) for c in controls):
        raise GridError(f"{where}: controls must be a list of {', '.join(CONTROLS)}")
    bad = [c for c in controls if c not in CONTROLS]
    if bad:
        raise GridError(f"{where}: controls {bad} are not controls (known: {', '.join(CONTROLS)})")
    if "none" not in controls:
        raise GridError(f"{where}: controls must include 'none' (the baseline every method is compared with)")
    methods = doc.get("methods") or {}
    if isinstance(methods, list):  # [qgan, gan1] → augment.method each
        methods = {_name(m, f"{where}: methods"): {"augment.method": m} for m in methods}
    if not isinstance(methods, dict) or not methods:
        raise GridError(f"{where}: methods must be a non-empty list of augment.method values or a mapping name → params overrides")
    arms = [Arm(c, "none" if c == "none" else "equal-steps" if c == "equal-steps" else "augment", CONTROLS[c], control=True) for c in controls]
    for name, overrides in methods.items():
        _name(name, f"{where}: methods")
        if name in CONTROLS:
            raise GridError(f"{where}: methods.{name} has a control's name; controls are added by the 'controls' key")
        overrides = flatten(_mapping(overrides, f"{where}: methods.{name}"))
        paired_on = [k for k in overrides if k.split(".")[0] in PAIRED_ON]
        if paired_on:
            raise GridError(f"{where}: methods.{name} sets {', '.join(paired_on)}: a method shares the seed, subsample, baseline, "
                            "error analysis, backend, evaluating classifier and device it is compared on; put such a setting in a regime or a sweep")
        arms.append(Arm(name, "augment", overrides))
    return tuple(arms)


def _regimes(value: Any, where: str) -> dict[str, dict[str, Any]]:
    regimes = _mapping(value, f"{where}: regimes") or {"default": {}}
    for name, overrides in regimes.items():
        _name(name, f"{where}: regimes")
        if "seed" in flatten(_mapping(overrides, f"{where}: regimes.{name}")):
            raise GridError(f"{where}: regimes.{name} sets seed; seeds are the grid's 'seeds' axis")
    return {name: flatten(o or {}) for name, o in regimes.items()}


def _seeds(value: Any, where: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The seeds and the looks' seed counts: a wave plan ``{waves: [5, 10, 20]}`` (seeds 0..19, a look after the
    first 5, 10 and 20), or one look at a list of seeds, a count N (seeds 0..N-1) or an inclusive range "A..B"."""
    if isinstance(value, dict):
        plan = value.get("waves")
        if set(value) != {"waves"} or (not isinstance(plan, list) or not plan or any(b <= a for a, b in zip(plan, plan[1:]))
                                       or not all(isinstance(n, int) and not isinstance(n, bool) and 2 <= n <= MAX_WAVE for n in plan)):
            raise GridError(f"{where}: seeds as a wave plan is {{waves: [n1, n2, ...]}}, increasing seed counts from 2 to {MAX_WAVE} "
                            f"(e.g. {{waves: [5, 10, 20, 40]}}), got {value!r}")
        return tuple(range(plan[-1])), tuple(plan)
    given = value
    if isinstance(value, str) and re.fullmatch(r"\s*\d+\s*\.\.\s*\d+\s*", value):
        lo, hi = (int(v) for v in value.split(".."))
        value = list(range(lo, hi + 1))
    elif isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        value = list(range(value))
    if not isinstance(value, list) or not value or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in value):
        raise GridError(f"{where}: seeds must be a count N of at least 1 (seeds 0..N-1), a non-empty list of non-negative "
                        f"integers or an inclusive range 'A..B' with A ≤ B, got {given!r}")
    if len(set(value)) != len(value):
        raise GridError(f"{where}: seeds has duplicates: {value}")
    return tuple(value), (len(value),)


def _sweep(value: Any, where: str) -> dict[str, tuple[Any, ...]]:
    sweep = {}
    for key, values in flatten(_mapping(value, f"{where}: sweep")).items():
        if key == "seed":
            raise GridError(f"{where}: sweep.seed: seeds are the grid's 'seeds' axis")
        if not isinstance(values, list) or not values:
            raise GridError(f"{where}: sweep.{key} must be a non-empty list of values, got {values!r}")
        sweep[key] = tuple(values)
    return sweep


def _check_cells(spec: GridSpec, where: str) -> None:
    """Every axis value alone on the base, then every cell; every problem is named once, with the axes that have it."""
    from tasks.quantum import QuantumParams
    from tasks.stages import check_params

    found: dict[str, list[str]] = {}  # problem → the axes that have it (one line each: a base problem once, not per axis)

    def check(raw: dict, what: str) -> None:
        try:
            check_params(raw)
            backend = section(QuantumParams, raw, "quantum").backend
            if backend != "exact":  # the baseline is scored at training time, exactly: a shot-noise delta would not be paired
                raise ParamsError(f"quantum.backend is {backend!r}; grids compare methods on the exact executor "
                                  "(compare backends with `qaug show --compare`)")
        except ParamsError as err:
            found.setdefault(str(err).removeprefix("params.yaml: "), []).append(what)

    check(spec.base, "base params")
    for name, overrides in spec.regimes.items():
        check(apply(spec.base, overrides), f"regimes.{name}")
    for key, values in spec.sweep.items():
        for v in values:
            check(apply(spec.base, {key: v}), f"sweep.{key}={v!r}")
    for arm in spec.arms:
        check(apply(spec.base, arm.overrides), f"methods.{arm.name}" if not arm.control else f"control {arm.name}")
    if not found:  # combinations, once every axis is fine on its own
        for cell in spec.cells():
            check(cell.params, f"cell {cell.label}")
            if sum(map(len, found.values())) >= 10:  # enough to act on; a bad combination is usually everywhere
                break
    errors = [f"{_axes_text(whats)}: {problem}" for problem, whats in found.items()]
    if errors:
        raise GridError(f"{where}: " + ("\n  ".join(["", *errors]) if len(errors) > 1 else errors[0]))


def _axes_text(whats: list[str]) -> str:
    """The axes sharing one problem: the base alone when it has it (every axis inherits it), else the first few."""
    if "base params" in whats:
        return "base params"
    return ", ".join(whats[:3]) + (f" and {len(whats) - 3} more" if len(whats) > 3 else "")
