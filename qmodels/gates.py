"""Turn Qiskit gates into the three kinds of step the torch executor runs.

Matrices come from Qiskit itself (``Gate.to_matrix``), so qubit order and
conventions can never drift from what Aer and IBM backends execute:

* ``Monomial``: a fixed gate with one non-zero per column (x, y, z, s, t, cx,
  cz, swap, ...): a permutation of basis states times phases;
* ``Dense``: any other fixed 1- or 2-qubit gate (h, sx, ...);
* ``Rotation``: a one-parameter gate of the form M(θ) = A + cos(kθ)·B + sin(kθ)·C
  (rx, ry, rz, p, crx, cry, crz, cp, rxx, ryy, rzz, rzx, ...), k = 1/2 or 1.

Local matrices use Qiskit's order: local index = bit(qargs[0]) + 2·bit(qargs[1]).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from qiskit.circuit import ControlledGate, Gate
from qiskit.circuit.exceptions import CircuitError
from qiskit.quantum_info import Operator

SUPPORTED_HINT = (
    "supported: fixed 1-/2-qubit gates (h, x, y, z, s, sdg, t, tdg, sx, cx, cz, swap, ...) and "
    "one-angle rotations (rx, ry, rz, p, crx, cry, crz, cp, rxx, ryy, rzz, rzx; open controls too); "
    "transpile other circuits first, e.g. transpile(qc, basis_gates=['rx', 'ry', 'rz', 'cx'])"
)


class UnsupportedGateError(ValueError):
    """A circuit uses an instruction the statevector executor cannot run."""


@dataclass(frozen=True)
class Monomial:
    src: np.ndarray  # (d,) column j of the local matrix has its non-zero in row perm[j]; src = perm^-1
    phase: np.ndarray  # (d,) complex, phase[i] multiplies old[src[i]]


@dataclass(frozen=True)
class Dense:
    matrix: np.ndarray  # (d, d) complex


@dataclass(frozen=True)
class Rotation:
    a: np.ndarray  # (d, d) complex
    b: np.ndarray
    c: np.ndarray
    scale: float  # matrix argument = scale · angle (1/2 for rx-type, 1 for p-type)


_PROBES = (0.3711, -1.234, 2.71828, 5.5)


def _unitary(gate: Gate) -> np.ndarray:
    """The gate's matrix: its own ``to_matrix`` (fast), else from its definition (e.g. ``mcphase``)."""
    try:
        return np.asarray(gate.to_matrix(), dtype=complex)
    except CircuitError:
        return np.asarray(Operator(gate).data, dtype=complex)


def _matrix(gate: Gate, angle: float | None = None) -> np.ndarray:
    g = gate.copy()
    if angle is not None:
        g.params = [angle]
    return _unitary(g)


def _fit_rotation(gate: Gate) -> Rotation | None:
    for scale in (0.5, 1.0):
        m0, m_pi, m_2pi = (_matrix(gate, t / scale) for t in (0.0, np.pi / 2, np.pi))
        a = (m0 + m_2pi) / 2
        b = (m0 - m_2pi) / 2
        c = m_pi - a
        if all(np.allclose(_matrix(gate, t), a + np.cos(scale * t) * b + np.sin(scale * t) * c, atol=1e-10) for t in _PROBES):
            return Rotation(a, b, c, scale)
    return None


def _as_monomial(m: np.ndarray) -> Monomial | None:
    nz = np.abs(m) > 1e-12
    if not (nz.sum(axis=0) == 1).all():
        return None
    rows = nz.argmax(axis=0)  # U|j> = m[rows[j], j] |rows[j]>
    src = np.empty_like(rows)
    src[rows] = np.arange(len(rows))
    return Monomial(src=src, phase=m[np.arange(len(rows)), src])


def classify(gate: Gate, numeric_params: bool) -> Monomial | Dense | Rotation:
    """Classify ``gate``; ``numeric_params`` means its parameters are plain numbers."""
    name, nq, npar = gate.name, gate.num_qubits, len(gate.params)
    if nq == 0:
        raise UnsupportedGateError(f"gate {name!r} acts on no qubit; {SUPPORTED_HINT}")
    if nq > 2:
        raise UnsupportedGateError(f"gate {name!r} acts on {nq} qubits; {SUPPORTED_HINT}")
    if npar == 0 or numeric_params:
        try:
            m = _unitary(gate)
        except Exception as exc:  # noqa: BLE001 - qiskit raises several types here
            raise UnsupportedGateError(f"gate {name!r} has no matrix ({exc}); {SUPPORTED_HINT}") from exc
        return _as_monomial(m) or Dense(m)
    if npar > 1:
        raise UnsupportedGateError(f"gate {name!r} has {npar} parameters; {SUPPORTED_HINT}")
    key = _family(gate)
    if key is None:
        return _rotation(gate)
    if key not in _FAMILIES:
        _FAMILIES[key] = _rotation(gate)
    return _FAMILIES[key]


_FAMILIES: dict[tuple, Rotation] = {}


def _family(gate: Gate) -> tuple | None:
    """What a standard library gate's matrix depends on besides its angle — its class, size and, for
    controlled gates, which control state opens it (``crx(θ, 0, 1, ctrl_state=0)`` is another matrix
    than ``crx``); None for other gates, whose matrix may depend on anything they hold."""
    if not type(gate).__module__.startswith("qiskit.circuit.library.standard_gates"):
        return None
    return type(gate), gate.num_qubits, gate.ctrl_state if isinstance(gate, ControlledGate) else None


def _rotation(gate: Gate) -> Rotation:
    try:
        rot = _fit_rotation(gate)
    except Exception as exc:  # noqa: BLE001
        raise UnsupportedGateError(f"gate {gate.name!r} cannot be evaluated numerically ({exc}); {SUPPORTED_HINT}") from exc
    if rot is None:
        raise UnsupportedGateError(f"gate {gate.name!r} is not a one-angle rotation; {SUPPORTED_HINT}")
    return rot
