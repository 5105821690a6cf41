"""The pipeline's stages in order (the eight of the method plus the score_generated and resnet_baseline side stages): name, module,
params sections, paths and code deps.

``dvc.yaml`` mirrors this table (``tests/test_dvc.py`` keeps them in step, and checks
that ``code`` lists every project module a stage imports), the
CLI's ``qaug stage NAME`` and the Prefect flow run stages through it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from qaug.params import ParamsError, lookup, section
from qaug.io import remove_leftovers
from tasks.layout import files, rooted

def _files(*paths: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(paths))  # order kept, repeats dropped


_CORE = ("qmodels/circuits.py", "qmodels/gates.py", "qmodels/kernels.py", "qmodels/executor.py", "qmodels/layer.py",
         "qmodels/cuda_graphs.py")
_HQCNN = ("tasks/classifier.py", "qaug/data.py", "qaug/metrics.py", "qmodels/hqcnn.py", "qmodels/progress.py", *_CORE)
_GENERATORS = ("tasks/methods.py", "qaug/resample.py", "qmodels/classical_gan.py", "qmodels/hybrid_qgan.py", "qmodels/hybridq.py",
               "qmodels/mosaiq.py", "qmodels/subgenerators.py", "qmodels/qgan.py", "qmodels/adversarial.py", "qmodels/counts.py", "qmodels/ema.py",
               "qmodels/wgan.py", "qmodels/progress.py", *_CORE)
_DEVICE = ("qaug/device.py", "qaug/reproducible.py")
_CHECKS = ("tasks/quality.py", "qaug/checks.py")
_BACKENDS = ("tasks/quantum.py", "tasks/journal.py", "qmodels/backends.py", "qmodels/runtime.py")
_RESNET = ("tasks/resnet_judge.py", "qaug/data.py", "qaug/metrics.py", "qmodels/resnet.py", "qmodels/progress.py")


@dataclass(frozen=True)
class Stage:
    name: str
    module: str
    params: tuple[str, ...]  # params.yaml keys the stage reads
    paths: str  # name of the stage module's paths dataclass
    code: tuple[str, ...]  # source files whose edits rerun the stage
    quantum: Literal["", "classifier", "generator"] = ""  # whose circuits it runs on ``quantum.backend``
    # params keys read only when another key is set (key → that key): DVC lists them always, a grid keys runs by them only then
    read_if: tuple[tuple[str, str], ...] = ()
    # data the stage reads from outside the pipeline: dvc.yaml deps (templated from params.yaml), and the
    # "module:function" that digests their content for grid run keys (a path in a key would go stale)
    external: tuple[str, ...] = ()
    content: str = ""

    def params_read(self, raw: dict) -> tuple[str, ...]:
        """The params keys that shape this run's outputs under ``raw``."""
        unused = {key for key, condition in self.read_if if not lookup(raw, condition)}
        return tuple(k for k in self.params if k not in unused)

    def content_digest(self, raw: dict) -> str:
        """A digest of the external data this run would read under ``raw`` (for stages with ``content``)."""
        module, function = self.content.split(":")
        return getattr(importlib.import_module(module), function)(raw)

    def paths_object(self) -> object:
        return getattr(importlib.import_module(self.module), self.paths)()

    def parse(self, raw: dict) -> tuple:
        """The stage's typed params (raises ParamsError naming the bad key)."""
        return importlib.import_module(self.module).parse(raw)

    def run(self, raw: dict, root: Path = Path(".")) -> dict:
        """Run the stage with params ``raw`` (params.yaml as a dict) under ``root``; returns a summary.

        Temporaries an earlier, killed run of the stage left next to its outputs go first (only this stage
        writes there; DVC runs one stage at a time)."""
        remove_leftovers(files(rooted(self.paths_object(), root), "out"))
        return importlib.import_module(self.module).main(raw, root)


STAGES: tuple[Stage, ...] = (
    Stage("ingest", "tasks.ingest", ("seed", "ingest"), "IngestPaths",
          ("tasks/ingest.py", "qaug/data.py", "qaug/images.py", "qaug/medmnist.py", "qaug/ground_truth.py"),
          external=("${ingest.root}", "requirements.lock"), content="tasks.source:digest"),
    Stage("train_baseline", "tasks.train_baseline", ("seed", "device", "baseline"), "BaselinePaths",
          ("tasks/train_baseline.py", *_DEVICE, *_HQCNN)),
    Stage("analyze_errors", "tasks.analyze_errors", ("analysis", "quantum", "device"), "AnalysisPaths",
          ("tasks/analyze_errors.py", *_DEVICE, *_HQCNN, *_BACKENDS), quantum="classifier"),
    Stage("train_generator", "tasks.train_generator",
          ("seed", "device", "qgan", "hybridq", "mosaiq", "augment.method", "augment.rotation", "augment.translate", "augment.contrast", "metrics"),
          "GeneratorPaths",
          ("tasks/train_generator.py", *_DEVICE, "qaug/plots.py", "qaug/generation_metrics.py", "qaug/inception.py", "qmodels/classical.py",
           *_GENERATORS),
          read_if=(("metrics", "qgan.score_every"),),  # Inception settings matter to training only when it scores
          content="tasks.source:scoring_weights"),
    Stage("generate", "tasks.generate", ("seed", "device", "augment", "checks", "quantum"), "GeneratePaths",
          _files("tasks/generate.py", *_DEVICE, *_GENERATORS, *_CHECKS, *_BACKENDS), quantum="generator"),
    Stage("filter", "tasks.filter", ("seed", "device", "filter", "checks", "quantum"), "FilterPaths",
          _files("tasks/filter.py", *_DEVICE, "tasks/generate.py", "qaug/plots.py", *_GENERATORS, *_HQCNN, *_CHECKS, *_BACKENDS),
          quantum="generator"),
    Stage("score_generated", "tasks.score_generated", ("seed", "device", "metrics"), "ScorePaths",
          ("tasks/score_generated.py", *_DEVICE, "qaug/generation_metrics.py", "qaug/inception.py", "qmodels/classical.py"),
          content="tasks.source:inception_weights"),
    Stage("merge", "tasks.merge", ("seed", "merge", "checks"), "MergePaths", ("tasks/merge.py", "qaug/data.py", "qmodels/counts.py", *_CHECKS)),
    # the real-only ResNet evaluate compares with (a record and nothing trained under the HQCNN judge)
    Stage("resnet_baseline", "tasks.resnet_baseline", ("seed", "device", "evaluate"), "ResNetBaselinePaths",
          ("tasks/resnet_baseline.py", *_DEVICE, *_RESNET), content="tasks.source:evaluate_weights"),
    Stage("evaluate", "tasks.evaluate", ("seed", "device", "baseline", "evaluate", "quantum"), "EvaluatePaths",
          _files("tasks/evaluate.py", *_DEVICE, "qaug/plots.py", "tasks/resnet_baseline.py", *_RESNET, *_HQCNN, *_BACKENDS),
          quantum="classifier", content="tasks.source:evaluate_weights"),
)
NAMES = tuple(s.name for s in STAGES)


def check_params(raw: dict) -> None:
    """Parse every stage's params, so a bad value (or a misspelt section) fails before any stage runs."""
    known = {key.split(".")[0] for stage in STAGES for key in stage.params}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ParamsError(f"params.yaml: unknown section(s) {', '.join(unknown)} (sections: {', '.join(sorted(known))})")
    for stage in STAGES:
        stage.parse(raw)


# Prefect tag on the task runs of quantum stages sent to IBM. A tag concurrency limit
# (`prefect concurrency-limit create ibm-quantum 2`) caps how many of them, across every
# flow run on the server, hold IBM jobs at once; each such stage runs its jobs one after another.
IBM_TAG = "ibm-quantum"


def tags(name: str, raw: dict) -> list[str]:
    """Prefect tags for stage ``name`` under params ``raw``: ``ibm-quantum`` only where circuits go to IBM
    (the generator's circuits exist only for ``augment.method: qgan``)."""
    from tasks.methods import AugmentParams
    from tasks.quantum import QuantumParams

    kind = get(name).quantum
    circuits = kind == "classifier" or (kind == "generator" and section(AugmentParams, raw, "augment").method == "qgan")
    ibm = circuits and section(QuantumParams, raw, "quantum").ibm
    return ["qaug", IBM_TAG] if ibm else ["qaug"]


def writer(path: Path) -> str | None:
    """The stage that writes ``path`` (relative to the project root), if any."""
    for stage in STAGES:
        if Path(path) in files(stage.paths_object(), "out"):
            return stage.name
    return None


def get(name: str) -> Stage:
    for stage in STAGES:
        if stage.name == name:
            return stage
    raise KeyError(f"unknown stage {name!r}; stages: {', '.join(NAMES)}")
