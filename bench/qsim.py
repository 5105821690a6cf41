"""Throughput of qaug's statevector executor against the libraries, same circuits, one run.

Workloads (forward + backward, and forward only), all built by qmodels.circuits:
  generator 5q   patch sub-generator, 5 qubits × 6 layers, 1 ancilla, probabilities, batch 32
  classifier 4q  HQCNN ansatz, 4 qubits × 2 layers, ⟨Z_i⟩, batch 64
  generator 10q  ⟨Z⟩ generator, 10 qubits × 6 layers (RY, RX + CNOT chain), batch 32

References, measured in the same run:
  qml-torch  qiskit-machine-learning SamplerQNN / EstimatorQNN (exact QMLSampler /
             QMLEstimator, default_precision 0) + TorchConnector; it runs one circuit
             per sample and parameter shift, so it is timed on --qml-batch samples
  pennylane  default.qubit, diff_method="backprop", parameter broadcasting, the same
             circuits written gate for gate (outputs checked against qaug before timing)

Run: python bench/qsim.py [--seconds 3] [--qml-batch 4]   (needs the `bench` extra)
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from qmodels.circuits import Ansatz, expval_generator_ansatz, hqcnn_ansatz, patch_generator_ansatz
from qmodels.executor import compile_ansatz


@dataclass
class Workload:
    name: str
    ansatz: Ansatz
    batch: int
    kind: str  # "patch" | "hqcnn" | "expval"
    layers: int


WORKLOADS = [
    Workload("generator 5q", patch_generator_ansatz(5, 6, 1), 32, "patch", 6),
    Workload("classifier 4q", hqcnn_ansatz(4, 2), 64, "hqcnn", 2),
    Workload("generator 10q", expval_generator_ansatz(10, 6, ("ry", "rx")), 32, "expval", 6),
]


def rate(fn: Callable[[], None], samples: int, seconds: float, rounds: int = 5) -> float:
    """Median samples/s over `rounds` windows of `seconds`/`rounds` each (after a warm-up)."""
    fn()
    fn()
    gc.collect()  # the libraries leave large heaps behind; start every measurement from the same state
    results = []
    for _ in range(rounds):
        start, count = time.perf_counter(), 0
        while count == 0 or time.perf_counter() - start < seconds / rounds:
            fn()
            count += 1
        results.append(samples * count / (time.perf_counter() - start))
    return statistics.median(results)


def qaug_fns(w: Workload, x: torch.Tensor, theta: torch.Tensor):
    ex = compile_ansatz(w.ansatz)
    weights = theta.clone().requires_grad_(True)

    def train() -> None:
        weights.grad = None
        ex(x, weights).sum().backward()

    def infer() -> None:
        with torch.no_grad():
            ex(x, weights)

    return train, infer, lambda: ex(x, theta).detach().numpy()


def pennylane_fns(w: Workload, x: torch.Tensor, theta: torch.Tensor):
    import pennylane as qml

    n = w.ansatz.num_qubits
    dev = qml.device("default.qubit", wires=n)
    wires = list(reversed(range(n)))  # PennyLane wire 0 is the most significant bit: map qiskit qubit q → wire n-1-q

    @qml.qnode(dev, interface="torch", diff_method="backprop")
    def circuit(inputs, weights):
        for q in range(n):
            qml.RY(inputs[..., q], wires=wires[q])
        k = 0
        for _ in range(w.layers):
            for q in range(n):
                if w.kind == "patch":
                    qml.RY(weights[k], wires=wires[q]); k += 1
                elif w.kind == "hqcnn":
                    qml.RY(weights[k], wires=wires[q]); qml.RZ(weights[k + 1], wires=wires[q]); k += 2
                else:
                    qml.RY(weights[k], wires=wires[q]); qml.RX(weights[k + 1], wires=wires[q]); k += 2
            if w.kind == "patch":
                for q in range(n - 1):
                    qml.CZ(wires=[wires[q], wires[q + 1]])
            elif w.kind == "hqcnn":
                for q in range(n):
                    qml.CNOT(wires=[wires[q], wires[(q + 1) % n]])
            else:
                for q in range(n - 1):
                    qml.CNOT(wires=[wires[q], wires[q + 1]])
        if w.kind == "patch":
            return qml.probs(wires=wires[::-1])  # wire order n-1..0 = qiskit's little-endian index
        return [qml.expval(qml.PauliZ(wires[q])) for q in range(n)]

    def run(weights):
        out = circuit(x, weights)
        if w.kind == "patch":
            return out[:, : 2 ** (n - 1)]  # ancilla (highest qubit) = 0
        return torch.stack(out, dim=-1)

    weights = theta.clone().requires_grad_(True)

    def train() -> None:
        weights.grad = None
        run(weights).sum().backward()

    def infer() -> None:
        with torch.no_grad():
            run(weights)

    return train, infer, lambda: run(theta).detach().numpy()


def qml_fns(w: Workload, x: torch.Tensor, theta: torch.Tensor, batch: int):
    from qiskit_machine_learning.connectors import TorchConnector
    from qiskit_machine_learning.neural_networks import EstimatorQNN, SamplerQNN
    from qiskit_machine_learning.primitives import QMLEstimator, QMLSampler

    a = w.ansatz
    if w.kind == "patch":
        qnn = SamplerQNN(circuit=a.circuit.copy(), sampler=QMLSampler(), input_params=list(a.inputs),
                         weight_params=list(a.weights), input_gradients=False)
    else:
        qnn = EstimatorQNN(circuit=a.circuit.copy(), estimator=QMLEstimator(default_precision=0.0),
                           observables=list(a.output.observables), input_params=list(a.inputs),
                           weight_params=list(a.weights), default_precision=0.0)
    model = TorchConnector(qnn, initial_weights=theta.numpy().astype(np.float64))
    xs = x[:batch].double()

    def out():
        y = model(xs)
        return y[:, : 2 ** (a.num_qubits - 1)] if w.kind == "patch" else y

    def train() -> None:
        model.zero_grad()
        out().sum().backward()

    def infer() -> None:
        with torch.no_grad():
            out()

    return train, infer, lambda: out().detach().numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="timing budget per measurement")
    parser.add_argument("--qml-batch", type=int, default=4, help="samples per qiskit-machine-learning call")
    parser.add_argument("--skip-qml", action="store_true")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    header = f"{'workload':<15}{'mode':<9}{'qaug':>10}{'pennylane':>11}{'qml-torch':>11}{'× pennylane':>13}{'× qml-torch':>13}"
    print(header)
    print("-" * len(header))
    results = []
    for w in WORKLOADS:  # qaug and PennyLane first, before qiskit-machine-learning starts any worker threads
        x = torch.rand(w.batch, len(w.ansatz.inputs)) * np.pi
        theta = torch.rand(len(w.ansatz.weights)) * 2 * np.pi
        ours = qaug_fns(w, x, theta)
        pl = pennylane_fns(w, x, theta)
        err = np.abs(ours[2]() - pl[2]()).max()
        assert err < 1e-4, f"{w.name}: PennyLane circuit differs from qaug's by {err}"
        rates = {mode: [rate(ours[k], w.batch, args.seconds), rate(pl[k], w.batch, args.seconds), float("nan")]
                 for mode, k in (("fwd+bwd", 0), ("fwd", 1))}
        results.append((w, x, theta, ours, rates))
    if not args.skip_qml:
        for w, x, theta, ours, rates in results:
            qml = qml_fns(w, x, theta, args.qml_batch)
            err = np.abs(ours[2]()[: args.qml_batch] - qml[2]()).max()
            assert err < 1e-4, f"{w.name}: qiskit-machine-learning differs from qaug by {err}"
            for mode, k in (("fwd+bwd", 0), ("fwd", 1)):
                rates[mode][2] = rate(qml[k], args.qml_batch, args.seconds, rounds=1)
    for w, _, _, _, rates in results:
        for mode, (r_ours, r_pl, r_qml) in rates.items():
            print(f"{w.name:<15}{mode:<9}{r_ours:>10.0f}{r_pl:>11.0f}{r_qml:>11.2f}{r_ours / r_pl:>12.1f}×{r_ours / r_qml:>12.0f}×")
    print("\nsamples/s, median of 5 windows (qml-torch: one window); ratios from this run.")


if __name__ == "__main__":
    main()
