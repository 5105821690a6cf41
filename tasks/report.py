"""The run's headline numbers, read back from the metrics files: for ``qaug show`` and Prefect artifacts."""

from __future__ import annotations

from pathlib import Path

from qaug.io import read_json

COMPARISON = Path("metrics/comparison.json")
FILTER = Path("metrics/filter.json")
MERGE = Path("metrics/merge.json")


def _comparison(root: Path) -> dict:
    path = Path(root) / COMPARISON
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist yet; run the pipeline first (`qaug run`)")
    return read_json(path)


def comparison_rows(root: Path = Path("."), cmp: dict | None = None) -> list[dict]:
    """Metric, baseline, augmented and delta for accuracy, confidence, macro F1 and every class."""
    cmp = _comparison(root) if cmp is None else cmp
    base, aug, delta = cmp["baseline"], cmp["augmented"], cmp["delta"]
    rows = [
        {"metric": "accuracy", "baseline": base["accuracy"], "augmented": aug["accuracy"], "delta": delta["accuracy"]},
        {"metric": "mean confidence", "baseline": base["mean_confidence"], "augmented": aug["mean_confidence"], "delta": delta["mean_confidence"]},
        {"metric": "macro F1", "baseline": base["macro"]["f1"], "augmented": aug["macro"]["f1"], "delta": delta["macro"]["f1"]},
    ]
    for name in base["class_names"]:
        for key, label in (("accuracy", "accuracy"), ("f1", "F1")):
            rows.append({
                "metric": f"class {name} {label}",
                "baseline": base["per_class"][name][key],
                "augmented": aug["per_class"][name][key],
                "delta": delta["per_class"][name][key],
            })
    return rows


def summary_markdown(root: Path = Path(".")) -> str:
    """A short report of one run: headline comparison, augmentation counts, filter outcome per class."""
    cmp = _comparison(root)
    rows = comparison_rows(root, cmp)
    lines = ["# qaug run", "", "| metric | baseline | augmented | delta |", "|---|---:|---:|---:|"]
    lines += [f"| {r['metric']} | {r['baseline']:.3f} | {r['augmented']:.3f} | {r['delta']:+.3f} |" for r in rows]
    quantum = cmp.get("quantum", {"backend": "exact"})
    if quantum["backend"] != "exact":
        lines += ["", f"Inference backend: {quantum['backend']}, {quantum['shots']} shots, noise: {quantum['noise']}."]
    merge_path, filter_path = Path(root) / MERGE, Path(root) / FILTER
    if merge_path.exists():
        m = read_json(merge_path)
        lines += ["", f"Augmented training set: {m['total']} images ({m['real']} real, {m['generated']} generated)."]
    if filter_path.exists():
        f = read_json(filter_path)
        lines += ["", f"Filter ({f['strategy']} strategy): {f['accepted']} of {f['needed']} needed samples accepted, shortfall {f['shortfall']}.", ""]
        lines += ["| class | needed | accepted | rejected | rounds | acceptance | threshold |", "|---|---:|---:|---:|---:|---:|---:|"]
        lines += [
            f"| {name} | {s['needed']} | {s['accepted']} | {s['rejected']} | {s['rounds']} | {s['acceptance_rate']:.2f} | "
            f"{'—' if s['threshold'] is None else format(s['threshold'], '.3f')} |"
            for name, s in f["per_class"].items()
        ]
    return "\n".join(lines) + "\n"
