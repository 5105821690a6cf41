"""The run's headline numbers, read back from the metrics files: for ``qaug show`` and Prefect artifacts."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from qaug.io import read_json
from qaug.params import lookup

COMPARISON = Path("metrics/comparison.json")
FILTER = Path("metrics/filter.json")
MERGE = Path("metrics/merge.json")
GENERATION = Path("metrics/generation.json")
GENERATOR = Path("metrics/generator.json")
# The Great Expectations reports of the sets generate, filter and merge check, in pipeline order.
CHECKS = (Path("data/checks/candidates.json"), Path("data/checks/accepted.json"), Path("data/checks/merged.json"))
DATA_DOCS = Path("gx/uncommitted/data_docs/local_site/index.html")


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
    if "classifier" in cmp:
        lines += ["", f"Classifier: {cmp['classifier']}, trained on the real split (baseline) and on the merged set."]
    elif quantum["backend"] != "exact":
        lines += ["", f"Inference backend: {quantum['backend']}, {quantum['shots']} shots, noise: {quantum['noise']}."]
    merge_path, filter_path, generation_path = Path(root) / MERGE, Path(root) / FILTER, Path(root) / GENERATION
    if merge_path.exists():
        m = read_json(merge_path)
        lines += ["", f"Augmented training set: {m['total']} images ({m['real']} real, {m['generated']} generated)."]
    if filter_path.exists():
        f = read_json(filter_path)
        fidelity = "" if f.get("label_fidelity") is None else f"; label fidelity of the candidates {f['label_fidelity']:.3f}"
        lines += ["", f"Filter ({f['strategy']} strategy): {f['accepted']} of {f['needed']} needed samples accepted, "
                      f"shortfall {f['shortfall']}{fidelity}.", ""]
        lines += ["| class | needed | accepted | rejected | rounds | acceptance | threshold |", "|---|---:|---:|---:|---:|---:|---:|"]
        lines += [
            f"| {name} | {s['needed']} | {s['accepted']} | {s['rejected']} | {s['rounds']} | {s['acceptance_rate']:.2f} | "
            f"{'—' if s['threshold'] is None else format(s['threshold'], '.3f')} |"
            for name, s in f["per_class"].items()
        ]
    if generation_path.exists():
        g = read_json(generation_path)
        lines += ["", f"Generated samples ({g['method']}), scored with {g['judge']} "
                      f"({judge_accuracy(g)}); FD and KID in its features:", ""]
        lines += ["| set | class | n | label fidelity | FD | KID | Inception FID | diversity (real) | near duplicates | nearest test |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        lines += [
            f"| {r['set']} | {r['class']} | {r['n']} | {_fmt(r['label_fidelity']) if r['measured'] else 'not measured'} | {_fmt(r['frechet_distance'])} | {_fmt(r['kid'])} | "
            f"{_fmt(r['inception_fid'])} | {_fmt(r['diversity'])} ({_fmt(r['real_diversity'])}) | {_fmt(r['near_duplicates'])} | "
            f"{_fmt(r['nearest_test'])} |"
            for r in generation_rows(g)
        ]
        lines += [line for note in (judge_note(g), inception_note(g)) if note for line in ("", note)]
    lines += checks_markdown(root)
    return "\n".join(lines) + "\n"


def check_rows(root: Path = Path("."), failed_only: bool = False) -> list[dict]:
    """The run's data checks, one row per expectation (set, expectation, column, passed, expected, observed),
    from the reports the stages wrote; a stage that failed its checks leaves its report behind."""
    rows = []
    for path in CHECKS:
        if (root / path).is_file():
            report = read_json(root / path)
            rows += [{"set": report["name"], "expectation": r["expectation"], "column": r["column"] or "",
                      "passed": r["success"], "expected": r["expected"], "observed": _short(r["observed"])}
                     for r in report["results"] if not (failed_only and r["success"])]
    return rows


def _short(observed) -> str:
    """An observed value in a table cell: counts and a few offending values, not GX's whole result."""
    if isinstance(observed, dict) and "unexpected_count" in observed:
        return f"{observed['unexpected_count']} bad" + (f", e.g. {observed['unexpected_values'][:3]}" if observed["unexpected_count"] else "")
    if isinstance(observed, list):  # classes short of their required count
        return "; ".join(f"class {c['class']}: {c['count']} of {c['required']}" for c in observed)
    return json.dumps(observed) if isinstance(observed, dict) else str(observed)


def checks_markdown(root: Path = Path(".")) -> list[str]:
    """Per checked set, passed or which expectations failed; where the Data Docs are."""
    rows = check_rows(root)
    if not rows:
        return []
    lines = ["", "Data checks (Great Expectations):", ""]
    for name in dict.fromkeys(r["set"] for r in rows):
        mine = [r for r in rows if r["set"] == name]
        failed = [r for r in mine if not r["passed"]]
        lines.append(f"- {name}: failed {len(failed)} of {len(mine)} expectations: " + "; ".join(
            f"{r['expectation']}{' [' + r['column'] + ']' if r['column'] else ''}: expected {r['expected']}, observed {r['observed']}"
            for r in failed) if failed else f"- {name}: all {len(mine)} expectations passed")
    docs = (root / DATA_DOCS).resolve()
    lines += ["", f"Data Docs: {docs.as_uri()}" if docs.is_file() else "Data Docs: not built (`qaug docs`)"]
    return lines


def inception_note(g: dict) -> str | None:
    """Why metrics/generation.json holds no Inception FID (None when it does)."""
    inception = g.get("inception", {"note": "Inception FID not computed (scores from before it existed)."})
    return None if inception.get("enabled") else inception["note"]


def judge_accuracy(g: dict) -> str:
    """The judge's test accuracy and, when recorded, its test recall per class, in words."""
    recall = g.get("judge_test_recall") or {}
    per_class = ", ".join(f"{name} {_fmt(r)}" for name, r in recall.items())
    return f"test accuracy {_fmt(g.get('judge_test_accuracy'))}" + (f"; recall per class {per_class}" if per_class else "")


def judge_note(g: dict) -> str | None:
    """Which classes metrics/generation.json measures no label fidelity for, because its judge cannot recognise
    them (None when it judges every class)."""
    skipped = g.get("unjudged_classes") or {}
    if not skipped:
        return None
    classes = ", ".join(f"{name} (test recall {_fmt(g['judge_test_recall'][name])})" for name in skipped)
    rule = g["label_fidelity_rule"]
    return (f"Label fidelity not measured for class{'es' if len(skipped) > 1 else ''} {classes}: the judge cannot recognise "
            f"{'them' if len(skipped) > 1 else 'it'}, so the score would measure the judge. {rule[0].upper()}{rule[1:]}.")


def generation_rows(g: dict) -> list[dict]:
    """One row per generated set (candidates, accepted) and class ("all" first) from metrics/generation.json.

    FD/KID/Inception FID of "all" are the means over classes (the pooled ones stay in the file)."""
    rows = []
    for key in ("candidates", "accepted"):
        for name, v in [("all", g[key]), *g[key]["per_class"].items()]:
            rows.append({
                "set": key, "class": name, "n": v["n"], "label_fidelity": v["label_fidelity"], "measured": not v.get("label_fidelity_note"),
                "frechet_distance": v["frechet_distance"], "kid": v["kid"], "inception_fid": v.get("inception_fid"),
                "diversity": v["diversity"], "real_diversity": v["real_diversity"],
                "near_duplicates": v["duplicates"]["near"], "nearest_test": v["nearest_test"]["mean"],
            })
    return rows


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


# What `qaug show --compare` puts side by side: (label, metrics file, key in it).
RUN_FIELDS = (
    ("classifier", COMPARISON, "classifier"),
    ("backend", COMPARISON, "quantum.backend"),
    ("shots", COMPARISON, "quantum.shots"),
    ("noise", COMPARISON, "quantum.noise"),
    ("method", GENERATION, "method"),
    ("qgan model", GENERATOR, "model"),
    ("label fidelity, baseline HQCNN (candidates)", FILTER, "label_fidelity"),
    ("label fidelity, independent CNN (accepted)", GENERATION, "accepted.label_fidelity"),
    ("independent CNN's test accuracy", GENERATION, "judge_test_accuracy"),
    ("classifier-feature FD (accepted)", GENERATION, "accepted.frechet_distance"),
    ("classifier-feature KID (accepted)", GENERATION, "accepted.kid"),
    ("Inception FID (accepted)", GENERATION, "accepted.inception_fid"),
    ("diversity (accepted)", GENERATION, "accepted.diversity"),
    ("diversity (real)", GENERATION, "accepted.real_diversity"),
    ("generated accepted", FILTER, "accepted"),
    ("generated needed", FILTER, "needed"),
    ("baseline accuracy", COMPARISON, "baseline.accuracy"),
    ("augmented accuracy", COMPARISON, "augmented.accuracy"),
    ("Δ accuracy", COMPARISON, "delta.accuracy"),
    ("Δ macro F1", COMPARISON, "delta.macro.f1"),
)


def run_summary(metrics: dict[Path, dict]) -> dict:
    """``RUN_FIELDS`` of one run, from its metrics files (``{path: parsed JSON}``); None where absent."""
    return {label: lookup(metrics.get(file), key) for label, file, key in RUN_FIELDS}


def flatten(raw: dict, prefix: str = "") -> dict[str, object]:
    """A nested dict (params.yaml, a metrics file) as dotted keys (``filter.tau``), lists and scalars as values."""
    flat = {}
    for key, value in raw.items():
        if isinstance(value, dict):
            flat |= flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def differing_params(params: dict[str, dict]) -> dict[str, dict[str, object]]:
    """``{run: {"param KEY": value}}`` for the params.yaml keys whose values differ between the runs (absent: None)."""
    flat = {run: flatten(raw) for run, raw in params.items()}
    keys = sorted({k for f in flat.values() for k in f})
    differ = [k for k in keys if len({repr(f.get(k)) for f in flat.values()}) > 1]
    return {run: {f"param {k}": f.get(k) for k in differ} for run, f in flat.items()}


def resolve_runs(runs: list[str], rows: list[dict], is_commit=lambda rev: False,
                 older: dict[str, str] | None = None) -> dict[str, str | None]:
    """Each run's git revision (None for the workspace): an experiment name or rev from exp_show ``rows``
    (experiments of HEAD), else an experiment of an earlier commit (``older``: name → commit),
    else any revision git knows (``is_commit``: HEAD, tags, short SHAs)."""
    older = older or {}
    resolved = {}
    for run in runs:
        match = next((r for r in rows if run in (r.get("Experiment"), r.get("rev"))), None)
        if match is None and (run in older or is_commit(run)):
            resolved[run] = older.get(run, run)
            continue
        if match is None:
            names = sorted({str(r.get("Experiment") or r.get("rev")) for r in rows} | set(older))
            raise FileNotFoundError(f"no experiment or revision {run!r}; known: {', '.join(names)} (see `dvc exp show`)")
        resolved[run] = None if match["rev"] == "workspace" else match["rev"]
    return resolved


def experiment_refs(for_each_ref: str) -> dict[str, str]:
    """Experiment name → commit from ``git for-each-ref --sort=committerdate`` lines over refs/exps.

    DVC keeps experiments as refs/exps/<baseline[:2]>/<baseline[2:]>/<name> (``dvc.api.exp_show``
    lists HEAD's only); its own bookkeeping refs (refs/exps/exec/EXEC_HEAD, …) are shallower. A name
    run on several baselines resolves to the newest."""
    names = {}
    for line in for_each_ref.splitlines():
        ref, _, sha = line.partition(" ")
        parts = ref.split("/")
        if len(parts) == 5 and parts[:2] == ["refs", "exps"] and sha:
            names[parts[4]] = sha
    return names


def side_by_side(runs: list[str], root: Path = Path(".")) -> dict[str, dict]:
    """``{run: {label: value}}`` for runs named as DVC experiments, git revisions or ``workspace``: the params that
    differ between them, then the headline numbers."""
    import dvc.api
    from dvc.exceptions import PathMissingError

    def is_commit(rev: str) -> bool:
        check = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], cwd=root, capture_output=True)
        return check.returncode == 0

    refs = subprocess.run(["git", "for-each-ref", "--sort=committerdate", "--format=%(refname) %(objectname)", "refs/exps"],
                          cwd=root, capture_output=True, text=True).stdout
    summaries, params = {}, {}
    for run, rev in resolve_runs(runs, dvc.api.exp_show(repo=str(root)), is_commit, experiment_refs(refs)).items():
        text = (Path(root) / "params.yaml").read_text() if rev is None else dvc.api.read("params.yaml", repo=str(root), rev=rev)
        params[run] = yaml.safe_load(text) or {}
        metrics = {}
        for file in (COMPARISON, FILTER, GENERATION, GENERATOR):
            try:
                text = (Path(root) / file).read_text() if rev is None else dvc.api.read(file.as_posix(), repo=str(root), rev=rev)
            except (FileNotFoundError, PathMissingError):  # a run from before that file existed
                continue
            metrics[file] = json.loads(text)
        summaries[run] = run_summary(metrics)
    differ = differing_params(params)
    return {run: differ[run] | summary for run, summary in summaries.items()}  # what differs first, then the outcome
