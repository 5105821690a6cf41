"""Same params, data and code → the same bytes, on this machine and on another x86-64 one.

What else a stage's numbers depend on, measured with ``bench/determinism.py`` (README,
"Reproducibility"): the torch thread count (reduction order) and the CPU code paths of
ATen's vector kernels, oneDNN's convolutions and MKL's GEMMs (AVX-512 and AVX2 round
differently). :func:`pin` fixes all of them, before torch is imported, in every process
that runs a stage (the CLI, grid workers, the test session); :func:`environment` is what
each metrics file records of it. numpy's and scipy's OpenBLAS pick their kernels from the CPU
and nothing pins them, so no stage computes its numbers with them (``qaug.generation_metrics``
does its linear algebra in torch). On a GPU, stages ask for repeatable kernels instead
(``qaug.device.repeatable_cuda``). ``QAUG_REPRODUCIBLE=0`` leaves the machine's and torch's
defaults (faster on big models and on a GPU, different bytes) and is recorded too.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

# AVX2 is the code path most x86-64 machines of the last decade share (AVX-512 is not on AMD before Zen 4
# nor on Intel client CPUs; some low-end ones lack AVX2, and keep their defaults); one intra-op thread is
# also the fastest for qaug's tiny circuits.
THREADS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
CODE_PATHS = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"}


def _has_avx2() -> bool:
    """torch takes ATEN_CPU_CAPABILITY on trust: asking a CPU without AVX2 for it would crash, so ask the CPU."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: leave the code paths to the libraries
        return False
    return " avx2" in flags and " fma" in flags


def enabled() -> bool:
    return os.environ.get("QAUG_REPRODUCIBLE", "1") != "0"


def pin() -> None:
    """Fix threads and CPU code paths for this process and the processes it starts (they inherit the variables).

    Overrides what the shell set (a user's OMP_NUM_THREADS=8 would change the bytes); takes full effect only
    before torch is imported, so entry points call it first."""
    if not enabled():
        return
    os.environ.update(THREADS)
    if _has_avx2():
        os.environ.update(CODE_PATHS)
    if "torch" in sys.modules:  # too late for the code paths; the thread count can still be set
        import torch

        torch.set_num_threads(1)


def environment(device: str = "cpu") -> dict:
    """What a run's numbers depend on besides params, data and code (``device``: where the models ran, as
    ``qaug.device.describe`` words it); identical across machines when pinned."""
    import numpy
    import qiskit
    import torch

    return {
        "reproducible": enabled(),
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "onednn_max_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "default"),
        "mkl_cbwr": os.environ.get("MKL_CBWR", "default"),
        "device": device,
        "machine": platform.machine(),
        "python": ".".join(platform.python_version_tuple()[:2]),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "qiskit": qiskit.__version__,
    }
