"""How grid numbers read: points (percentage points), p-values, CIs, sweep points and group labels."""

from __future__ import annotations

import json
import math
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
    """A share as percentage points (0.027 → +2.7); — when undefined."""
    if x is None or not math.isfinite(x):
        return "—"
    return f"{100 * x:+.1f}" if sign else f"{100 * x:.1f}"


def pvalue(x: float | None) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.3g}"


def ci(row: dict, kind: str = "t") -> str:
    return f"[{pts(row[f'{kind}_low'])}, {pts(row[f'{kind}_high'])}]"


def artifact_key(*parts: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    import re

    return re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")
