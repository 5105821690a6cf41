"""Exponential moving average of a generator's weights: the GAN loops return the average.

Averaging damps the oscillation adversarial training leaves in the last iterates. Kept
here rather than ``torch.optim.swa_utils.AveragedModel``, whose first update replaces the
average with the current weights instead of starting from the initial ones (and whose
deep copy would duplicate the executor state of quantum layers).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn


class WeightAverage:
    def __init__(self, module: nn.Module, decay: float) -> None:
        self.module, self.decay = module, decay
        self.average = [p.detach().clone() for p in module.parameters()]

    @torch.no_grad()
    def update(self) -> None:
        for avg, p in zip(self.average, self.module.parameters()):
            avg.lerp_(p, 1.0 - self.decay)

    @contextmanager
    def swapped_in(self) -> Iterator[None]:
        """The average in the module's parameters for a while (decay 0: the weights as they are), then the
        trained weights back, bit for bit."""
        if self.decay <= 0:
            yield
            return
        with torch.no_grad():
            trained = [p.detach().clone() for p in self.module.parameters()]
            self.copy_to_module()
        try:
            yield
        finally:
            with torch.no_grad():
                for saved, p in zip(trained, self.module.parameters()):
                    p.copy_(saved)

    @torch.no_grad()
    def copy_to_module(self) -> None:
        """Put the average into the module's parameters (buffers, e.g. batch-norm statistics, stay as trained)."""
        for avg, p in zip(self.average, self.module.parameters()):
            p.copy_(avg)
