"""Shared test helpers."""

from __future__ import annotations

import numpy as np
import torch
from qiskit import QuantumCircuit
from qiskit.quantum_info import Statevector

from qmodels.circuits import Ansatz, Expectations


def reference_outputs(ansatz: Ansatz, inputs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """What Qiskit's own Statevector says the ansatz outputs are, sample by sample."""
    rows = []
    for x in inputs if len(ansatz.inputs) else [np.zeros(0)]:
        bound = ansatz.circuit.assign_parameters(dict(zip(list(ansatz.inputs) + list(ansatz.weights), [*x, *weights])), strict=False)
        rows.append(reference_readout(bound, ansatz))
    return np.array(rows)


def reference_readout(bound: QuantumCircuit, ansatz: Ansatz) -> np.ndarray:
    sv = Statevector(bound)
    out = ansatz.output
    if isinstance(out, Expectations):
        return np.array([sv.expectation_value(o).real for o in out.observables])
    kept = out.qubits if out.qubits is not None else tuple(range(bound.num_qubits))
    post = dict(out.postselect)
    data = [q for q in kept if q not in post]
    result = np.zeros(2 ** len(data))
    for i, p in enumerate(sv.probabilities()):
        if all(((i >> q) & 1) == v for q, v in post.items()):
            result[sum(((i >> q) & 1) << k for k, q in enumerate(data))] += p
    return result


def assert_every_parameter_learns(module: torch.nn.Module, loss: torch.Tensor) -> None:
    """Backpropagate ``loss`` and fail if any trainable parameter gets no (or a zero) gradient."""
    module.zero_grad(set_to_none=True)
    loss.backward()
    dead = [
        name
        for name, p in module.named_parameters()
        if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all() or p.grad.abs().sum() == 0)
    ]
    assert not dead, f"parameters with no gradient: {dead}"
