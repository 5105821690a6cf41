"""Banks of quantum sub-generators that turn noise into a latent vector (MosaiQ, HybridQ).

Per class, S circuits of n qubits (RY noise encoding, L layers of trainable RY, RX + CNOT
chain, ⟨Z_i⟩ outputs) together give S·n values in [−1, 1] from noise drawn uniformly from
[0, r). The range r adapts to the loss ratio as MosaiQ (Silver et al. 2023) does: when the
generator's loss is well above the discriminator's, r widens (more varied outputs); when
well below, it narrows.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from qmodels.circuits import expval_generator_ansatz
from qmodels.layer import QuantumLayer


class SubGeneratorBank(nn.Module):
    def __init__(self, num_classes: int, sub_generators: int, num_qubits: int, num_layers: int,
                 noise_range: float = math.pi / 2, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.num_classes, self.sub_generators, self.num_qubits = num_classes, sub_generators, num_qubits
        ansatz = expval_generator_ansatz(num_qubits, num_layers, ("ry", "rx"), "cnot-chain")
        self.quantum = QuantumLayer(ansatz, copies=num_classes * sub_generators, generator=generator)
        self.register_buffer("noise_range", torch.tensor(noise_range))  # saved with the weights, used when sampling

    def sample_noise(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """U[0, 1) noise, scaled by the adaptive range r in ``latents``."""
        return torch.rand(batch, self.num_qubits, generator=generator)

    def latents(self, noise: torch.Tensor, classes: Sequence[int]) -> torch.Tensor:
        """(K, B, S·n) quantum latents. On a GPU every requested class's sub-generators run in one executor call
        (one CUDA graph); on the CPU one call per class, whose numbers do not depend on how many classes are
        asked for (the executor's fusion choice weighs the number of weight sets in a call)."""
        S, B = self.sub_generators, noise.shape[0]
        weights = self.quantum.weight.view(self.num_classes, S, -1)
        groups = [list(classes)] if noise.is_cuda else [[c] for c in classes]
        out = [self.quantum.run(noise * self.noise_range, weights[group].flatten(0, 1)) for group in groups]  # (k·S, B, n)
        return torch.cat(out).view(len(classes), S, B, -1).permute(0, 2, 1, 3).reshape(len(classes), B, -1)

    @torch.no_grad()
    def adapt_noise(self, loss_d: float, loss_g: float, rate: float) -> None:
        """Widen r by ``rate`` when loss_g/loss_d > 1.5, narrow it when < 1/1.5; r stays in [0.05, π].

        The ratio rule needs positive losses (minimax BCE); under WGAN-GP, whose critic loss
        is usually negative, r stays where it is."""
        if loss_d <= 0 or loss_g <= 0:
            return
        ratio = loss_g / loss_d
        factor = 1 + rate if ratio > 1.5 else 1 - rate if ratio < 1 / 1.5 else 1.0
        self.noise_range.mul_(factor).clamp_(0.05, math.pi)
