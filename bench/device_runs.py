"""The HybridQ protocol through every stage on one device, twice: which outputs repeat byte for byte, and the
time each stage takes.

Data: synthetic 64×64 RGB images (three classes told apart by their dominant channel, made here). Params:
params.yaml with the HybridQ generator (scaled down by --scale), a ResNet-18 judge trained from scratch,
mixing ratio α 0.5 and ``device`` as given. Both runs use the same params in fresh folders; a stage's outputs
"repeat" when every file it writes has the same SHA-256 in both. qaug promises repeats on the CPU; on a GPU,
atomics in scatter-adds may differ in the last bits (``qaug.device``), and this measures whether they do.

Run: python bench/device_runs.py [--device cuda] [--steps 40]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import yaml

from qaug.reproducible import pin

pin()
PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))  # tests/ (its synthetic colour images) is not installed with qaug

from tasks.layout import files, rooted  # noqa: E402
from tasks.stages import STAGES  # noqa: E402
from tests.pipeline_helpers import colour_folder  # noqa: E402


def params(images: Path, device: str, steps: int) -> dict:
    raw = yaml.safe_load((PROJECT / "params.yaml").read_text())
    raw["device"] = device
    raw["ingest"].update(source="folder", root=str(images), classes=[], channels="rgb", image_size=64,
                         train_per_class=30, val_per_class=10, test_per_class=20)
    raw["baseline"].update(epochs=2, max_restarts=0)
    raw["qgan"].update(model="hybridq", steps=steps, batch_size=16)
    raw["hybridq"].update(sub_generators=5, qubits=8, layers=4)
    raw["augment"].update(strategy="general", n_gen=90)
    raw["filter"].update(min_accepted_fraction=0.0)
    raw["merge"] = {"mixing_ratio": 0.5}
    raw["evaluate"] = {"classifier": "resnet18", "weights": None, "epochs": 5, "batch_size": 16, "lr": 0.001}
    return raw


def digests(root: Path, stage) -> dict[str, str]:
    outs = files(rooted(stage.paths_object(), root), "out")
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in outs if p.is_file()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", help="params.yaml device: auto, cpu, cuda or cuda:N")
    parser.add_argument("--steps", type=int, default=40, help="HybridQ training steps")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        colour_folder(tmp / "images", per_class=60)
        raw = params(tmp / "images", args.device, args.steps)
        runs = [tmp / "a", tmp / "b"]
        seconds: dict[str, list[float]] = {}
        for root in runs:
            for stage in STAGES:
                start = time.perf_counter()
                stage.run(raw, root)
                seconds.setdefault(stage.name, []).append(time.perf_counter() - start)
        device = json.loads((runs[0] / "metrics/generator.json").read_text())["environment"]["device"]
        print(f"device {device}")
        print(f"{'stage':<18} {'run 1 s':>8} {'run 2 s':>8}  outputs repeat")
        for stage in STAGES:
            first, second = (digests(root, stage) for root in runs)
            differ = sorted(p for p in first if first[p] != second.get(p))
            verdict = "yes" if not differ else "no: " + ", ".join(differ)
            print(f"{stage.name:<18} {seconds[stage.name][0]:>8.1f} {seconds[stage.name][1]:>8.1f}  {verdict}")
        comparison = json.loads((runs[0] / "metrics/comparison.json").read_text())
        print("ResNet-18 accuracy: real only", comparison["baseline"]["accuracy"], "· augmented", comparison["augmented"]["accuracy"])


if __name__ == "__main__":
    main()
