"""Would the test suite notice a broken method? Plant one bug at a time in a scratch copy of the repo and
run the tests that cover the planted code; a bug is caught when some test fails.

The first seven are the bugs a review planted in the method's code (each passed every test then); the
rest are ones of the same kind. Run: python bench/planted_bugs.py [--only NAME ...]  (several minutes a bug:
the stage tests first run the tiny pipeline).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES, CORE = "tests/test_stages.py", "tests/test_method_core.py"

# name: (file, original text, planted text, tests that cover the file)
BUGS = {
    "filter accepts regardless of its threshold": (
        "tasks/filter.py", "return (probs.argmax(1) == cls) & (probs[:, cls] >= threshold)", "return probs.argmax(1) == cls", [STAGES]),
    "every regeneration round reuses one seed": (
        "tasks/filter.py", 'sample_seed(seed, "filter", c, rounds)', 'sample_seed(seed, "filter", c, 1)', [STAGES]),
    "merged generated labels shifted by one": (
        "tasks/merge.py", 'labels = np.concatenate([train.labels, acc["labels"]])',
        'labels = np.concatenate([train.labels, np.roll(acc["labels"], 1)])', [STAGES]),
    "augmented model retrained with another seed": (
        "tasks/evaluate.py", "result = fit(params, seed, merged, device)", "result = fit(params, seed + 1, merged, device)", [STAGES]),
    "weight average never applied": (
        "qmodels/adversarial.py", "        ema.copy_to_module()", "        pass", [CORE, "tests/test_models.py"]),
    "R1 penalty's sign flipped": (
        "qmodels/adversarial.py", "loss = loss + r1_gamma / 2", "loss = loss - r1_gamma / 2", [CORE, "tests/test_models.py"]),
    "WGAN-GP interpolates across classes": (
        "qmodels/adversarial.py", "return fake.view(-1, per_class, *fake.shape[1:])[real_labels, index]",
        "return fake[torch.arange(len(real_labels)) % len(fake)]", [CORE, "tests/test_models.py"]),
    "error-weight mix λ swapped": (
        "tasks/train_generator.py", "(1 - error_weight) / C + error_weight * r", "error_weight / C + (1 - error_weight) * r", [CORE, STAGES]),
    "filter thresholds use β for weak classes too": (
        "tasks/filter.py", "tau - alpha * r if r > mean", "tau - beta * r if r > mean", [STAGES]),
    "open controls read as closed (the executor's old bug)": (
        "qmodels/gates.py", "gate.ctrl_state if isinstance(gate, ControlledGate) else None", "None", ["tests/test_executor.py"]),
}


def fails(tests: list[str], change: tuple[str, str, str] | None = None) -> bool:
    """Whether ``tests`` fail in a scratch copy of the repo with ``change`` (file, original, planted) made."""
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp) / "repo"
        shutil.copytree(ROOT, scratch, ignore=shutil.ignore_patterns(".venv", ".git", ".dvc", "grids", "data", "models", ".prefect"))
        if change:
            path, original, planted = change
            source = (scratch / path).read_text()
            if source.count(original) != 1:
                raise SystemExit(f"the text to change is not (exactly once) in {path}; update the bug list")
            (scratch / path).write_text(source.replace(original, planted))
        env = dict(os.environ, PYTHONPATH=str(scratch))  # the scratch copy's modules, not the installed ones
        proc = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests], cwd=scratch,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=3600)
        return proc.returncode != 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", default=list(BUGS), choices=list(BUGS), metavar="NAME")
    args = parser.parse_args()
    covering = sorted({t for name in args.only for t in BUGS[name][3]})
    if fails(covering):  # the control: without a bug every covering test passes, so a failure below is the bug's
        raise SystemExit(f"the unchanged copy already fails {covering}; fix that first")
    caught = 0
    for name in args.only:
        path, original, planted, tests = BUGS[name]
        hit = fails(tests, (path, original, planted))
        caught += hit
        print(f"{'caught ' if hit else 'MISSED '} {name}", flush=True)
    print(f"{caught} of {len(args.only)} planted bugs caught")
    sys.exit(0 if caught == len(args.only) else 1)


if __name__ == "__main__":
    main()
