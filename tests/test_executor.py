"""The torch executor against Qiskit's own simulation and parameter-shift gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter, ParameterVector
from qiskit.circuit.library import UnitaryGate
from qiskit.primitives import StatevectorEstimator
from qiskit.quantum_info import SparsePauliOp
from qiskit_machine_learning.gradients import ParamShiftEstimatorGradient

from qmodels.circuits import (
    Ansatz,
    Expectations,
    Probabilities,
    expval_generator_ansatz,
    hqcnn_ansatz,
    patch_generator_ansatz,
)
from qmodels.executor import StatevectorExecutor, compile_ansatz
from qmodels.gates import UnsupportedGateError
from tests.helpers import reference_outputs

FIXED_1Q = ["h", "x", "y", "z", "s", "sdg", "t", "tdg", "sx"]
FIXED_2Q = ["cx", "cz", "swap"]
ROT_1Q = ["rx", "ry", "rz", "p"]
ROT_2Q = ["crx", "cry", "crz", "rzz", "rxx", "ryy", "cp"]


@st.composite
def random_circuits(draw, max_qubits: int = 4, max_gates: int = 14):
    """Random circuits over the supported gate set; angles are affine in inputs/weights."""
    n = draw(st.integers(1, max_qubits))
    n_in, n_w = draw(st.integers(0, 3)), draw(st.integers(1, 4))
    x, w = ParameterVector("x", n_in), ParameterVector("w", n_w)
    params = list(x) + list(w)
    qc = QuantumCircuit(n)
    names = FIXED_1Q + ROT_1Q + ((FIXED_2Q + ROT_2Q) if n > 1 else [])
    for _ in range(draw(st.integers(1, max_gates))):
        name = draw(st.sampled_from(names))
        qubits = draw(st.permutations(range(n)))[: 2 if name in FIXED_2Q + ROT_2Q else 1]
        if name in ROT_1Q + ROT_2Q:
            p = params[draw(st.integers(0, len(params) - 1))]
            a = draw(st.sampled_from([1.0, -0.5, 2.0]))
            b = draw(st.sampled_from([0.0, 0.3]))
            getattr(qc, name)(a * p + b if (a, b) != (1.0, 0.0) else p, *qubits)
        else:
            getattr(qc, name)(*qubits)
    z_ops = [SparsePauliOp.from_sparse_list([("Z", [q], 1.0)], n) for q in range(n)]
    mixed = SparsePauliOp.from_sparse_list([("X", [0], 0.5)] + ([("YZ", [1, 0], -0.7)] if n > 1 else []), n)
    output = draw(
        st.sampled_from(
            [
                Expectations(tuple(z_ops) + (mixed,)),
                Probabilities(),
                Probabilities(qubits=tuple(reversed(range(n)))),
                Probabilities(qubits=tuple(range(n)), postselect=((n - 1, 0),)) if n > 1 else Probabilities(),
            ]
        )
    )
    return Ansatz(qc, tuple(x), tuple(w), output)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ansatz=random_circuits(), fusion=st.sampled_from(["never", "always", "auto"]), seed=st.integers(0, 10**6))
def test_matches_qiskit_statevector(ansatz: Ansatz, fusion: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    ex = compile_ansatz(ansatz, fusion=fusion)
    x = rng.uniform(-np.pi, np.pi, (3, len(ansatz.inputs)))
    w = rng.uniform(-np.pi, np.pi, len(ansatz.weights))
    got = ex(torch.tensor(x) if len(ansatz.inputs) else None, torch.tensor(w))
    if not len(ansatz.inputs):
        got = got[None]
    np.testing.assert_allclose(got.numpy(), reference_outputs(ansatz, x, w), atol=1e-5)


@pytest.mark.parametrize("fusion", ["never", "always"])
@pytest.mark.parametrize(
    "ansatz",
    [hqcnn_ansatz(4, 2), patch_generator_ansatz(5, 3, 1), expval_generator_ansatz(7, 2), expval_generator_ansatz(11, 1)],
    ids=["hqcnn", "patch", "expval7", "expval11-blocks"],
)
def test_builders_match_qiskit_for_several_weight_sets(ansatz: Ansatz, fusion: str) -> None:
    rng = np.random.default_rng(1)
    ex = compile_ansatz(ansatz, fusion=fusion, precision="double")
    x = rng.uniform(0, np.pi, (4, len(ansatz.inputs)))
    w = rng.uniform(0, 2 * np.pi, (3, len(ansatz.weights)))
    got = ex(torch.tensor(x), torch.tensor(w)).numpy()
    assert got.shape == (3, 4, ansatz.output_dim)
    for k in range(3):
        np.testing.assert_allclose(got[k], reference_outputs(ansatz, x, w[k]), atol=1e-10)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ansatz=random_circuits(max_qubits=3, max_gates=8), seed=st.integers(0, 10**6))
def test_gradients_match_parameter_shift(ansatz: Ansatz, seed: int) -> None:
    """Autograd through the executor equals Qiskit's parameter-shift gradient."""
    assume(ansatz.circuit.num_parameters > 0)
    rng = np.random.default_rng(seed)
    n = ansatz.num_qubits
    obs = SparsePauliOp.from_sparse_list([("Z", [0], 1.0)] + ([("XY", [1, 0], 0.6)] if n > 1 else []), n)
    ansatz = Ansatz(ansatz.circuit, ansatz.inputs, ansatz.weights, Expectations((obs,)))
    ex = compile_ansatz(ansatz, precision="double")
    x = rng.uniform(-np.pi, np.pi, len(ansatz.inputs))
    w = rng.uniform(-np.pi, np.pi, len(ansatz.weights))
    xt = torch.tensor(x[None], requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    ex(xt if len(x) else None, wt).sum().backward()
    grad_x = xt.grad[0].numpy() if xt.grad is not None else np.zeros(len(x))
    grad_w = wt.grad.numpy() if wt.grad is not None else np.zeros(len(w))
    ours = np.concatenate([grad_x, grad_w])

    ordered = list(ansatz.inputs) + list(ansatz.weights)
    present = set(ansatz.circuit.parameters)
    shift = ParamShiftEstimatorGradient(StatevectorEstimator())
    params = [p for p in ordered if p in present]
    values = [dict(zip(ordered, [*x, *w]))[p] for p in ansatz.circuit.parameters]
    grads = shift.run([ansatz.circuit], [obs], [values], [params]).result().gradients[0] if params else []
    expected = np.array([grads[params.index(p)] if p in present else 0.0 for p in ordered])
    np.testing.assert_allclose(ours, expected, atol=1e-4)


def test_gradcheck_in_double_precision() -> None:
    ansatz = hqcnn_ansatz(3, 2)
    ex = compile_ansatz(ansatz, precision="double", fusion="always")
    x = torch.rand(2, 3, dtype=torch.float64, requires_grad=True)
    w = torch.rand(len(ansatz.weights), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: ex(a, b), (x, w))


def test_real_circuits_run_in_real_arithmetic() -> None:
    assert compile_ansatz(patch_generator_ansatz()).dtype == torch.float32
    assert compile_ansatz(hqcnn_ansatz()).dtype == torch.complex64  # RZ makes it complex
    assert compile_ansatz(hqcnn_ansatz(), precision="double").dtype == torch.complex128


def test_binding_follows_given_order_not_names() -> None:
    """Qiskit sorts circuit.parameters by name; the executor binds in the order it is given."""
    b, a = Parameter("b"), Parameter("a")
    qc = QuantumCircuit(2)
    qc.ry(b, 0)
    qc.ry(a, 1)
    ex = StatevectorExecutor(qc, [], [b, a], Probabilities())
    probs = ex(None, torch.tensor([np.pi, 0.0]))  # b = π flips qubit 0 only
    np.testing.assert_allclose(probs.numpy(), [0, 1, 0, 0], atol=1e-6)  # index 1 = qubit 0 set (little-endian)


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda qc, p: qc.ccx(0, 1, 2), "'ccx' acts on 3 qubits"),
        (lambda qc, p: qc.u(p, 0.1, 0.2, 0), "'u' has 3 parameters"),
        (lambda qc, p: qc.measure_all(), "'measure'"),
        (lambda qc, p: qc.rx(p * p, 0), "non-affine"),
        (lambda qc, p: qc.reset(0), "'reset'"),
    ],
)
def test_unsupported_instructions_are_named(build, match: str) -> None:
    p = Parameter("p")
    qc = QuantumCircuit(3)
    build(qc, p)
    weights = [p] if p in set(qc.parameters) else []
    with pytest.raises(UnsupportedGateError, match=match):
        StatevectorExecutor(qc, [], weights, Probabilities())


def test_fixed_unitary_gates_are_supported() -> None:
    qc = QuantumCircuit(2)
    qc.append(UnitaryGate(np.array([[0, 1], [1, 0]])), [1])
    probs = StatevectorExecutor(qc, [], [], Probabilities())(None, torch.zeros(0))
    np.testing.assert_allclose(probs.numpy(), [0, 0, 1, 0], atol=1e-6)


def test_bad_arguments_are_explained() -> None:
    ansatz = hqcnn_ansatz(2, 1)
    ex = compile_ansatz(ansatz)
    with pytest.raises(ValueError, match=r"inputs must have shape \(B, 2\)"):
        ex(torch.zeros(3, 5), torch.zeros(len(ansatz.weights)))
    with pytest.raises(ValueError, match="weights must have shape"):
        ex(torch.zeros(3, 2), torch.zeros(7))
    stray = Parameter("stray")
    qc = ansatz.circuit.copy()
    qc.rx(stray, 0)
    with pytest.raises(ValueError, match="stray"):
        StatevectorExecutor(qc, ansatz.inputs, ansatz.weights, ansatz.output)
