"""The torch executor against Qiskit's own simulation and parameter-shift gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter, ParameterVector
from qiskit.circuit.library import GlobalPhaseGate, PauliEvolutionGate, RXGate, RYGate, UnitaryGate
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
CONTROLLED = ["crx", "cry", "crz", "cp"]  # drawn with a closed or an open control
ROT_2Q = [*CONTROLLED, "rzz", "rxx", "ryy", "rzx", "mcp", "controlled-ry", "controlled-rx"]
_ROT = {"controlled-ry": RYGate, "controlled-rx": RXGate}


@st.composite
def random_circuits(draw, max_qubits: int = 4, max_gates: int = 14, min_qubits: int = 1):
    """Random circuits over the supported gate set, open controls included; angles are affine in inputs/weights,
    and every weight drives some gate."""
    n = draw(st.integers(min_qubits, max_qubits))
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
            angle = a * p + b if (a, b) != (1.0, 0.0) else p
            if name in CONTROLLED:
                getattr(qc, name)(angle, *qubits, ctrl_state=draw(st.sampled_from([0, 1])))
            elif name == "mcp":
                qc.mcp(angle, [qubits[0]], qubits[1])
            elif name in _ROT:
                qc.append(_ROT[name](angle).control(1, ctrl_state=draw(st.sampled_from([0, 1]))), qubits)
            else:
                getattr(qc, name)(angle, *qubits)
        else:
            getattr(qc, name)(*qubits)
    for k, weight in enumerate(w):  # a weight no gate uses is refused (tested below)
        if weight not in set(qc.parameters):
            qc.ry(weight, k % n)
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


@settings(max_examples=15)
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


@given(ansatz=random_circuits(max_qubits=5, max_gates=16, min_qubits=4), fusion=st.sampled_from(["never", "always"]),
       seed=st.integers(0, 10**6))
def test_gradients_match_finite_differences_of_qiskit(ansatz: Ansatz, fusion: str, seed: int) -> None:
    """4–5 qubits, open controls, a batch of inputs and two weight sets: the gradient of a random
    projection of the outputs, for inputs and weights, equals central differences of Qiskit's Statevector."""
    rng = np.random.default_rng(seed)
    ex = compile_ansatz(ansatz, precision="double", fusion=fusion)
    x = rng.uniform(-np.pi, np.pi, (2, len(ansatz.inputs)))
    w = rng.uniform(-np.pi, np.pi, (2, len(ansatz.weights)))
    c = rng.normal(size=ansatz.output_dim)
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    (ex(xt if len(ansatz.inputs) else None, wt) @ torch.tensor(c)).sum().backward()

    def loss(xs: np.ndarray, ws: np.ndarray) -> float:
        return sum((reference_outputs(ansatz, xs, wk) @ c).sum() for wk in ws)

    h = 1e-5
    for value, grad in ((x, xt.grad), (w, wt.grad)):
        expected = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            up, down = value.copy(), value.copy()
            up[idx] += h
            down[idx] -= h
            args = ((up, w), (down, w)) if value is x else ((x, up), (x, down))
            expected[idx] = (loss(*args[0]) - loss(*args[1])) / (2 * h)
        got = np.zeros_like(value) if grad is None else grad.numpy()  # an input no gate uses has no gradient
        np.testing.assert_allclose(got, expected, atol=1e-6)


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


@pytest.mark.parametrize("ctrl_state", [0, 1])
@pytest.mark.parametrize(
    "build",
    [
        lambda qc, t, cs: qc.crx(t, 0, 1, ctrl_state=cs),
        lambda qc, t, cs: qc.cry(t, 0, 1, ctrl_state=cs),
        lambda qc, t, cs: qc.crz(t, 0, 1, ctrl_state=cs),
        lambda qc, t, cs: qc.cp(t, 0, 1, ctrl_state=cs),
        lambda qc, t, cs: qc.append(RYGate(t).control(1, ctrl_state=cs), [0, 1]),
    ],
    ids=["crx", "cry", "crz", "cp", "ry.control"],
)
def test_open_controls_with_a_parameterised_angle(build, ctrl_state: int) -> None:
    """The issue's case: h(0); crx(θ, 0, 1, ctrl_state=0) at θ = 1 must give [0.385, 0.5, 0.115, 0]."""
    t = Parameter("t")
    qc = QuantumCircuit(2)
    qc.ry(0.4, 0)  # control mostly |0>: an open control acts, a closed one barely does
    qc.ry(0.7, 1)
    build(qc, t, ctrl_state)
    qc.h(1)  # makes phase gates visible in the probabilities
    qc.sx(0)
    ansatz = Ansatz(qc, (), (t,), Probabilities())
    got = compile_ansatz(ansatz, precision="double")(None, torch.tensor([1.0]))
    np.testing.assert_allclose(got.numpy(), reference_outputs(ansatz, np.zeros((1, 0)), np.array([1.0]))[0], atol=1e-12)


def test_the_issues_open_control_example() -> None:
    t = Parameter("t")
    qc = QuantumCircuit(2)
    qc.h(0)
    qc.crx(t, 0, 1, ctrl_state=0)
    got = StatevectorExecutor(qc, [], [t], Probabilities(), precision="double")(None, torch.tensor([1.0]))
    np.testing.assert_allclose(got.numpy(), [np.cos(0.5) ** 2 / 2, 0.5, np.sin(0.5) ** 2 / 2, 0], atol=1e-12)


def test_gates_beyond_the_library_table() -> None:
    """mcp (its class needs num_ctrl_qubits), a parameterised global phase (no observable effect) and a
    Pauli evolution that is a one-angle rotation all match Qiskit."""
    t = Parameter("t")
    qc = QuantumCircuit(2)
    qc.h([0, 1])
    qc.mcp(t, [0], 1)
    qc.append(GlobalPhaseGate(t), [])
    qc.append(PauliEvolutionGate(SparsePauliOp("XY"), time=0.5 * t), [0, 1])
    qc.h(1)
    ansatz = Ansatz(qc, (), (t,), Probabilities())
    got = compile_ansatz(ansatz, precision="double")(None, torch.tensor([0.9]))
    np.testing.assert_allclose(got.numpy(), reference_outputs(ansatz, np.zeros((1, 0)), np.array([0.9]))[0], atol=1e-10)


def test_an_evolution_that_is_not_a_one_angle_rotation_is_named() -> None:
    t = Parameter("t")
    qc = QuantumCircuit(2)
    qc.append(PauliEvolutionGate(SparsePauliOp(["XY", "ZI"], [1.0, 0.4]), time=t), [0, 1])
    with pytest.raises(UnsupportedGateError, match="'PauliEvolution'"):
        StatevectorExecutor(qc, [], [t], Probabilities())


@pytest.mark.parametrize(
    "output, match",
    [
        (Probabilities(qubits=()), "leaves no data qubit"),
        (Probabilities(qubits=(0,), postselect=((0, 0),)), "leaves no data qubit"),
        (Probabilities(qubits=(0, 0)), "measured twice"),
        (Probabilities(qubits=(0, 2)), "qubit 2 is out of range"),
        (Expectations(()), "reads nothing"),
    ],
)
def test_empty_or_bad_readouts_are_named(output, match: str) -> None:
    t = Parameter("t")
    qc = QuantumCircuit(2)
    qc.rx(t, 0)
    with pytest.raises(ValueError, match=match):
        StatevectorExecutor(qc, [], [t], output)


def test_a_weight_no_gate_uses_is_refused() -> None:
    w, t = Parameter("w"), Parameter("t")
    qc = QuantumCircuit(1)
    qc.rx(t, 0)
    qc.append(GlobalPhaseGate(w), [])  # changes nothing observable
    with pytest.raises(ValueError, match=r"weights \['w'\] change no gate"):
        StatevectorExecutor(qc, [], [t, w], Probabilities())


def test_a_circuit_without_weights_backpropagates_to_its_inputs() -> None:
    x = Parameter("x")
    qc = QuantumCircuit(1)
    qc.rx(x, 0)
    inputs = torch.tensor([[0.4]], dtype=torch.float64, requires_grad=True)
    out = StatevectorExecutor(qc, [x], [], Probabilities(), precision="double")(inputs, torch.zeros(0))
    out[0, 1].backward()  # p(1) = sin²(x/2): d/dx = sin(x)/2
    np.testing.assert_allclose(inputs.grad.numpy(), [[np.sin(0.4) / 2]], atol=1e-12)


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
