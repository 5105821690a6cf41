"""Which settings change a stage's output bytes, and what each costs in time: the same stage under thread
counts and CPU code-path pins, each in a fresh process, one after another in this run.

Settings: torch intra-op threads (OMP_NUM_THREADS), ATen's vector kernels (ATEN_CPU_CAPABILITY), oneDNN's
convolution kernels (ONEDNN_MAX_CPU_ISA), MKL's GEMM code path (MKL_CBWR) and
torch.use_deterministic_algorithms(True). A setting "matters" when the stage's output hash differs from the
pinned reference's. Every variant reads the same inputs (made once, pinned), so each stage is compared alone.

Run: python bench/determinism.py [--stage train_baseline | --stage all [--from STAGE]] [--params params.yaml]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from qaug.reproducible import CODE_PATHS, THREADS
from tasks.layout import files
from tasks.stages import NAMES, get

DETERMINISTIC = "_BENCH_DETERMINISTIC_ALGORITHMS"  # read by the launcher below, not by qaug
PIN = {**THREADS, **CODE_PATHS}  # what qaug.reproducible.pin sets on an AVX2 machine
VARIANTS = {
    "qaug's pins": {},
    "2 threads": {"OMP_NUM_THREADS": "2"},
    "ATen at the CPU's best (AVX-512 here)": {"ATEN_CPU_CAPABILITY": None},
    "oneDNN at the CPU's best": {"ONEDNN_MAX_CPU_ISA": None},
    "MKL at the CPU's best": {"MKL_CBWR": None},
    "no pins (torch defaults)": dict.fromkeys(PIN),
    "pins + use_deterministic_algorithms": {DETERMINISTIC: "1"},
}
LAUNCH = (
    "import os, sys, torch\n"
    f"torch.use_deterministic_algorithms(os.environ.get('{DETERMINISTIC}') == '1')\n"
    "from cli.main import main\n"
    "sys.exit(main(sys.argv[1:]))"
)
REPRO = {"QAUG_REPRODUCIBLE": "0"}  # qaug's CLI would otherwise re-pin what a variant unpins


def run(stage: str, project: Path, env_changes: dict) -> tuple[float, dict[str, str]]:
    env = dict(os.environ, **PIN, **REPRO)
    for key, value in env_changes.items():
        env.pop(key, None) if value is None else env.__setitem__(key, value)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", LAUNCH, "stage", stage], cwd=project, env=env, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    outs = [p for p in files(get(stage).paths_object(), "out") if p.suffix in (".pt", ".npz", ".json")]
    return seconds, {str(p): _digest(project / p) for p in outs}


def _digest(path: Path) -> str:
    """The file's hash; for metrics, without the environment they record (which names the variant itself)."""
    data = path.read_bytes()
    if path.suffix == ".json":
        obj = json.loads(data)
        if isinstance(obj, dict):
            obj.pop("environment", None)
        data = json.dumps(obj, sort_keys=True).encode()
    return hashlib.sha256(data).hexdigest()[:12]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", default="train_baseline", choices=[*NAMES, "all"])
    parser.add_argument("--from", dest="first", choices=NAMES, help="with --stage all: start at this stage (its inputs are made first)")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        shutil.copy(args.params, project / "params.yaml")
        stages = list(NAMES[NAMES.index(args.first or NAMES[0]):]) if args.stage == "all" else [args.stage]
        for name in NAMES[: NAMES.index(stages[0])]:  # the first stage's inputs, made once
            run(name, project, {})
        for stage in stages:
            reference = None
            for label, changes in VARIANTS.items():  # the pinned variant runs first and last: later stages read its outputs
                seconds, hashes = run(stage, project, changes)
                reference = reference or hashes
                same = "same bytes" if hashes == reference else "DIFFERENT: " + ", ".join(k for k in hashes if hashes[k] != reference[k])
                print(f"{stage:15s} {label:40s} {seconds:6.1f} s  {same}", flush=True)
            run(stage, project, {})


if __name__ == "__main__":
    main()
