"""Splitting a count in proportion to weights: the real batch's classes, generate's targets, merge's mixing."""

from __future__ import annotations

import torch


def batch_counts(weights: torch.Tensor, total: int) -> list[int]:
    """Split ``total`` in proportion to ``weights`` (largest remainder: exact, deterministic)."""
    share = weights / weights.sum() * total
    counts = share.floor().long()
    short = total - int(counts.sum())
    if short:
        counts[torch.argsort(share - counts, descending=True, stable=True)[:short]] += 1
    return counts.tolist()
