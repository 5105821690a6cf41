"""QuantumLayer: a compiled circuit as a torch module with trainable weights."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from qmodels import cuda_graphs
from qmodels.circuits import Ansatz
from qmodels.executor import StatevectorExecutor, compile_ansatz


class QuantumLayer(torch.nn.Module):
    """Wrap an executor; the circuit's weights become an ``nn.Parameter``.

    ``copies`` > 0 keeps that many independent weight sets of the same circuit
    (shape ``(copies, n_weights)``) and returns ``(copies, B, out)``: this is how
    the patch sub-generators of one class run as a single batched call.
    Weights start uniform in [0, ``init_scale``·2π).

    ``backend`` (default None: the exact executor) may be set to a function
    ``(inputs, weights) -> outputs`` on numpy arrays, e.g. a
    :class:`~qmodels.backends.ShotRunner`, to run inference on a shot-based backend;
    its outputs carry no gradient. On a CUDA GPU the exact executor's calls replay CUDA graphs
    (:mod:`qmodels.cuda_graphs`).
    """

    def __init__(
        self,
        ansatz: Ansatz,
        *,
        copies: int = 0,
        init_scale: float = 1.0,
        generator: torch.Generator | None = None,
        **executor_options,
    ) -> None:
        super().__init__()
        self.ansatz = ansatz
        self.executor: StatevectorExecutor = compile_ansatz(ansatz, **executor_options)
        shape = (copies, len(ansatz.weights)) if copies else (len(ansatz.weights),)
        init = torch.rand(shape, generator=generator) * (2 * math.pi * init_scale)
        self.weight = torch.nn.Parameter(init)
        self.backend: Callable[[np.ndarray | None, np.ndarray], np.ndarray] | None = None

    @property
    def output_dim(self) -> int:
        return self.ansatz.output_dim

    def run(self, inputs: torch.Tensor | None, weights: torch.Tensor) -> torch.Tensor:
        """The circuit's outputs for these inputs and weight set(s), on the exact executor or ``backend``."""
        if self.backend is None:
            return cuda_graphs.call(self.executor, inputs, weights)
        x = None if inputs is None else inputs.detach().double().numpy()
        return torch.as_tensor(self.backend(x, weights.detach().double().numpy()), dtype=torch.float32)

    def forward(self, inputs: torch.Tensor | None) -> torch.Tensor:
        return self.run(inputs, self.weight)
