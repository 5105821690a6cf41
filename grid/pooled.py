"""Across regimes (exploratory): one pooled estimate per method, reference and metric over a grid's regimes.

"Does the QGAN help anywhere in these regimes?" A random-effects meta-analysis of the regimes' paired mean
differences (statsmodels' ``combine_effects``: DerSimonian–Laird between-regime variance τ², each regime weighted
by 1 / (s²/n + τ²)), with the Hartung–Knapp–Sidik–Jonkman interval (t with k − 1 degrees of freedom): with the
3–5 regimes a grid has, the plain normal interval is far too narrow. Regimes differ in data, so their true
effects may too: the estimate is the mean effect over regimes like these, τ its spread. Unadjusted, never a
verdict. A regime with fewer than 2 paired seeds or no spread has no variance to weigh it by and is left out.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict

import numpy as np

from grid.format import canonical


def pooled(comparisons: list[dict]) -> list[dict]:
    """Per (sweep point, method, reference, metric) present in ≥ 2 regimes: the random-effects estimate and its interval."""
    from statsmodels.stats.meta_analysis import combine_effects

    studies: dict[tuple, list[dict]] = defaultdict(list)
    for r in comparisons:
        if r["n"] >= 2 and r["sd"] is not None and r["sd"] > 0:
            studies[(canonical(r["point"]), r["arm"], r["reference"], r["metric"])].append(r)
    out = []
    for (point, arm, reference, metric), rows in studies.items():
        if len({r["regime"] for r in rows}) < 2:
            continue
        effect = np.array([r["mean"] for r in rows])
        variance = np.array([r["sd"] ** 2 / r["n"] for r in rows])
        with warnings.catch_warnings():  # about the single regimes' own intervals, which are not used here
            warnings.simplefilter("ignore")
            res = combine_effects(effect, variance, method_re="chi2", use_t=True)
            # statsmodels 0.15 leaves DL's τ² = (Q − (k − 1)) / c negative when the regimes agree more than chance
            # allows (Q < k − 1): negative weights, a NaN HKSJ interval. DL truncates at 0, where random effects are
            # the fixed-effect fit: its mean and its HKSJ-scaled interval (conf_int's row 2; row 3 is random effects).
            truncated = res.tau2 < 0
            low, high = res.conf_int(use_t=True)[2 if truncated else 3]  # HKSJ scale, t(k − 1)
        out.append({"point": rows[0]["point"], "arm": arm, "reference": reference, "metric": metric,
                    "regimes": [r["regime"] for r in rows], "seeds": sum(r["n"] for r in rows),
                    "mean": float(res.mean_effect_fe if truncated else res.mean_effect_re), "low": float(low), "high": float(high),
                    "tau": math.sqrt(max(float(res.tau2), 0.0)), "i2": max(float(res.i2), 0.0)})  # I², truncated as τ² is
    return out

