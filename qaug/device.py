"""The ``device`` setting: where every trained model of a stage runs (``auto | cpu | cuda | cuda:N``).

Models are built and seeded on the CPU, then moved; every random draw stays on CPU generators and its result
is moved, so a model starts from the same weights and sees the same batches on any device, and a CPU run is
byte for byte what it was before the setting existed. A stage passes the device its model ran on to
``write_metrics``, which records it (``environment.device``, via :func:`describe`; stages without a model
record the CPU). Shot-based backends (aer, fake devices, IBM) run their circuits on the CPU whatever this says.
On CUDA a stage also asks for repeatable kernels (:func:`repeatable_cuda`); bytes are promised on the CPU,
and on a GPU repeat where PyTorch has deterministic kernels for everything a model runs.
"""

from __future__ import annotations

import os
import re
from typing import Any

import torch

from qaug import reproducible
from qaug.params import ParamsError

SPEC = re.compile(r"auto|cpu|cuda(:\d+)?")


def resolve(spec: str, cuda_devices: int | None = None) -> torch.device:
    """``auto`` is the first CUDA GPU when there is one, else the CPU; ``cuda[:N]`` must exist. ``cuda_devices``
    stands in for ``torch.cuda.device_count()`` (tests)."""
    if not isinstance(spec, str) or not SPEC.fullmatch(spec):
        raise ParamsError(f"params.yaml: device must be auto, cpu, cuda or cuda:N, got {spec!r}")
    count = torch.cuda.device_count() if cuda_devices is None else cuda_devices
    if spec == "auto":
        return torch.device("cuda:0" if count else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    index = int(spec.partition(":")[2] or 0)
    if index >= count:
        have = f"{count} CUDA GPU(s)" if count else "no CUDA GPU (torch.cuda.is_available() is False)"
        raise ParamsError(f"params.yaml: device is {spec} but this machine has {have}; set device: auto or cpu")
    return torch.device("cuda", index)


def device_of(raw: dict[str, Any]) -> torch.device:
    """The stage's device from params.yaml's top-level ``device`` (default auto)."""
    device = resolve(raw.get("device", "auto"))
    if device.type == "cuda" and reproducible.enabled():  # (the CPU's code paths are pinned in qaug.reproducible)
        repeatable_cuda()
    return device


def repeatable_cuda() -> None:
    """Run-to-run repeats on a GPU: cuDNN's deterministic convolutions, PyTorch's deterministic kernels for the
    scatter- and index-adds of the circuits' backward passes, a fixed cuBLAS workspace. Measured on an H200: two
    runs of every stage otherwise differed from the first trained model on; with these, an HQCNN and a HybridQ
    trained twice agreed to the bit. Ops with no deterministic CUDA kernel (bilinear upsampling's backward, NLL
    loss) still run, with a warning each (``warn_only``), so a repeat is measured, not guaranteed. The cuBLAS
    setting must precede the process's first cuBLAS call: stages set it before building any model."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    torch.use_deterministic_algorithms(True, warn_only=True)
    # qaug reads no tensor before writing it; filling every new tensor with NaN would cost a kernel each
    torch.utils.deterministic.fill_uninitialized_memory = False


def describe(device: torch.device | str = "cpu") -> str:
    """"cpu", or "cuda:0 (NVIDIA H200)": what a metrics file records."""
    device = torch.device(device)
    if device.type != "cuda":
        return device.type
    return f"cuda:{device.index or 0} ({torch.cuda.get_device_name(device)})"
