"""qaug's models on the CPU and on a CUDA GPU, same process, same inputs: where the GPU pays and where it loses.

Workloads (forward + backward unless noted), all built from qmodels:
  patch generator   5 qubits × 6 layers + 1 ancilla, 4 patches (one class's sub-generators), batch 32
  HQCNN circuit     4 qubits × 2 layers, ⟨Z⟩ readout, batch 64 and batch 4096
  HybridQ bank      30 circuits (3 classes × 10 sub-generators) of 10 qubits × 6 layers, batch 32
  ⟨Z⟩ generator     14 qubits × 6 layers, batch 256
  HybridQ generator paper size (3 classes, 10 × 10 qubits × 6 layers, 64×64 RGB decoders), batch 32
  HybridQ step      one whole training step at paper size: critic + generator (minimax), reconstruction loss,
                    EMA; the median of --steps steps of ``train_gan`` after two warm-up steps

Times are medians of ``torch.utils.benchmark`` (CUDA synchronised), in ms. On a CUDA machine the GPU runs with the
settings stages use there (``qaug.device.repeatable_cuda``), twice:
eagerly (``qmodels.cuda_graphs.eager``: a kernel launch per operation) and as qaug runs it, with circuit calls
replayed from CUDA graphs; the ratios are CPU/graphs (>1: the GPU is faster) and eager/graphs. Without CUDA only
the CPU column is printed. The CPU uses --threads threads (default: what torch has; qaug's stages pin 1).
--profile prints where a HybridQ training step's time goes (PyTorch's profiler, on the GPU when there is one).

Run: python bench/gpu.py [--threads N] [--seconds 1.0] [--skip-step] [--profile]
"""

from __future__ import annotations

import argparse
import contextlib
import time
from typing import Callable, ContextManager

import numpy as np
import torch
from torch.utils import benchmark

from qaug.device import repeatable_cuda
from qaug.reproducible import enabled
from qmodels import cuda_graphs
from qmodels.adversarial import GANTrainConfig, train_gan
from qmodels.circuits import expval_generator_ansatz, hqcnn_ansatz, patch_generator_ansatz
from qmodels.hybridq import HybridQ, HybridQConfig
from qmodels.layer import QuantumLayer
from qmodels.subgenerators import SubGeneratorBank


def circuit(ansatz, batch: int, copies: int = 0) -> Callable[[torch.device], Callable[[], None]]:
    """fwd+bwd of one executor call on ``batch`` random inputs (``copies`` weight sets at once)."""
    def build(device: torch.device) -> Callable[[], None]:
        layer = QuantumLayer(ansatz, copies=copies, generator=torch.Generator().manual_seed(0)).to(device)
        x = torch.rand(batch, len(ansatz.inputs), generator=torch.Generator().manual_seed(1)).to(device)

        def step() -> None:
            layer.weight.grad = None
            layer(x).sum().backward()
        return step
    return build


def bank(device: torch.device) -> Callable[[], None]:
    module = SubGeneratorBank(3, 10, 10, 6, generator=torch.Generator().manual_seed(0)).to(device)
    noise = module.sample_noise(32, torch.Generator().manual_seed(1)).to(device)

    def step() -> None:
        module.zero_grad(set_to_none=True)
        module.latents(noise, range(3)).sum().backward()
    return step


def hybridq_generator(device: torch.device) -> Callable[[], None]:
    model = HybridQ.create(HybridQConfig()).to(device)
    noise = model.generator.sample_noise(32, torch.Generator().manual_seed(1)).to(device)

    def step() -> None:
        model.generator.zero_grad(set_to_none=True)
        model.generator(noise).sum().backward()
    return step


WORKLOADS: list[tuple[str, Callable[[torch.device], Callable[[], None]]]] = [
    ("patch generator 5q×6, 4 patches, batch 32", circuit(patch_generator_ansatz(5, 6, 1), 32, copies=4)),
    ("HQCNN circuit 4q×2, batch 64", circuit(hqcnn_ansatz(4, 2), 64)),
    ("HQCNN circuit 4q×2, batch 4096", circuit(hqcnn_ansatz(4, 2), 4096)),
    ("HybridQ bank 30 × 10q×6, batch 32", bank),
    ("⟨Z⟩ generator 14q×6, batch 256", circuit(expval_generator_ansatz(14, 6, ("ry", "rx")), 256)),
    ("HybridQ generator (paper size), batch 32", hybridq_generator),
]


def median_ms(step: Callable[[], None], seconds: float) -> float:
    step()  # warm-up: compilation, allocator, cuBLAS handles
    timer = benchmark.Timer(stmt="step()", globals={"step": step})
    return timer.blocked_autorange(min_run_time=seconds).median * 1e3


def training_step_ms(device: torch.device, steps: int, profile: bool = False) -> float:
    """Median ms per HybridQ training step at paper size on random 64×64 RGB images (3 classes × 40), each step
    timed from the end of the one before (``train_gan``'s per-step callback); the first two are warm-up."""
    rng = np.random.default_rng(0)
    images, labels = rng.random((120, 3, 64, 64), dtype=np.float32), np.arange(120) % 3
    ends: list[float] = []
    profiler = torch.profiler.profile(
        activities=[torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if device.type == "cuda" else []),
        schedule=torch.profiler.schedule(wait=0, warmup=2, active=steps, repeat=1)) if profile else None

    def stamp(step: int, model) -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        ends.append(time.perf_counter())
        if profiler is not None:
            profiler.step()

    with profiler or contextlib.nullcontext():
        train_gan(HybridQ.create(HybridQConfig()), images, labels, GANTrainConfig(steps=2 + steps, batch_size=32),
                  device=device, every=1, on_every=stamp)
    if profiler is not None:
        sort = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
        print(profiler.key_averages().table(sort_by=sort, row_limit=25))
        print(profiler.key_averages().table(sort_by="count", row_limit=15))
    return float(np.median(np.diff(ends[1:]))) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="CPU threads (default: torch's)")
    parser.add_argument("--seconds", type=float, default=1.0, help="minimum timing per workload and device")
    parser.add_argument("--steps", type=int, default=5, help="training steps timed for the HybridQ step")
    parser.add_argument("--skip-step", action="store_true", help="leave out the whole training step (slow on a CPU)")
    parser.add_argument("--profile", action="store_true", help="profile the HybridQ training step and exit")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cuda = torch.cuda.is_available()
    if cuda and enabled():
        repeatable_cuda()  # as stages run on a GPU (QAUG_REPRODUCIBLE=0: torch's defaults)
    if args.profile:
        training_step_ms(torch.device("cuda" if cuda else "cpu"), args.steps, profile=True)
        return
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    runs: list[tuple[str, torch.device, Callable[[], ContextManager]]] = [("CPU ms", cpu, contextlib.nullcontext)]
    if cuda:
        runs += [("GPU eager", gpu, cuda_graphs.eager), ("GPU graphs", gpu, contextlib.nullcontext)]
    print(f"torch {torch.__version__}, CPU threads {args.threads}, {torch.cuda.get_device_name(0) if cuda else 'no CUDA GPU'}")
    header = f"{'workload':<44}" + "".join(f" {name:>10}" for name, _, _ in runs)
    print(header + (f" {'CPU/graphs':>10} {'eager/graphs':>12}" if cuda else ""))
    rows = [(name, lambda d, build=build: median_ms(build(d), args.seconds)) for name, build in WORKLOADS]
    if not args.skip_step:
        rows.append(("HybridQ training step (paper size), batch 32", lambda d: training_step_ms(d, args.steps)))
    for name, measure in rows:
        times = []
        for _, device, mode in runs:
            with mode():
                times.append(measure(device))
        line = f"{name:<44}" + "".join(f" {t:>10.2f}" for t in times)
        if cuda:
            line += f" {times[0] / times[2]:>9.2f}× {times[1] / times[2]:>11.2f}×"
        print(line, flush=True)


if __name__ == "__main__":
    main()
