"""Circuit builders: every quantum circuit in qaug is defined once, here, in Qiskit.

Each builder returns an :class:`Ansatz`: the circuit, its input and weight
``ParameterVector``s (in the order the executor binds them, never Qiskit's
name-sorted ``circuit.parameters``) and the output it is read out with. The same
object runs on the torch executor for training and on Aer / IBM backends later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Sequence

from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector
from qiskit.quantum_info import SparsePauliOp

Entangler = Literal["cnot-chain", "cnot-ring", "cz-chain", "cz-ring"]


@dataclass(frozen=True)
class Probabilities:
    """Read out basis-state probabilities.

    ``qubits`` selects (and orders, little-endian: the first listed qubit is the
    least significant bit of the output index) the measured qubits; ``None``
    means all. ``postselect`` maps ancilla qubits to the value they must read;
    the result is the joint probability P(data=k, ancillas=values), not
    renormalised, exactly what a partial measurement with post-selection gives.
    """

    qubits: tuple[int, ...] | None = None
    postselect: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class Expectations:
    """Read out expectation values of Pauli observables (little-endian labels)."""

    observables: tuple[SparsePauliOp, ...]


Output = Probabilities | Expectations


@dataclass(frozen=True)
class Ansatz:
    """A parameterised circuit plus how to bind and read it."""

    circuit: QuantumCircuit
    inputs: tuple  # Parameters fed per sample, in binding order
    weights: tuple  # trainable Parameters, in binding order
    output: Output = field(default_factory=Probabilities)

    @property
    def num_qubits(self) -> int:
        return self.circuit.num_qubits

    @property
    def output_dim(self) -> int:
        if isinstance(self.output, Expectations):
            return len(self.output.observables)
        kept = self.output.qubits if self.output.qubits is not None else tuple(range(self.num_qubits))
        return 2 ** (len(kept) - len(self.output.postselect))


def z_observables(num_qubits: int, qubits: Sequence[int] | None = None) -> tuple[SparsePauliOp, ...]:
    """Single-qubit Z_i observables on ``qubits`` (default: all)."""
    qubits = range(num_qubits) if qubits is None else qubits
    return tuple(SparsePauliOp.from_sparse_list([("Z", [q], 1.0)], num_qubits=num_qubits) for q in qubits)


def entangle(circuit: QuantumCircuit, kind: Entangler) -> None:
    """Append a nearest-neighbour CNOT or CZ chain (or ring) over all qubits."""
    if kind not in Entangler.__args__:
        raise ValueError(f"entangler {kind!r}: expected one of {', '.join(Entangler.__args__)}")
    gate, topology = kind.split("-")
    n = circuit.num_qubits
    pairs = [(q, q + 1) for q in range(n - 1)]
    if topology == "ring" and n > 2:
        pairs.append((n - 1, 0))
    for a, b in pairs:
        (circuit.cx if gate == "cnot" else circuit.cz)(a, b)


def _check(name: str, value: int, minimum: int) -> None:
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


def hqcnn_ansatz(num_qubits: int = 4, num_layers: int = 2, entangler: Entangler = "cnot-ring") -> Ansatz:
    """HQCNN classifier circuit: RY angle encoding of ``num_qubits`` features,
    then ``num_layers`` × (RY, RZ on every qubit + entangler), read out as ⟨Z_i⟩."""
    _check("num_qubits", num_qubits, 1)
    _check("num_layers", num_layers, 1)
    x = ParameterVector("x", num_qubits)
    w = ParameterVector("w", 2 * num_qubits * num_layers)
    qc = QuantumCircuit(num_qubits, name="hqcnn")
    for q in range(num_qubits):
        qc.ry(x[q], q)
    for layer in range(num_layers):
        base = 2 * num_qubits * layer
        for q in range(num_qubits):
            qc.ry(w[base + 2 * q], q)
            qc.rz(w[base + 2 * q + 1], q)
        if num_qubits > 1:
            entangle(qc, entangler)
    return Ansatz(qc, tuple(x), tuple(w), Expectations(z_observables(num_qubits)))


def patch_generator_ansatz(
    num_qubits: int = 5,
    num_layers: int = 6,
    num_ancillas: int = 1,
    entangler: Entangler = "cz-chain",
) -> Ansatz:
    """Patch sub-generator (Huang et al. 2021; PennyLane quantum-GAN demo; MosaiQ).

    RY noise encoding on every qubit, ``num_layers`` × (RY on every qubit +
    entangler); output: probabilities of the data qubits jointly with the
    ancillas reading 0 (partial measurement). Ancillas are the highest-index
    qubits, so the kept states are the first 2**(n - a) basis states.
    """
    _check("num_qubits", num_qubits, 1)
    _check("num_layers", num_layers, 1)
    if not 0 <= num_ancillas < num_qubits:
        raise ValueError(f"num_ancillas must be in [0, num_qubits), got {num_ancillas}")
    z = ParameterVector("z", num_qubits)
    w = ParameterVector("w", num_qubits * num_layers)
    qc = QuantumCircuit(num_qubits, name="patch_generator")
    for q in range(num_qubits):
        qc.ry(z[q], q)
    for layer in range(num_layers):
        for q in range(num_qubits):
            qc.ry(w[layer * num_qubits + q], q)
        if num_qubits > 1:
            entangle(qc, entangler)
    data = tuple(range(num_qubits - num_ancillas))
    ancillas = tuple((q, 0) for q in range(num_qubits - num_ancillas, num_qubits))
    return Ansatz(qc, tuple(z), tuple(w), Probabilities(qubits=data + tuple(q for q, _ in ancillas), postselect=ancillas))


def expval_generator_ansatz(
    num_qubits: int = 10,
    num_layers: int = 6,
    rotations: Sequence[str] = ("ry", "rx"),
    entangler: Entangler = "cnot-chain",
    num_outputs: int | None = None,
) -> Ansatz:
    """⟨Z_i⟩-output generator for latent-space QGANs (HybridQ, WGAN-GP hybrid QGAN).

    RY noise encoding, ``num_layers`` × (trainable ``rotations`` on every qubit +
    entangler); outputs ⟨Z_i⟩ of the first ``num_outputs`` qubits (default all),
    each in [-1, 1].
    """
    _check("num_qubits", num_qubits, 1)
    _check("num_layers", num_layers, 1)
    bad = [r for r in rotations if r not in ("rx", "ry", "rz")]
    if bad or not rotations:
        raise ValueError(f"rotations must be a non-empty subset of rx, ry, rz; got {list(rotations)}")
    num_outputs = num_qubits if num_outputs is None else num_outputs
    if not 1 <= num_outputs <= num_qubits:
        raise ValueError(f"num_outputs must be in [1, {num_qubits}], got {num_outputs}")
    z = ParameterVector("z", num_qubits)
    w = ParameterVector("w", num_qubits * num_layers * len(rotations))
    qc = QuantumCircuit(num_qubits, name="expval_generator")
    for q in range(num_qubits):
        qc.ry(z[q], q)
    k = 0
    for _ in range(num_layers):
        for q in range(num_qubits):
            for rot in rotations:
                getattr(qc, rot)(w[k], q)
                k += 1
        if num_qubits > 1:
            entangle(qc, entangler)
    return Ansatz(qc, tuple(z), tuple(w), Expectations(z_observables(num_qubits, range(num_outputs))))
