"""The grid's report: one self-contained HTML file (plots and sample grids embedded, no network) and Prefect artifacts.

First the decisions: every primary comparison's verdict (better / worse / equivalent within ±δ / inconclusive at N)
with the seeds it used, Δ and the interval that decided it, the margin, P(better) and d_z, and the pooled estimate
across regimes. Then, per regime and sweep point (exploratory, unadjusted intervals): the methods' mean ± sd,
paired differences against ``none`` and ``duplicates``, generated-set scores next to the gain, collapsed runs
listed apart, a plot with error bars and one sample grid per method.
"""

from __future__ import annotations

import base64
import html
import io
import math
import statistics
from pathlib import Path

from grid.decisions import verdict_text
from grid.format import artifact_key, ci, group_label, point_label, power_seeds, pts, pvalue
from grid.spec import GridSpec

_CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:72em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
table{display:block;overflow-x:auto;max-width:100%;font-size:.9em}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.better{color:#080;font-weight:600}
.worse{color:#b00;font-weight:600}.equivalent{color:#05a;font-weight:600}.ns{color:#666}
.samples img{width:22em;margin:.3em;border:1px solid #ddd;cursor:zoom-in;image-rendering:pixelated}
.samples img:focus{width:min(90vw,60em);cursor:zoom-out;outline:none}img{max-width:100%}
figure{display:inline-block;margin:.3em}figcaption{font-size:.85em;text-align:center}"""


def headline(metrics: set[str]) -> str:
    """The metric a regime's verdict speaks of: the rare class's recall when the training split is imbalanced."""
    return "rare_recall" if "rare_recall" in metrics else "accuracy"


def groups(summary: dict) -> list[tuple[str, dict]]:
    seen = []
    for a in summary["arms"]:
        key = (a["regime"], a["point"])
        if key not in seen:
            seen.append(key)
    return seen


def sentence(regime_label: str, arm: str, metric: str, vs_none: dict, vs_dup: dict | None) -> str:
    """Exploratory: "In <regime>, <arm> changes <metric> by X [unadjusted CI] points over the baseline; vs duplicates …"."""
    what = {"accuracy": "test accuracy", "rare_recall": "the rare class's recall", "macro_f1": "macro-F1",
            "macro_precision": "macro precision", "macro_recall": "macro recall"}.get(metric, metric)
    if vs_none["sd"] == 0:  # every seed moved alike: nothing to test, say what happened
        same = "gives exactly the baseline's" if vs_none["mean"] == 0 else f"moves by exactly {pts(vs_none['mean'])} points"
        text = f"In {regime_label}, {arm} {same} {what} on every one of {vs_none['n']} seeds (no spread)"
    else:
        text = (f"In {regime_label}, {arm} changes {what} by {pts(vs_none['mean'])} points {ci(vs_none)} over the baseline "
                f"({vs_none['n']} seeds, unadjusted 95 % CI)")
    if vs_dup is not None and vs_dup["n"] < 2:
        text += "; against duplicating real images: fewer than 2 usable paired seeds"
    elif vs_dup is not None:
        text += f"; against duplicating real images: {pts(vs_dup['mean'])} points {ci(vs_dup)}"
    return text + "."


def verdicts(summary: dict) -> list[tuple[str, list[str]]]:
    """Per regime (and sweep point): the primary comparisons' verdicts in words, then the exploratory arms' estimates."""
    out = []
    for regime, point in groups(summary):
        label = group_label(regime, point)
        decided = [d for d in summary.get("decisions", []) if d["regime"] == regime and d["point"] == point]
        lines = [f"{d['arm']} vs {d['reference']} ({d['metric']}): {verdict_text(d)}." for d in decided]
        judged = {d["arm"] for d in decided}
        rows = [r for r in summary["comparisons"] if r["regime"] == regime and r["point"] == point]
        metric = headline({r["metric"] for r in rows})
        arms = [a for a in summary["arms"] if a["regime"] == regime and a["point"] == point and a["arm"] != "none" and a["arm"] not in judged]
        arms.sort(key=lambda a: a["control"])
        for a in arms:
            find = {r["reference"]: r for r in rows if r["arm"] == a["arm"] and r["metric"] == metric}
            if "none" in find and find["none"]["n"] >= 2:
                lines.append("Exploratory: " + sentence(label, a["arm"], metric, find["none"], find.get("duplicates")))
            elif "none" in find:
                lines.append(f"Exploratory: in {label}, {a['arm']}: fewer than 2 usable paired seeds.")
        out.append((label, lines))
    return out


def _figure(summary: dict, regime: str, point: dict, metric: str) -> str:
    """Mean ± sd per arm and paired Δ vs none with its 95 % t CI, as an embedded PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = [a for a in summary["arms"] if a["regime"] == regime and a["point"] == point and metric in a["metrics"]]
    deltas = {r["arm"]: r for r in summary["comparisons"] if r["regime"] == regime and r["point"] == point
              and r["reference"] == "none" and r["metric"] == metric}
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 0.45 * len(arms) + 1.6))
    names = [a["arm"] for a in arms]
    means = [100 * a["metrics"][metric]["mean"] for a in arms]
    sds = [100 * a["metrics"][metric]["sd"] for a in arms]
    left.barh(names, means, xerr=sds, color=["#999" if a["control"] else "#4878a8" for a in arms], capsize=3)
    left.set_xlabel(f"{metric} (%), mean ± sd over seeds")
    left.invert_yaxis()
    d_names = [n for n in names if n in deltas and deltas[n]["n"] >= 2]
    d = [100 * deltas[n]["mean"] for n in d_names]
    def half(n: str, side: str) -> float:  # no interval when every seed moved alike (no spread): a bare point
        bound = deltas[n][f"t_{side}"]
        return 0.0 if bound is None else 100 * abs(bound - deltas[n]["mean"])

    err = [[half(n, "low") for n in d_names], [half(n, "high") for n in d_names]]
    colours = ["#888"] * len(d_names)  # unadjusted intervals: the verdicts and their deciding intervals are the decision table's
    for i, n in enumerate(d_names):
        right.errorbar([d[i]], [n], xerr=[[err[0][i]], [err[1][i]]], fmt="none", ecolor=colours[i], capsize=3)
    right.scatter(d, d_names, c=colours, zorder=3)
    right.axvline(0, color="#333", lw=0.8)
    right.set_xlabel(f"Δ {metric} vs none (points), paired, unadjusted 95 % CI")
    right.invert_yaxis()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return f'<img alt="{html.escape(metric)} per arm" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _embed_png(path: Path, width: int = 480) -> str:
    """A sample grid shrunk to ``width`` pixels and 64 colours (the stage's PNG is print-sized; a full-colour
    grid is ~3× larger and the committed reports are in git)."""
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        if im.width > width:
            im = im.resize((width, round(im.height * width / im.width)), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        im.quantize(colors=64).save(buf, format="PNG", optimize=True)
    return f"data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}"


def write_report(spec: GridSpec, summary: dict, records: list[dict]) -> str:
    """The whole report as one HTML string: nothing it shows is loaded from anywhere else."""
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>qaug grid {e(spec.name)}</title><style>{_CSS}</style></head><body>",
             f"<h1>qaug grid <code>{e(spec.name)}</code></h1>",
             f"<p>{e(spec.description)}</p>" if spec.description else "",
             f"<p>{summary['cells_finished']} cells finished (of {summary['cells']} the plan allows) · "
             f"stage runs: {e(', '.join(f'{k} {v}' for k, v in summary['stage_runs'].items()))} · differences are in percentage points.</p>",
             f"<p>Judged by: {e(judges(summary.get('classifiers', ['hqcnn'])))}.</p>",
             _decision_table(summary), _pooled_table(summary.get("pooled", []))]
    verdict_map = dict(verdicts(summary))
    for regime, point in groups(summary):
        label = group_label(regime, point)
        rows = [r for r in summary["comparisons"] if r["regime"] == regime and r["point"] == point]
        arms = [a for a in summary["arms"] if a["regime"] == regime and a["point"] == point]
        metric = headline({m for a in arms for m in a["metrics"]})
        parts.append(f"<h2>{e(label)}</h2><ul>" + "".join(f"<li>{e(s)}</li>" for s in verdict_map.get(label, [])) + "</ul>")
        if any(a["metrics"] for a in arms):
            parts.append(_figure(summary, regime, point, metric))
        parts.append(_arm_table(arms, rows, metric))
        parts.append(_judge_note(records, regime, point))
        parts.append(_macro_table(arms))
        left = left_out_text([c for c in summary["collapsed"] if c["regime"] == regime and c["point"] == point])
        if left:
            parts.append(f"<p><b>Seeds left out (a collapsed model: training accuracy near chance):</b> {e(left)}</p>")
        parts.append(_samples(records, regime, point))
    parts.append(_comparison_table(summary["comparisons"]))
    parts.append("<h2>Where the time went</h2><table><tr><th>stage</th><th>seconds (all runs)</th><th>runs</th></tr>" +
                 "".join(f"<tr><td>{e(s)}</td><td>{v:.0f}</td><td>{summary['stage_runs'].get(s, 0)}</td></tr>" for s, v in summary["stage_seconds"].items()) +
                 "</table>")
    if summary["unfinished_cells"]:
        parts.append(f"<details><summary>{len(summary['unfinished_cells'])} unfinished cells (failed, blocked by a failure, or not run yet)"
                     "</summary><ul>" + "".join(f"<li>{e(c)}</li>" for c in summary["unfinished_cells"]) + "</ul></details>")
    if summary["failed"] or summary["blocked"]:
        parts.append("<h2>Failed stage runs</h2><ul>" + "".join(f"<li>{e(k)}: {e(v)}</li>" for k, v in summary["failed"].items()) +
                     "".join(f"<li>{e(k)}: not run (an input failed)</li>" for k in summary["blocked"]) + "</ul>")
    parts.append(f"<p><small>environment: {e(str(summary['environment']))}</small></p></body></html>")
    return "\n".join(parts)


def fewer(row: dict, arm: dict) -> str:
    """A note when a comparison pairs fewer seeds than its arm's mean uses (the other arm's model collapsed on some):
    its Δ is then not the difference of the two printed means."""
    used = arm["seeds"] - arm["collapsed"]
    return f" <small>({row['n']} of {used} seeds: {html.escape(row['excluded'])})</small>" if row["n"] != used and row.get("excluded") else ""


def left_out_text(cells: list[dict]) -> str:
    """Which seeds the statistics of one group leave out and why: a collapsed baseline takes the seed out of every
    arm, a collapsed model out of its own arm and its comparisons."""
    baseline = sorted({c["seed"] for c in cells if c["why"] == "baseline collapsed"})
    parts = [f"seed {s} of every arm (the baseline collapsed)" for s in baseline]
    parts += [f"seed {c['seed']} of {c['arm']} (its model collapsed; also out of the comparisons it is in)"
              for c in cells if c["why"] != "baseline collapsed"]
    return "; ".join(parts)


def _decision_table(summary: dict) -> str:
    """The primary comparisons: the grid's answers, with the family and the rule that controls its error."""
    e, design = html.escape, summary.get("design")
    if not design:
        return ""
    cols = ("comparison", "regime", "metric", "verdict", "seeds", "Δ [deciding CI]", "margin", "P(better) [bootstrap 95 %]", "d_z")
    out = [f"<h2>Decisions</h2><p>{e(summary.get('family', ''))}</p><table><tr>" + "".join(f"<th>{c}</th>" for c in cols) + "</tr>"]
    for d in summary["decisions"]:
        level = f" ({(1 - 2 * d['level']) * 100:.4g} % t)" if d.get("level") is not None and math.isfinite(d["level"]) else ""
        vals = [f"{e(d['arm'])} vs {e(d['reference'])}", e(group_label(d["regime"], d["point"])), e(d["metric"]),
                f"<span class='{e(d['verdict'])}'>{e(verdict_text(d).split(':')[0])}</span>", str(d["n"]),
                f"{pts(d['mean'])} [{pts(d['low'])}, {pts(d['high'])}]{level}", f"±{pts(d['margin'], False)}",
                f"{_share(d.get('p_better'))} [{_share(d.get('p_better_low'))}, {_share(d.get('p_better_high'))}]",
                "—" if d.get("d_z") is None else f"{d['d_z']:.2f}"]
        out.append("<tr>" + "".join(f"<td>{v}</td>" for v in vals) + "</tr>")
    return "".join(out) + "</table>"


def _share(x: float | None) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.2f}"


def _pooled_table(pooled: list[dict]) -> str:
    """Exploratory: one random-effects estimate per method and reference over the regimes (headline metrics only)."""
    shown = [r for r in pooled if r["metric"] in ("accuracy", "rare_recall")]
    if not shown:
        return ""
    e = html.escape
    cols = ("arm", "reference", "metric", "point", "regimes", "pooled Δ [95 % CI, HKSJ]", "τ (between regimes)")
    out = ["<h2>Across regimes (exploratory)</h2><p>Random-effects meta-analysis of each regime's paired mean difference "
           "(DerSimonian–Laird τ², Hartung–Knapp interval): the mean effect over regimes like these; unadjusted.</p><table><tr>"
           + "".join(f"<th>{c}</th>" for c in cols) + "</tr>"]
    for r in shown:
        vals = [r["arm"], r["reference"], r["metric"], point_label(r["point"]) or "—", ", ".join(r["regimes"]),
                f"{pts(r['mean'])} [{pts(r['low'])}, {pts(r['high'])}]", pts(r["tau"], False)]
        out.append("<tr>" + "".join(f"<td>{e(str(v))}</td>" for v in vals) + "</tr>")
    return "".join(out) + "</table>"


def _arm_table(arms: list[dict], rows: list[dict], metric: str) -> str:
    e = html.escape
    cols = ["arm", "seeds (left out)", f"{metric} mean ± sd", "Δ vs none [95 % t CI, unadjusted]", "P(better) vs none",
            "Δ vs duplicates [95 % t CI, unadjusted]", "seeds for 80 % power (α 0.05, unadjusted)", "generated", "label fidelity",
            "FD", "KID", "diversity"]
    out = ["<table><tr>" + "".join(f"<th>{e(c)}</th>" for c in cols) + "</tr>"]
    for a in arms:
        m = a["metrics"]
        find = {r["reference"]: r for r in rows if r["arm"] == a["arm"] and r["metric"] == metric}
        none, dup = find.get("none"), find.get("duplicates")

        def g(k, digits=3):
            return f"{m[k]['mean']:.{digits}f}" if k in m else "—"
        cells = [
            e(a["arm"]) + (" <small>(control)</small>" if a["control"] else ""), f"{a['seeds']} ({a['collapsed']})",
            f"{pts(m[metric]['mean'], False)} ± {pts(m[metric]['sd'], False)}" if metric in m else "—",
            f"{pts(none['mean'])} {ci(none)}{fewer(none, a)}" if none else "",
            _share(none.get("p_better")) if none else "",
            f"{pts(dup['mean'])} {ci(dup)}{fewer(dup, a)}" if dup else "",
            power_seeds(none) if none else "",
            g("generated", 0), e(fidelity(m)), g("frechet_distance"), g("kid", 4), g("diversity"),
        ]
        out.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return "".join(out) + "</table>"


def fidelity(m: dict) -> str:
    """An arm's mean label fidelity, with the seeds it covers when the judge could not measure it on every scored seed."""
    lf, scored = m.get("label_fidelity"), m.get("judge_accuracy", {}).get("n", 0)
    if lf is None:
        return "not measured" if scored else "—"
    return f"{lf['mean']:.3f}" + (f" ({lf['n']} of {scored} seeds)" if lf["n"] < scored else "")


def _judge_note(records: list[dict], regime: str, point: dict) -> str:
    """The label-fidelity judge of this group: its test accuracy over seeds and every class it could not recognise."""
    seeds = {r["seed"]: r for r in records if r["regime"] == regime and r["point"] == point and r.get("judge")}
    if not seeds:
        return ""
    accuracy = [r["generation"]["judge_accuracy"] for r in seeds.values()]
    text = (f"Label fidelity is judged by a small CNN trained class-balanced on each seed's real training split: test accuracy "
            f"{statistics.mean(accuracy):.3f} ± {statistics.stdev(accuracy) if len(accuracy) > 1 else 0.0:.3f} over {len(accuracy)} seeds.")
    floor = next(iter(seeds.values()))["judge"]["floor"]
    for c in dict.fromkeys(c for r in seeds.values() for c in r["judge"]["unjudged"]):
        missed = {s: r["judge"]["test_recall"][c] for s, r in sorted(seeds.items()) if c in r["judge"]["unjudged"]}
        text += (f" Label fidelity not measured for class {c} in seed{'s' if len(missed) > 1 else ''} "
                 f"{', '.join(f'{s} (recall {_num(v)})' for s, v in missed.items())}: the judge's test recall for it is below "
                 f"{floor}, so it cannot tell good samples of the class from bad; those seeds' pooled label fidelity is left out when "
                 "they generated that class.")
    return f"<p><small>{html.escape(text)}</small></p>"


def _judge_lines(arms: list[dict]) -> list[str]:
    """The label-fidelity judge's test accuracy and, when it could not measure every seed, that it left seeds out."""
    scored = [a["metrics"] for a in arms if "judge_accuracy" in a["metrics"]]
    if not scored:
        return []
    partial = any(m.get("label_fidelity", {}).get("n", 0) < m["judge_accuracy"]["n"] for m in scored)
    return [f"- Label fidelity judged by a class-balanced small CNN, test accuracy {scored[0]['judge_accuracy']['mean']:.3f} (mean over seeds)"
            + ("; seeds where it could not recognise a class they generated are left out (report.html names the classes)." if partial else ".")]


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def judges(classifiers: list[str]) -> str:
    """Which classifier's test scores the grid compares, and what its ``none`` control is."""
    words = {"hqcnn": "the HQCNN (baseline settings; none = train_baseline's model, the one that also filters the samples)"}
    return "; ".join(words.get(c, f"{c} trained by evaluate (evaluate settings; none = the same {c} trained on the real "
                                  "images alone: stage resnet_baseline, the baseline every method's evaluate of the seed reads)") for c in classifiers)


_MACRO = (("accuracy", "accuracy"), ("macro_precision", "macro precision"), ("macro_recall", "macro recall"), ("macro_f1", "macro-F1"))


def _macro_table(arms: list[dict]) -> str:
    """Accuracy and macro precision / recall / F1, mean ± sd per arm (HybridQ's Table 2 layout)."""
    shown = [(k, name) for k, name in _MACRO if any(k in a["metrics"] for a in arms)]
    if not shown:
        return ""
    head = "".join(f"<th>{name} (%)</th>" for _, name in shown)
    body = "".join(
        f"<tr><td>{html.escape(a['arm'])}</td>" + "".join(
            f"<td>{pts(a['metrics'][k]['mean'], False)} ± {pts(a['metrics'][k]['sd'], False)}</td>" if k in a["metrics"] else "<td>—</td>"
            for k, _ in shown) + "</tr>"
        for a in arms)
    return f"<table><tr><th>arm</th>{head}</tr>{body}</table>"


def _samples(records: list[dict], regime: str, point: dict) -> str:
    """One accepted-sample grid per method (its lowest seed)."""
    first: dict[str, dict] = {}
    for r in sorted(records, key=lambda r: r["seed"]):
        if r["regime"] == regime and r["point"] == point and r.get("samples") and r["arm"] not in first and Path(r["samples"]).is_file():
            first[r["arm"]] = r
    if not first:
        return ""
    figs = "".join(f"<figure><img tabindex='0' alt='{html.escape(a)}' src='{_embed_png(Path(r['samples']))}'><figcaption>{html.escape(a)} (seed {r['seed']})</figcaption></figure>"
                   for a, r in first.items())
    return f"<div class='samples'><h3>Accepted samples <small>(click one to enlarge)</small></h3>{figs}</div>"


def _comparison_table(rows: list[dict]) -> str:
    e = html.escape
    cols = ("regime", "point", "arm", "reference", "metric", "role", "n", "mean", "t CI (unadjusted)", "bootstrap CI", "p (t, unadjusted)",
            "p (Wilcoxon)", "d_z", "P(better)", "verdict")
    out = ["<details><summary>Every comparison (all metrics; a verdict only for the primary ones; Wilcoxon — where the exact "
           "test cannot reach p &lt; 0.05 at that many seeds)</summary><table><tr>" + "".join(f"<th>{c}</th>" for c in cols) + "</tr>"]
    for r in rows:
        vals = [r["regime"], point_label(r["point"]), r["arm"], r["reference"], r["metric"], r.get("role", ""), r["n"],
                pts(r["mean"]), ci(r), ci(r, "boot"), pvalue(r["p_t"]), pvalue(r["p_wilcoxon"]),
                "—" if r.get("d_z") is None or not math.isfinite(r["d_z"]) else f"{r['d_z']:.2f}", _share(r.get("p_better")), r.get("verdict", "")]
        out.append("<tr>" + "".join(f"<td>{e(str(v))}</td>" for v in vals) + "</tr>")
    return "".join(out) + "</table></details>"


def markdown(summary: dict) -> str:
    """The decisions, then per regime the headline metric's table (exploratory), as Markdown (docs/results.md, Prefect artifact)."""
    lines = [f"Judged by {judges(summary.get('classifiers', ['hqcnn']))}.", "", summary.get("family", ""), "",
             "| comparison | regime | metric | verdict | seeds | Δ [deciding CI] | margin | P(better) |", "|---|---|---|---|---:|---:|---:|---:|"]
    for d in summary.get("decisions", []):
        lines.append(f"| {d['arm']} vs {d['reference']} | {group_label(d['regime'], d['point'])} | {d['metric']} | "
                     f"{verdict_text(d).split(':')[0]} | {d['n']} | {pts(d['mean'])} [{pts(d['low'])}, {pts(d['high'])}] | "
                     f"±{pts(d['margin'], False)} | {_share(d.get('p_better'))} |")
    lines.append("")
    for (regime, point), (label, sentences) in zip(groups(summary), verdicts(summary)):
        arms = [a for a in summary["arms"] if a["regime"] == regime and a["point"] == point]
        metric = headline({m for a in arms for m in a["metrics"]})
        lines += [f"**{label}** ({metric}, percentage points; exploratory: unadjusted 95 % t CIs)", "",
                  "| arm | seeds (left out) | mean ± sd | Δ vs none | P(better) | Δ vs duplicates | label fidelity |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for a in arms:
            rows = {r["reference"]: r for r in summary["comparisons"] if r["regime"] == regime and r["point"] == point
                    and r["arm"] == a["arm"] and r["metric"] == metric}
            m, none, dup = a["metrics"].get(metric), rows.get("none"), rows.get("duplicates")
            lines.append("| " + " | ".join([
                a["arm"], f"{a['seeds']} ({a['collapsed']})", f"{pts(m['mean'], False)} ± {pts(m['sd'], False)}" if m else "—",
                f"{pts(none['mean'])} {ci(none)}" if none else "", _share(none.get("p_better")) if none else "",
                f"{pts(dup['mean'])} {ci(dup)}" if dup else "", fidelity(a["metrics"])]) + " |")
        lines += ["", *[f"- {s}" for s in sentences], *_judge_lines(arms), ""]
    return "\n".join(lines)


def publish(spec: GridSpec, summary: dict, out: Path) -> None:
    """The verdicts and the headline comparisons on the flow run's Artifacts tab."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    key = artifact_key("grid", spec.name)
    head = f"# qaug grid {spec.name}\n\n{summary['cells_finished']}/{summary['cells']} cells; report: `{out / 'report.html'}`\n\n"
    create_markdown_artifact(key=f"{key}-verdicts", markdown=head + markdown(summary), description=f"grid {spec.name}: verdicts")
    table = [{k: (round(v, 4) if isinstance(v, float) and math.isfinite(v) else v) for k, v in r.items() if k not in ("excluded_seeds",)}
             | {"point": point_label(r["point"])}
             for r in summary["comparisons"] if r["metric"] in ("accuracy", "macro_f1", "rare_recall")]
    if table:
        create_table_artifact(key=f"{key}-comparisons", table=table, description=f"grid {spec.name}: paired differences vs none and duplicates")
