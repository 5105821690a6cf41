"""The primaries' verdicts as table rows, and the words they read as.

A primary's row carries its verdict (better / worse / equivalent within ±δ / inconclusive at N, or open while
later waves may still judge it), the seeds it was judged on, Δ with the interval that decided it (the paired t
interval at the one-sided level Holm used: 1 − 2ℓ), the margin, P(better) with its bootstrap interval and d_z.
Every other comparison is exploratory: estimate and unadjusted interval, never a verdict word.
"""

from __future__ import annotations

from grid.decide import Verdict, d_z, p_better
from grid.format import canonical, pts
from grid.primaries import Design
from grid.spec import GridSpec
from grid.stats import ALPHA, MAX_SEEDS
from grid.waves import Replay


def seeds_judged(spec: GridSpec, design: Design, state: Replay) -> dict[tuple, list[int]]:
    """(regime, canonical point, arm, reference, metric) → the seeds each judged primary's verdict used."""
    return {(*p.group, p.arm, p.reference, p.metric): list(spec.seeds[:design.plan[v.look - 1]])
            for p, v in zip(design.primaries, state.verdicts) if v is not None}


def decision_rows(design: Design, state: Replay, compared: list[dict]) -> list[dict]:
    """One row per primary (in the design's order). Marks ``compared``'s rows: a primary's carries its verdict, margin
    and deciding interval; an exploratory one has none of them."""
    rows = {(r["regime"], canonical(r["point"]), r["arm"], r["reference"], r["metric"]): r for r in compared}
    for r in compared:
        r |= {"role": "exploratory", "verdict": "", "margin": None, "decision_low": None, "decision_high": None, "decision_level": None}
    out = []
    for p, v, d in zip(design.primaries, state.verdicts, state.differences):
        share, low, high = p_better(d)  # on the very seeds the verdict used, whatever the reference
        decision = {"regime": p.regime, "point": dict(p.point), "arm": p.arm, "reference": p.reference, "metric": p.metric,
                    "margin": p.margin, **decision_fields(v), "d_z": d_z(d), "p_better": share, "p_better_low": low, "p_better_high": high}
        row = rows.get((*p.group, p.arm, p.reference, p.metric))
        if row is not None:
            row |= {"role": "primary", "verdict": decision["verdict"], "margin": p.margin, "decision_low": decision["low"],
                    "decision_high": decision["high"], "decision_level": decision["level"]}
        out.append(decision)
    return out


def decision_fields(v: Verdict | None) -> dict:
    """A primary's verdict as the summary, the status and ``verdict_text`` read it ("pending" before its first look)."""
    if v is None:
        return {"verdict": "pending", "look": 0, "n": 0, "mean": None, "low": None, "high": None, "level": None,
                "within_margin": False, "seeds_difference": None, "seeds_equivalence": None}
    return {"verdict": v.verdict, "look": v.look, "n": v.n, "mean": v.mean, "low": v.low, "high": v.high, "level": v.level,
            "within_margin": v.within_margin, "seeds_difference": v.seeds_difference, "seeds_equivalence": v.seeds_equivalence}


def verdict_text(row: dict) -> str:
    """"better by +3.1 points [+0.4, +5.8]", "equivalent within ±2.0 points", "inconclusive at 40 seeds …"."""
    margin = f"±{pts(row['margin'], False)}"
    interval = f"[{pts(row['low'])}, {pts(row['high'])}]"
    word = row["verdict"]
    if word in ("better", "worse"):
        within = f"; equivalent within {margin} too (real, and smaller than the margin)" if row["within_margin"] else ""
        return f"{word} by {pts(row['mean'])} {interval}{within}"
    if word == "equivalent":
        return f"equivalent within {margin}: {pts(row['mean'])} {interval}"
    if word == "open":
        return f"open after {row['n']} seeds: {pts(row['mean'])} {interval}"
    if word == "inconclusive":
        need = [f"{'more than ' if n >= MAX_SEEDS else ''}{n} for {what}"  # the search stops at MAX_SEEDS
                for n, what in ((row["seeds_difference"], "better/worse"), (row["seeds_equivalence"], "equivalence")) if n]
        return f"inconclusive at {row['n']} seeds: {pts(row['mean'])} {interval}" + (f"; a fixed design would need {', '.join(need)}" if need else "")
    return "pending: the first wave has not finished"


def family_text(design: Design) -> str:
    """The family and the rule, in a sentence (the report and the terminal print it)."""
    plan = ", ".join(map(str, design.plan))
    looks = f"{design.looks} looks (after {plan} seeds)" if design.looks > 1 else f"one look at {plan} seeds"
    m = len(design.primaries)
    return (f"{m} primary comparison{'s' if m != 1 else ''} over {looks}; family-wise error ≤ {ALPHA:.0%} for better/worse "
            f"(paired t) and ≤ {ALPHA:.0%} for equivalent within the margin (TOST): each look spends α/{design.looks}, Holm over "
            "the hypotheses not yet rejected; the interval shown with a verdict is the one that decided it. Everything else is "
            "exploratory (unadjusted 95 % intervals).")
