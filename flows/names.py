"""What a run is called in the Prefect UI: what it runs, not Prefect's random adjective-animal."""

from __future__ import annotations


def describe(raw: dict, forced: bool = False, experiment: str | None = None) -> str:
    """Method (and QGAN model), augmentation strategy and seed of params ``raw``, as a run's name."""
    augment = raw.get("augment", {})
    method = augment.get("method", "?")
    model = raw.get("qgan", {}).get("model") if method == "qgan" else None
    parts = [experiment, f"{method}{'/' + model if model else ''}", augment.get("strategy"), f"seed {raw.get('seed', '?')}",
             "forced" if forced else None]
    return " · ".join(str(p) for p in parts if p)
