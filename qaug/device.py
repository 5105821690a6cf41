"""The ``device`` setting: where every trained model of a stage runs (``auto | cpu | cuda | cuda:N``).

Models are built and seeded on the CPU, then moved; every random draw stays on CPU generators and its result
is moved, so a model starts from the same weights and sees the same batches on any device, and a CPU run is
byte for byte what it was before the setting existed. The device a stage used is recorded in every metrics
file it writes (``environment.device``, via :func:`describe`). Shot-based backends (aer, fake devices, IBM)
run their circuits on the CPU whatever this says.
"""

from __future__ import annotations

import re
from typing import Any

import torch

from qaug.params import ParamsError

SPEC = re.compile(r"auto|cpu|cuda(:\d+)?")
_selected = torch.device("cpu")


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
    """The stage's device from params.yaml's top-level ``device`` (default auto), remembered for the metrics."""
    global _selected
    _selected = resolve(raw.get("device", "auto"))
    return _selected


def describe(device: torch.device | None = None) -> str:
    """"cpu", or "cuda:0 (NVIDIA H200)": what a metrics file records."""
    device = _selected if device is None else device
    if device.type != "cuda":
        return device.type
    return f"cuda:{device.index or 0} ({torch.cuda.get_device_name(device)})"
