"""How grid numbers read: points (percentage points), p-values, CIs, sweep points and group labels."""

from __future__ import annotations

import json
import math
from decimal import ROUND_HALF_UP, Decimal
from typing import Any


def canonical(obj: Any) -> str:
    """A stable text for params values (mapping keys as text: YAML mixes 0 and "0"), used in keys and groupings."""
    def plain(v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v

    return json.dumps(plain(obj), sort_keys=True, default=str)


def point_label(point: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in point.items())


def group_label(regime: str, point: dict[str, Any]) -> str:
    return regime + (f" · {point_label(point)}" if point else "")


def pts(x: float | None, sign: bool = True) -> str:
    """A share as percentage points, one decimal (0.027 → +2.7); — when undefined.

    Rounded half away from zero on the decimal value (float noise removed first), so a number prints the same
    wherever it appears, however it was computed (0.0125 as a mean difference or as a difference of two means
    is +1.3 both times, never +1.3 in one column and +1.2 in the next); zero has no sign (never −0.0)."""
    if x is None or not math.isfinite(x):
        return "—"
    value = Decimal(repr(round(100 * float(x), 9))).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    if value == 0:
        return "0.0"
    return f"{value:+}" if sign else f"{value}"


def power_seeds(row: dict) -> str:
    """Seeds a paired t test needs for 80 % power at the observed effect: — without an effect (zero as printed),
    "> N" past the search's cap."""
    from grid.stats import MAX_SEEDS

    n = row.get("seeds_for_power")
    if n is None or pts(row["mean"]) == "0.0":
        return "—"
    return f"> {MAX_SEEDS}" if n >= MAX_SEEDS else str(n)


def pvalue(x: float | None) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.3g}"


def ci(row: dict, kind: str = "t") -> str:
    return f"[{pts(row[f'{kind}_low'])}, {pts(row[f'{kind}_high'])}]"


def artifact_key(*parts: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    import re

    return re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")
