"""Would the tests notice a wrong number? Mutation testing of the grid's statistics and bookkeeping.

Each mutant is one small change to one target module (an operator swapped, a constant moved, a condition
negated or dropped, a statement removed, a return value replaced...), made by rewriting the module's syntax
tree in a scratch copy of the repo; the module's fast tests then run against it. A mutant is killed when a
test fails, survives when every test passes. The score is over the mutants that could change a printed
number, a pairing or a verdict:

* never generated: string literals (names, messages, formats) and anything in a type hint, an import or a docstring;
* generated but classed "no observable effect" (counted apart, listed per reason): changes inside the message of
  a ``raise``, inside a logging or ``warnings`` call, and the short list ``EQUIVALENT`` below, each with its reason.

Fast tests only (``TARGETS``): the end-to-end grid runs of tests/test_grid.py take minutes a mutant. Mutants run
one at a time, each in a forked child of a process that has imported numpy, scipy, torch... once (a mutant costs
a second or two, not the six of a fresh interpreter), with a per-mutant timeout (a timeout counts as killed). A
mutant on a line no test runs (traced once per module) survives without being run. Equivalent mutants are
matched by their line's text, so the list survives edits elsewhere in a module; a module edit can leave an
entry unmatched (it then simply stops applying).

Run: python bench/mutation.py [--only grid/stats.py ...] [--lines 40-80] [--json outputs/mutation-survivors.json]
"""

from __future__ import annotations

import argparse
import ast
import copy
import gc
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT_PACKAGES = ("grid", "qaug", "tasks", "qmodels", "tests", "flows", "bench", "cli")

# The fast tests of tests/test_grid.py (grid files and plans; the others run grids end to end).
GRID_FILES = [f"tests/test_grid.py::{t}" for t in (
    "test_a_bad_grid_file_is_refused_naming_the_key", "test_every_bad_axis_value_is_named_at_once",
    "test_a_missing_grid_file_or_base_is_named", "test_seeds_as_a_count_or_a_range_and_overrides_nested_or_dotted",
    "test_shipped_grids_validate_and_pair_their_cells", "test_methods_of_a_seed_share_subsample_baseline_and_error_analysis",
    "test_inception_settings_retrain_generators_only_when_they_score_over_training")]
STATS = ["tests/test_grid_stats.py", "tests/test_grid_results.py", "tests/test_grid_numbers.py"]
# The fast tests of tests/test_source.py (digests and plans; the others run a grid and DVC) and tests/test_judge.py.
SOURCE = [f"tests/test_source.py::{t}" for t in (
    "test_a_relabelled_folder_changes_the_ingest_key_and_every_key_downstream_and_only_those",
    "test_regimes_with_other_data_and_the_same_seed_get_their_own_ingest_runs",
    "test_a_weights_file_replaced_at_the_same_path_reruns_the_stages_that_load_it_and_only_those")] + [
    "tests/test_grid.py::test_too_few_images_for_a_regime_names_the_grid_file_regime_and_keys"]
JUDGE = ["tests/test_judge.py::test_the_grid_report_shows_the_judge_and_the_seeds_it_could_not_judge"]
# The decision rule (numbers only, with its simulations) and the wave plan: primaries, looks, pooled estimates
# (tests/test_grid_outputs.py runs grids: minutes a mutant, and its Prefect server does not start in a forked child).
DECISIONS = ["tests/test_decide.py", "tests/test_grid_waves.py"]
MIXING = ["tests/test_hybridq_protocol.py::test_mixing_counts_follow_alpha_and_the_real_class_distribution",
          "tests/test_hybridq_protocol.py::test_mix_draws_each_class_without_replacement_and_names_a_shortfall"]

# target module → the fast tests that cover it (files missing from a checkout are left out)
TARGETS: dict[str, list[str]] = {
    "grid/stats.py": STATS,
    "grid/results.py": ["tests/test_grid_results.py", "tests/test_grid_numbers.py", "tests/test_grid_outputs.py", *JUDGE],
    "grid/format.py": ["tests/test_grid_numbers.py", "tests/test_grid_results.py", "tests/test_grid_outputs.py", "tests/test_grid_keys.py",
                       "tests/test_grid_stats.py"],
    "grid/outputs.py": ["tests/test_grid_outputs.py", "tests/test_grid.py::test_too_few_images_for_a_regime_names_the_grid_file_regime_and_keys"],
    "grid/plan.py": ["tests/test_grid_keys.py", "tests/test_grid_outputs.py", *GRID_FILES, *SOURCE],
    "grid/spec.py": ["tests/test_grid_spec.py", *GRID_FILES, "tests/test_grid_keys.py",
                     "tests/test_grid.py::test_a_problem_is_named_once_with_every_axis_that_has_it"],
    "grid/equal_steps.py": ["tests/test_grid_spec.py"],
    "qaug/generation_metrics.py": ["tests/test_generation_metrics.py", "tests/test_generation_scores.py"],
    "tasks/merge.py": [*MIXING, "tests/test_merge.py"],
    **dict.fromkeys(("grid/decide.py", "grid/decisions.py", "grid/primaries.py", "grid/waves.py", "grid/pooled.py"), DECISIONS),
}

# Mutants that cannot change a printed number, pairing or verdict, found by reading each survivor:
# (module, text on the mutated line, mutation or "*" for any) → why. Keep this short and the reasons checkable.
_TOLERANCE = "a rounding tolerance moved by a factor of 2: only spreads within 2x of 1e-12 of the mean (float noise) read differently"
_TIE = "differs only when two floats are exactly equal (a value landing exactly on its threshold), which no data gives"
_MASKED = "a stand-in where the t test is undefined (under 2 seeds or no spread): its p is replaced by inf right after"
_SPREAD = "usable = (n >= 2) & (sd > ZERO * np.maximum(1.0, np.abs(mean)))"
_HAS_SPREAD = "return len(d) >= 2 and bool(d.std(ddof=1) > ZERO * max(1.0, abs(d.mean())))"
_SCALE = ("the tolerance divided instead of multiplied by max(1, |mean|): the same 1e-12 for |mean| ≤ 1 (differences of "
          "fractions are), smaller above; float noise (~1e-17) fails either, a real spread passes either")
_DECIDE_EQUIVALENT: dict[tuple, str] = {
    **{("grid/decide.py", text, m): why for text in (_SPREAD, _HAS_SPREAD) for m, why in (
        ("1.0 → 2.0", _TOLERANCE), ("* → /", _SCALE), ("> → >=", _TIE))},
    ("grid/decide.py", _SPREAD, "2 → 1"): "one seed has sd 0.0 (judge) or NaN (numpy), which fails the spread test as well",
    ("grid/decide.py", _HAS_SPREAD, "2 → 1"): "one seed's sd (ddof 1) is NaN, which fails the spread test as well",
    ("grid/decide.py", _HAS_SPREAD, "operand 1 of and dropped"): "as above: 0 or 1 seeds give a NaN sd, which fails the spread test",
    ("grid/decide.py", _HAS_SPREAD, "1 → 0"): "ddof 0 scales the sd by √((n−1)/n) ≥ 0.7 in the spread test only: " + _TOLERANCE,
    ("grid/decide.py", "df = np.where(usable, n - 1, 1.0)", "1.0 → 0.0"): _MASKED,
    ("grid/decide.py", "df = np.where(usable, n - 1, 1.0)", "1.0 → 2.0"): _MASKED,
    ("grid/decide.py", "se = np.where(usable, sd, 1.0) / np.sqrt(np.maximum(n, 1.0))", "1.0 → 0.0"): _MASKED,
    ("grid/decide.py", "se = np.where(usable, sd, 1.0) / np.sqrt(np.maximum(n, 1.0))", "1.0 → 2.0"):
        _MASKED + " (n ≥ 2 where it is used: max(n, 2) = n)",
    ("grid/decide.py", "step = level / np.maximum(h[:, None] - np.arange(p.shape[1]), 1)", "1 → 0"):
        "sorted positions ≥ h (already-rejected hypotheses, p = inf) are reached only when every hypothesis not yet "
        "rejected passes, i.e. none is stopped (a stopped one keeps its place in h with p = inf and fails first); "
        "the difference family then has no positions ≥ h, and the equivalence family only re-rejects what is already equivalent",
    ("grid/decide.py", "passed = np.cumprod(np.take_along_axis(p, order, axis=1) <= step, axis=1)", "<= → <"): _TIE,
    ("grid/decide.py", "return reject, threshold, level / np.maximum(h - reject.sum(axis=1), 1)", "1 → 2"):
        "the stop level differs only with under 2 hypotheses left; the difference family always keeps 2 (no comparison "
        "rejects both directions), so its level ≤ level/2 is the smaller of the two families' either way, the one shown",
    **{("grid/decide.py", 'state = np.array([[{"better": 1, "worse": -1}.get(v.verdict, 0)', m):
       "only zero / nonzero of an earlier direction is read: a decided comparison returns its earlier verdict unchanged, "
       "and _look tests the state with == 0 and != 0 only" for m in ("1 → 2", "minus sign removed")},
    ("grid/decide.py", 'word, level = ("better" if direction[0, i] > 0 else "worse")', "> → >="): "this branch has direction ≠ 0",
    ("grid/decide.py", "stats.ttest_1samp(d, 0.0).confidence_interval", "0.0 → 1.0"):
        "scipy's interval is the mean's, whatever the null value (checked: identical for 0 and 1)",
    ("grid/decide.py", "lo, hi = 2, 2", "2 → 3", 0): "lo is read only after the doubling loop sets it, or when 2 seeds already "
                                                     "suffice (then the bisection is skipped and hi = 2 returned)",
    ("grid/decide.py", "lo, hi = 2, 2", "2 → 1", 0): "as above",
    ("grid/decide.py", "lo, hi = 2, 2", "2 → 1", 1): "1 seed has no t test (df 0: NaN power), so the search moves on to 2 as before",
    ("grid/decide.py", "lo, hi = 2, 2", "2 → 3", 1): "the search starts at 3 with 2 still its lower bound: the bisection reaches 2",
    ("grid/decide.py", "abs(effect) * math.sqrt(n)) >= target", ">= → >"): _TIE,
    ("grid/decide.py", "return 1 - fail >= target", ">= → >"): _TIE,
    ("grid/pooled.py", 'combine_effects(effect, variance, method_re="chi2", use_t=True)', "True → False"):
        "only conf_int's default; the interval is read with conf_int(use_t=True)",
    ("grid/pooled.py", "truncated = res.tau2 < 0", "< → <="): "at τ² = 0 the random-effects fit is the fixed-effect one (same weights)",
    ("grid/decide.py", "def p_better(differences: Sequence[float], seed: int = 0", "0 → 1"): "the bootstrap's default seed: any fixed one repeats",
    ("grid/decide.py", "n_resamples=9999", "*"): "one bootstrap resample more or less: the same estimator, its Monte-Carlo noise "
                                                 "changed by 0.01 %",
    ("grid/decide.py", _HAS_SPREAD, "1 → 2"): "ddof 2 scales the sd by √((n−1)/(n−2)) in the spread test only (2 seeds: ∞ for any "
                                              "spread, NaN for none, as before): " + _TOLERANCE,
    **{("grid/decide.py", "lo, hi = hi + 1, min(2 * hi, MAX_SEEDS)", m): "a lower bracket below the smallest count, or an upper one "
       "past it (power grows with the count): the bisection finds the same count" for m in ("+ → -", "1 → 0", "min() → max()", "2 → 3")},
}
EQUIVALENT: dict[tuple, str] = {
    ("grid/stats.py", "ZERO = 1e-12", "1e-12 → 2e-12"): _TOLERANCE,
    ("grid/stats.py", "ZERO = 1e-12", "1e-12 → 5e-13"): _TOLERANCE,
    ("grid/stats.py", "if sd <= ZERO * max(1.0, abs(mean))", "1.0 → 2.0"): _TOLERANCE,
    ("grid/stats.py", "if sd <= ZERO * max(1.0, abs(mean))", "1.0 → 0.0"):
        "the tolerance relative to |mean| instead of at least 1e-12: spreads of float noise (~1e-17) pass either way",
    ("grid/stats.py", "if sd <= ZERO * max(1.0, abs(mean))", "<= → <"): _TIE,
    ("grid/stats.py", "d[np.abs(d) < ZERO] = 0.0", "< → <="): _TIE,
    ("grid/stats.py", "if abs(mean) < ZERO:", "< → <="): _TIE,
    ("grid/format.py", "round(100 * float(x), 9)", "9 → 10"): "float noise (~1e-15 of a point) is removed at 8, 9 or 10 decimals alike; "
                                                              "a value's 0.05-point boundary survives all three",
    ("grid/format.py", "round(100 * float(x), 9)", "9 → 8"): "as above",
    ("grid/plan.py", 'memo = (name, canonical({k: v for k, v in ident["params"].items() if k != "seed"}))', "filter condition dropped"):
        "the seed in the memo's key only makes the digest computed once per seed instead of once: the same value, more time",
    ("grid/stats.py", "if power(effect, mid) >= target:", ">= → >"): _TIE,
    ("grid/stats.py", "while power(effect, hi) < target:", "< → <="): _TIE,
    ("grid/stats.py", "if not np.any(d != 0):", "if statement removed"):
        "scipy.stats.wilcoxon (1.17) itself returns p = 1 when every difference is 0",
    ("grid/stats.py", "if not np.any(d != 0):", "0 → 1"): "as above: the guard then always passes to scipy, which returns p = 1 for all-zero differences",
    **{("grid/stats.py", "BCa degenerates on tiny or tied samples", m): "scipy 1.17's BCa gave finite bounds on every sample tried (all "
       "2-4 seed samples of 0, 0.01, 0.03): the percentile fallback is not reached, so not taking it changes nothing"
       for m in ("if statement removed", "and → or", "operand 1 of and dropped", "operand 2 of and dropped")},
    ("grid/stats.py", 'method="percentile"', "*"): "the percentile fallback above, not reached",
    ("grid/stats.py", 'return "better" if mean > 0 else "worse"', "> → >="): "a mean of exactly 0 has p = 1, never below 0.05",
    ("grid/stats.py", "lo, hi = 2, 2", "2 → 3", 0): "lo is read only after the doubling loop sets it, or when 2 seeds already "
                                                   "have the power (then the search returns hi = 2 whatever lo is)",
    ("grid/stats.py", "lo, hi = 2, 2", "2 → 1", 0): "as above (and 1 pair has no t test: its power is NaN, so the search moves past it)",
    ("grid/stats.py", "lo, hi = hi, min(hi * 2, MAX_SEEDS)", "2 → 3"): "a bracket grown 3x instead of 2x: the bisection finds the same "
                                                                       "smallest count (power grows with the count)",
    ("grid/plan.py", 'ident = {"stage": name', "entry 'stage' dropped"): "the store keeps runs under <stage>/<key>, and no two stages "
                                                                          "share code files, params and inputs: the name never separates two runs",
    ("grid/spec.py", "return {}", "returns None"): "_mapping's callers read None as empty too (flatten's `or {}`, the regimes' default)",
    ("grid/spec.py", 'methods = doc.get("methods") or {}', "operand 2 of or dropped"): "no methods: None and {} get the same error",
    ("grid/spec.py", "return {name: flatten(o or {})", "operand 2 of or dropped"): "flatten reads None as no overrides itself",
    ("grid/spec.py", "elif isinstance(value, int) and not isinstance(value, bool) and value >= 1:", "operand 3 of and dropped"):
        "a count below 1 becomes an empty list, refused by the next check with the same error (only its 'got ...' differs)",
    ("grid/spec.py", "elif isinstance(value, int) and not isinstance(value, bool) and value >= 1:", "1 → 0"): "as above",
    ("qaug/generation_metrics.py", "a.reshape(len(a), -1)", "1 → 2"): "numpy reads any negative size (-2 as -1) as 'the rest'",
    ("qaug/generation_metrics.py", "np.tril(dist < near, k=-1)", "< → <="): _TIE,
    ("grid/plan.py", "hexdigest()[:20]", "20 → 21"): "the run key's length: a folder name, 80 bits either way",
    ("grid/plan.py", "hexdigest()[:20]", "20 → 19"): "the run key's length: a folder name, 76 bits instead of 80",
    **_DECIDE_EQUIVALENT,
}


@dataclass
class Mutant:
    module: str
    line: int
    start: int  # byte offsets of the replaced text in the module's source
    end: int
    replacement: str
    mutation: str  # what changed, readable
    effect: str = ""  # "" or why it cannot be observed (a "no observable effect" class)
    outcome: str = ""  # killed | survived | timeout | no effect

    def source_line(self, lines: list[str]) -> str:
        return lines[self.line - 1].strip()


# --- generating mutants -------------------------------------------------------------------------------------

BINOPS = {ast.Add: [ast.Sub], ast.Sub: [ast.Add], ast.Mult: [ast.Div], ast.Div: [ast.Mult], ast.FloorDiv: [ast.Div],
          ast.Mod: [ast.FloorDiv], ast.Pow: [ast.Mult], ast.MatMult: [ast.Mult], ast.BitOr: [ast.BitAnd], ast.BitAnd: [ast.BitOr]}
COMPARES = {ast.Lt: [ast.LtE, ast.Gt], ast.LtE: [ast.Lt, ast.Gt], ast.Gt: [ast.GtE, ast.Lt], ast.GtE: [ast.Gt, ast.Lt],
            ast.Eq: [ast.NotEq], ast.NotEq: [ast.Eq], ast.In: [ast.NotIn], ast.NotIn: [ast.In], ast.Is: [ast.IsNot], ast.IsNot: [ast.Is]}
CALLS = {"min": "max", "max": "min", "any": "all", "all": "any", "ceil": "floor", "floor": "ceil"}
SYMBOL = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%", ast.Pow: "**", ast.MatMult: "@",
          ast.BitOr: "|", ast.BitAnd: "&", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
          ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not", ast.And: "and", ast.Or: "or"}
QUIET_CALLS = ("log.", "logging.", "warnings.")  # their arguments and the calls themselves change no number


def _numbers(value: int | float) -> list[int | float]:
    if isinstance(value, int):
        return [1] if value == 0 else [0, 2] if value == 1 else [value + 1, value - 1]
    return [1.0] if value == 0 else [0.0, 2.0] if value == 1 else [value * 2, value / 2]


class _Generator(ast.NodeVisitor):
    """Walks a module's tree; every mutable spot becomes (node, replacement node or text, description)."""

    def __init__(self, module: str, source: bytes) -> None:
        self.module, self.source = module, source
        self.starts = [0]
        for line in source.splitlines(keepends=True):
            self.starts.append(self.starts[-1] + len(line))
        self.mutants: list[Mutant] = []
        self.effect: list[str] = []  # the enclosing "no observable effect" contexts

    def _add(self, node: ast.AST, replacement: ast.AST | str, mutation: str, statement: bool = False) -> None:
        start = self.starts[node.lineno - 1] + node.col_offset
        end = self.starts[node.end_lineno - 1] + node.end_col_offset
        text = replacement if isinstance(replacement, str) else ast.unparse(replacement)
        if not statement:
            text = f"({text})"
        self.mutants.append(Mutant(self.module, node.lineno, start, end, text, mutation, self.effect[-1] if self.effect else ""))

    def _within(self, effect: str, nodes) -> None:
        self.effect.append(effect)
        for n in nodes:
            self.visit(n)
        self.effect.pop()

    # contexts that are never mutated, or only as "no observable effect"
    def visit_Import(self, node) -> None:
        pass

    visit_ImportFrom = visit_Import

    def visit_JoinedStr(self, node) -> None:  # f-strings: text
        pass

    def visit_arg(self, node) -> None:  # annotations
        pass

    def visit_AnnAssign(self, node) -> None:
        if node.value is not None:
            self.visit(node.value)

    def _body(self, body: list[ast.stmt]) -> list[ast.stmt]:
        """A body without its docstring."""
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            return body[1:]
        return body

    def visit_Module(self, node) -> None:
        for stmt in self._body(node.body):
            self.visit(stmt)

    def visit_FunctionDef(self, node) -> None:
        for d in node.decorator_list:
            self.visit(d)
        self.visit(node.args)  # defaults (annotations are skipped in visit_arg)
        self._statements(self._body(node.body))

    def visit_ClassDef(self, node) -> None:
        self._statements(self._body(node.body))

    def visit_Raise(self, node) -> None:
        self._add(node, "pass", "raise removed", statement=True)
        self._within("in an error message", [n for n in ast.iter_child_nodes(node)])

    def visit_Call(self, node) -> None:
        name = ast.unparse(node.func)
        if name.startswith(QUIET_CALLS):
            self._within("in a logging or warnings call", [*node.args, *node.keywords])
            return
        short = name.rsplit(".", 1)[-1]
        if short in CALLS:
            func = copy.deepcopy(node.func)
            if isinstance(func, ast.Name):
                func.id = CALLS[short]
            else:
                func.attr = CALLS[short]
            self._add(node, ast.Call(func, node.args, node.keywords), f"{short}() → {CALLS[short]}()")
        self.generic_visit(node)

    # statements: removal
    def _statements(self, body: list[ast.stmt]) -> None:
        for stmt in body:
            self.visit(stmt)

    def visit_Expr(self, node) -> None:
        if isinstance(node.value, ast.Call) and ast.unparse(node.value.func).startswith(QUIET_CALLS):
            self.effect.append("in a logging or warnings call")
            self._add(node, "pass", "call removed", statement=True)
            self.effect.pop()
        elif not (isinstance(node.value, ast.Constant)):
            self._add(node, "pass", "statement removed", statement=True)
        self.generic_visit(node)

    def visit_Assign(self, node) -> None:
        if all(isinstance(t, (ast.Subscript, ast.Attribute)) for t in node.targets):
            self._add(node, "pass", "assignment removed", statement=True)
        self.generic_visit(node)

    def visit_AugAssign(self, node) -> None:
        self._add(node, "pass", "statement removed", statement=True)
        for op in BINOPS.get(type(node.op), []):
            self._add(node, ast.AugAssign(node.target, op(), node.value), f"{SYMBOL[type(node.op)]}= → {SYMBOL[op]}=", statement=True)
        self.generic_visit(node)

    def visit_If(self, node) -> None:
        if not node.orelse:
            self._add(node, "pass", "if statement removed", statement=True)
        self._add(node.test, ast.UnaryOp(ast.Not(), node.test), "condition negated")
        self.generic_visit(node)

    def visit_IfExp(self, node) -> None:
        self._add(node.test, ast.UnaryOp(ast.Not(), node.test), "condition negated")
        self.generic_visit(node)

    def visit_Continue(self, node) -> None:
        self._add(node, "pass", "continue removed", statement=True)

    def visit_Break(self, node) -> None:
        self._add(node, "pass", "break removed", statement=True)

    def visit_Return(self, node) -> None:
        if node.value is not None and not (isinstance(node.value, ast.Constant) and node.value.value is None):
            self._add(node, "return None", "returns None", statement=True)
        self.generic_visit(node)

    # expressions
    def visit_BinOp(self, node) -> None:
        for op in BINOPS.get(type(node.op), []):
            self._add(node, ast.BinOp(node.left, op(), node.right), f"{SYMBOL[type(node.op)]} → {SYMBOL[op]}")
        self.generic_visit(node)

    def visit_Compare(self, node) -> None:
        for i, op in enumerate(node.ops):
            for new in COMPARES.get(type(op), []):
                ops = list(node.ops)
                ops[i] = new()
                self._add(node, ast.Compare(node.left, ops, node.comparators), f"{SYMBOL[type(op)]} → {SYMBOL[new]}")
        self.generic_visit(node)

    def visit_BoolOp(self, node) -> None:
        other = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        self._add(node, ast.BoolOp(other, node.values), f"{SYMBOL[type(node.op)]} → {SYMBOL[type(other)]}")
        for i in range(len(node.values)):
            rest = node.values[:i] + node.values[i + 1:]
            self._add(node, rest[0] if len(rest) == 1 else ast.BoolOp(node.op, rest), f"operand {i + 1} of {SYMBOL[type(node.op)]} dropped")
        self.generic_visit(node)

    def visit_UnaryOp(self, node) -> None:
        if isinstance(node.op, (ast.Not, ast.USub)):
            self._add(node, node.operand, "not removed" if isinstance(node.op, ast.Not) else "minus sign removed")
        self.generic_visit(node)

    def visit_Constant(self, node) -> None:
        value = node.value
        if isinstance(value, bool):
            self._add(node, ast.Constant(not value), f"{value} → {not value}")
        elif isinstance(value, (int, float)):
            for new in _numbers(value):
                self._add(node, ast.Constant(new), f"{value!r} → {new!r}")

    def visit_Slice(self, node) -> None:
        for part in ("lower", "upper"):
            if getattr(node, part) is not None:
                self._add(node, ast.Slice(**{**{"lower": node.lower, "upper": node.upper, "step": node.step}, part: None}),
                          f"slice {part} bound dropped")
        self.generic_visit(node)

    def visit_comprehension(self, node) -> None:
        for cond in node.ifs:
            self._add(cond, ast.Constant(True), "filter condition dropped")
        self.generic_visit(node)

    def _collection(self, node, elements: list) -> None:
        if len(elements) >= 2 and all(isinstance(e, ast.Constant) for e in elements):
            for i, e in enumerate(elements):
                self._add(node, type(node)(elts=elements[:i] + elements[i + 1:], ctx=ast.Load()) if not isinstance(node, ast.Set)
                          else ast.Set(elts=elements[:i] + elements[i + 1:]), f"element {e.value!r} dropped")
        self.generic_visit(node)

    def visit_Tuple(self, node) -> None:
        self._collection(node, node.elts) if isinstance(node.ctx, ast.Load) else self.generic_visit(node)

    visit_List = visit_Tuple

    def visit_Set(self, node) -> None:
        self._collection(node, node.elts)

    def visit_Dict(self, node) -> None:
        if len(node.keys) >= 2:
            for i, k in enumerate(node.keys):
                if isinstance(k, ast.Constant):
                    self._add(node, ast.Dict(node.keys[:i] + node.keys[i + 1:], node.values[:i] + node.values[i + 1:]), f"entry {k.value!r} dropped")
        self.generic_visit(node)


def generate(module: str) -> list[Mutant]:
    """Every mutant of ``module`` (path relative to the repo root) whose text still parses and differs in meaning."""
    source = (ROOT / module).read_bytes()
    tree = ast.parse(source)
    gen = _Generator(module, source)
    gen.visit(tree)
    original = ast.dump(tree)
    seen, out = set(), []
    for m in gen.mutants:
        text = source[: m.start] + m.replacement.encode() + source[m.end:]
        try:
            changed = ast.dump(ast.parse(text))
        except SyntaxError:
            continue
        if changed == original or changed in seen:  # the same program: nothing to test
            continue
        seen.add(changed)
        out.append(m)
    return out


def classify(mutants: list[Mutant]) -> None:
    """Mark the known-equivalent mutants (``EQUIVALENT``) as having no observable effect. A key's optional fourth
    element picks one of several identical mutations on a line (0: the leftmost)."""
    seen: Counter = Counter()
    for m in mutants:
        line = (ROOT / m.module).read_text().splitlines()[m.line - 1]
        nth = seen[(m.line, m.mutation)]
        seen[(m.line, m.mutation)] += 1
        for (module, text, mutation, *which), why in EQUIVALENT.items():
            if module == m.module and text in line and mutation in (m.mutation, "*") and (not which or which[0] == nth):
                m.effect = f"equivalent: {why}"


# --- running the tests ------------------------------------------------------------------------------------

def scratch_copy() -> Path:
    tmp = Path(tempfile.mkdtemp(prefix="qaug-mutation-"))
    shutil.copytree(ROOT, tmp / "repo", ignore=shutil.ignore_patterns(".venv", ".git", ".dvc", "__pycache__", ".prefect", ".pytest_cache",
                                                                        ".hypothesis", "store", "outputs"))
    return tmp / "repo"


def preload(scratch: Path, tests: list[str]) -> None:
    """Import once, in this process, the third-party modules the tests use (those a first run of ``tests`` loads,
    lazy imports included), so every forked mutant finds them loaded. Project modules are left out: each child
    imports them afresh from the (mutated) scratch copy."""
    env = dict(os.environ, PYTHONPATH=str(scratch), PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    code = ("import sys, json, os, pytest; "
            f"{tests!r} and pytest.main(['-q', '-p', 'no:cacheprovider', *{tests!r}]); "
            f"print(json.dumps([m for m in sys.modules if m.split('.')[0] not in {PROJECT_PACKAGES!r} and m != '__main__']))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=scratch, env=env, capture_output=True, text=True, check=True)
    sys.path.insert(0, str(scratch))
    from qaug.reproducible import pin  # the stages' thread and code-path settings, before torch loads

    pin()
    for name in json.loads(proc.stdout.splitlines()[-1]):
        try:
            __import__(name)
        except Exception:  # noqa: BLE001 - a module that only loads as a side effect of another; it will load in the child
            pass
    for name in [m for m in sys.modules if m.split(".")[0] in PROJECT_PACKAGES]:
        del sys.modules[name]
    sys.path.remove(str(scratch))
    gc.freeze()  # the children's collections skip everything loaded so far (a full one over torch's objects takes ~0.5 s)


def run_tests(scratch: Path, tests: list[str], timeout: float, trace: Path | None = None) -> str:
    """Run ``tests`` in a forked child on ``scratch``: "passed", "failed" or "timeout". With ``trace`` (a module of
    the copy), the lines of it that ran are written, as JSON, next to it (``<module>.lines``)."""
    pid = os.fork()
    if pid == 0:  # the child
        rc = 99
        try:
            os.setpgid(0, 0)
            os.chdir(scratch)
            sys.path.insert(0, str(scratch))
            os.environ["PYTHONPATH"] = str(scratch)
            sys.dont_write_bytecode = True  # a mutant's module must never be read from an earlier mutant's .pyc
            os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
            os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # installed plugins (hydra's...) cost 2 s a run; the tests need none
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.dup2(null, 2)
            import pytest

            if trace:
                executed = _trace(str(trace))
            rc = pytest.main(["-x", "-q", "-p", "no:cacheprovider", "-p", "no:unraisableexception", "-W", "ignore::DeprecationWarning", *tests])
            if trace:
                sys.settrace(None)
                Path(f"{trace}.lines").write_text(json.dumps(sorted(executed)))
        finally:
            os._exit(int(rc))
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return "passed" if os.waitstatus_to_exitcode(status) == 0 else "failed"
        if time.monotonic() > deadline:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
            return "timeout"
        time.sleep(0.02)


def _trace(filename: str) -> set[int]:
    """Record the lines of ``filename`` that run from now on (sys.settrace; calls elsewhere are not traced)."""
    executed: set[int] = set()

    def local(frame, event, arg):
        if event == "line":
            executed.add(frame.f_lineno)
        return local

    def calls(frame, event, arg):
        if frame.f_code.co_filename == filename:
            executed.add(frame.f_lineno)
            return local
        return None

    sys.settrace(calls)
    return executed


def test_module(scratch: Path, module: str, mutants: list[Mutant], tests: list[str], lines: list[str]) -> None:
    original = (scratch / module).read_bytes()
    if not tests:  # pytest would run the whole suite
        for m in mutants:
            m.outcome = "no effect" if m.effect else "survived"
        print(f"  no fast test covers {module}: every mutant survives", flush=True)
        return
    started = time.monotonic()
    if run_tests(scratch, tests, 1800, trace=scratch / module) != "passed":
        raise SystemExit(f"{module}: its tests fail on the unchanged copy ({' '.join(tests)}); fix that first")
    timeout = 3 * (time.monotonic() - started) + 20
    executed = set(json.loads(Path(f"{scratch / module}.lines").read_text()))
    try:
        for i, m in enumerate(mutants, 1):
            if m.effect:
                m.outcome = "no effect"
                continue
            if not executed & set(range(m.line, m.line + original[m.start:m.end].count(b"\n") + 1)):
                m.outcome = "survived"  # no test runs the line: nothing to run
                m.mutation += " (line not run by the tests)"
                print(f"  survived {module}:{m.line}: {m.mutation}    | {m.source_line(lines)[:100]}", flush=True)
                continue
            (scratch / module).write_bytes(original[: m.start] + m.replacement.encode() + original[m.end:])
            result = run_tests(scratch, tests, timeout)
            m.outcome = {"passed": "survived", "failed": "killed", "timeout": "timeout"}[result]
            if m.outcome == "survived":
                print(f"  survived {module}:{m.line}: {m.mutation}    | {m.source_line(lines)[:100]}", flush=True)
            if i % 25 == 0:
                print(f"  … {module}: {i} of {len(mutants)}", flush=True)
    finally:
        (scratch / module).write_bytes(original)


def score(mutants: list[Mutant]) -> tuple[int, int, float]:
    counted = [m for m in mutants if m.outcome != "no effect"]
    detected = sum(m.outcome in ("killed", "timeout") for m in counted)
    return detected, len(counted), 100 * detected / len(counted) if counted else 100.0


def _line_range(text: str) -> tuple[int, int]:
    lo, _, hi = text.partition("-")
    return int(lo), int(hi or lo)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", default=list(TARGETS), choices=list(TARGETS), metavar="MODULE")
    parser.add_argument("--lines", type=_line_range, help="only mutants on these lines (A-B) of the --only modules")
    parser.add_argument("--json", type=Path, default=ROOT / "outputs" / "mutation-survivors.json", help="where the survivors go")
    parser.add_argument("--list", action="store_true", help="list the mutants without running anything")
    args = parser.parse_args()

    plan = {}
    for module in args.only:
        mutants = generate(module)
        if args.lines:
            mutants = [m for m in mutants if args.lines[0] <= m.line <= args.lines[1]]
        classify(mutants)
        plan[module] = mutants
    if args.list:
        for module, mutants in plan.items():
            lines = (ROOT / module).read_text().splitlines()
            for m in mutants:
                print(f"{module}:{m.line}: {m.mutation}{f'  [{m.effect}]' if m.effect else ''}    | {m.source_line(lines)[:90]}")
        print(f"{sum(len(v) for v in plan.values())} mutants")
        return

    scratch = scratch_copy()
    try:
        preload(scratch, sorted({t for module in plan for t in TARGETS[module] if (scratch / t.split("::")[0]).is_file()}))
        for module, mutants in plan.items():
            tests = [t for t in TARGETS[module] if (scratch / t.split("::")[0]).is_file()]
            print(f"{module}: {len(mutants)} mutants, tests {' '.join(sorted({t.split('::')[0] for t in tests}))}", flush=True)
            test_module(scratch, module, mutants, tests, (ROOT / module).read_text().splitlines())
    finally:
        shutil.rmtree(scratch.parent, ignore_errors=True)

    print(f"\n{'module':30} {'mutants':>7} {'no effect':>9} {'killed':>6} {'timeout':>7} {'survived':>8} {'score':>7}")
    survivors = []
    for module, mutants in plan.items():
        c = Counter(m.outcome for m in mutants)
        detected, counted, pct = score(mutants)
        print(f"{module:30} {len(mutants):7} {c['no effect']:9} {c['killed']:6} {c['timeout']:7} {c['survived']:8} {pct:6.1f}%")
        lines = (ROOT / module).read_text().splitlines()
        survivors += [asdict(m) | {"text": m.source_line(lines)} for m in mutants if m.outcome == "survived"]
    effects = Counter(m.effect.split(":")[0] for ms in plan.values() for m in ms if m.effect)
    if effects:
        print("no observable effect: " + ", ".join(f"{n} {why}" for why, n in effects.most_common()))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(survivors, indent=1, ensure_ascii=False) + "\n")
    every = [m for ms in plan.values() for m in ms]
    detected, counted, pct = score(every)
    print(f"mutation score {pct:.1f}%: {detected} of {counted} mutants that matter killed, {len(every) - counted} without observable effect; "
          f"survivors in {args.json}", flush=True)
    os._exit(0)  # skip the interpreter's teardown of the preloaded extensions (triton's complains of leaks)


if __name__ == "__main__":
    main()
