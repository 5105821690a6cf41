"""Which settings change a stage's output bytes, and what each costs in time: the same stage under thread
counts and CPU code-path pins, each in a fresh process, one after another in this run.

Settings: torch intra-op threads (OMP_NUM_THREADS), ATen's vector kernels (ATEN_CPU_CAPABILITY), oneDNN's
convolution kernels (ONEDNN_MAX_CPU_ISA) and MKL's GEMM code path (MKL_CBWR). A setting "matters" when the
stage's output hash differs from the pinned reference's.

Run: python bench/determinism.py [--stage train_baseline] [--params params.yaml]
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

PIN = {**THREADS, **CODE_PATHS}  # what qaug.reproducible.pin sets on an AVX2 machine
VARIANTS = {
    "qaug's pins": {},
    "2 threads": {"OMP_NUM_THREADS": "2"},
    "ATen at the CPU's best (AVX-512 here)": {"ATEN_CPU_CAPABILITY": None},
    "oneDNN at the CPU's best": {"ONEDNN_MAX_CPU_ISA": None},
    "MKL at the CPU's best": {"MKL_CBWR": None},
    "no pins (torch defaults)": dict.fromkeys(PIN),
}
REPRO = {"QAUG_REPRODUCIBLE": "0"}  # qaug's CLI would otherwise re-pin what a variant unpins


def run(stage: str, project: Path, env_changes: dict) -> tuple[float, dict[str, str]]:
    env = dict(os.environ, **PIN, **REPRO)
    for key, value in env_changes.items():
        env.pop(key, None) if value is None else env.__setitem__(key, value)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "qaug.cli", "stage", stage], cwd=project, env=env, check=True, stdout=subprocess.DEVNULL)
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
    parser.add_argument("--stage", default="train_baseline", choices=NAMES)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        shutil.copy(args.params, project / "params.yaml")
        for name in NAMES[: NAMES.index(args.stage)]:  # the stage's inputs, made once
            run(name, project, {})
        reference = None
        for label, changes in VARIANTS.items():
            seconds, hashes = run(args.stage, project, changes)
            reference = reference or hashes
            same = "same bytes" if hashes == reference else "DIFFERENT: " + ", ".join(k for k in hashes if hashes[k] != reference[k])
            print(f"{args.stage:15s} {label:40s} {seconds:6.1f} s  {same}", flush=True)


if __name__ == "__main__":
    main()
