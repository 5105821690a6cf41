"""The executor's circuits on shot-based backends, through Qiskit's V2 primitives.

Training runs on the exact executor; generation and inference can run the very
same Ansatz circuits, with trained weights bound, on

* ``aer``: qiskit-aer's ideal simulator with shots,
* ``fake:<Name>``: a fake IBM device from ``qiskit_ibm_runtime.fake_provider``
  (its coupling map, basis gates and noise model; no account needed),
* ``ibm:<name>``: an IBM Quantum backend via a saved ``QiskitRuntimeService`` account
  or the ``QISKIT_IBM_TOKEN`` environment variable.

Each circuit is transpiled once (``generate_preset_pass_manager``), observables are
mapped with ``apply_layout``, and a whole batch (every input × every weight set)
goes out as ONE PUB, never one per sample. Outputs have the executor's shapes and
meaning: probabilities (marginals and post-selection as in the readout spec) or
⟨P⟩ estimates.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from typing import Literal

import numpy as np

from qmodels.circuits import Ansatz, Expectations, Probabilities
from qmodels.executor import collect_matrix
from qmodels.runtime import (  # noqa: F401  (BackendError and the budget are part of this module's API)
    BackendError,
    IBMRuntime,
    JobRunner,
    LocalRuntime,
    Mode,
    Runtime,
    RuntimeOptions,
    ShotBudget,
    ShotBudgetError,
)

Kind = Literal["exact", "aer", "fake", "ibm"]


@dataclass(frozen=True)
class BackendSpec:
    kind: Kind
    name: str | None = None

    @classmethod
    def parse(cls, text: str) -> "BackendSpec":
        """``exact`` | ``aer`` | ``fake:<FakeName>`` | ``ibm:<backend name>``."""
        kind, _, name = text.partition(":")
        if kind in ("exact", "aer") and not name:
            return cls(kind)  # type: ignore[arg-type]
        if kind in ("fake", "ibm") and name:
            return cls(kind, name)  # type: ignore[arg-type]
        raise ValueError(f"backend {text!r}: expected exact, aer, fake:<FakeName> (e.g. fake:FakeBrisbane) or ibm:<backend name>")


def make_backend(spec: BackendSpec, seed_simulator: int | None = None):
    """The Qiskit backend object for ``spec`` (None for ``exact``)."""
    if spec.kind == "exact":
        return None
    if spec.kind == "aer":
        from qiskit_aer import AerSimulator

        return AerSimulator(seed_simulator=seed_simulator)
    if spec.kind == "fake":
        return fake_device(spec.name or "")()
    return _ibm_service(spec.name or "").backend(spec.name)


def fake_device(name: str) -> type:
    """The class of qiskit-ibm-runtime's fake device ``name``; ValueError naming some that exist."""
    from qiskit_ibm_runtime import fake_provider

    from qiskit.providers import BackendV2

    fake = getattr(fake_provider, name, None)
    if not (isinstance(fake, type) and issubclass(fake, BackendV2)):
        known = sorted(n for n in dir(fake_provider) if n.startswith("Fake") and n.endswith("V2"))[:8]
        raise ValueError(f"fake backend {name!r} does not exist in qiskit_ibm_runtime.fake_provider (e.g. {', '.join(known)}, FakeBrisbane)")
    return fake


def connect(spec: BackendSpec, seed_simulator: int | None = None, mode: Mode = "batch") -> Runtime | None:
    """Where jobs for ``spec`` run: in this process (aer, fake devices) or on IBM Quantum; None for exact."""
    if spec.kind == "ibm":
        service = _ibm_service(spec.name or "")
        return IBMRuntime(service, service.backend(spec.name), mode)
    backend = make_backend(spec, seed_simulator)
    return None if backend is None else LocalRuntime(backend)


def _ibm_service(name: str):
    """The account's ``QiskitRuntimeService``; fails early, before any work, when there are no credentials."""
    from qiskit_ibm_runtime import QiskitRuntimeService

    token = os.environ.get("QISKIT_IBM_TOKEN")
    try:
        return QiskitRuntimeService(token=token, channel="ibm_quantum_platform") if token else QiskitRuntimeService()
    except Exception as err:  # the service raises several account errors; none may leak a token
        from qiskit_ibm_runtime.accounts import AccountNotFoundError, InvalidAccountError

        if isinstance(err, (AccountNotFoundError, InvalidAccountError)):
            problem = ("IBM Quantum refused the token in QISKIT_IBM_TOKEN" if token else
                       "needs an IBM Quantum account: set QISKIT_IBM_TOKEN or save one with QiskitRuntimeService.save_account")
        else:
            problem = "could not reach IBM Quantum"
        raise BackendError(
            f"ibm:{name}: {problem} ({type(err).__name__}: {redact(str(err), token)}); "
            "without an account use fake:FakeBrisbane (device noise) or aer"
        ) from None


_TOKEN_LIKE = re.compile(r"[A-Za-z0-9_\-]{32,}")


def redact(text: str, secret: str | None = None) -> str:
    """``text`` for messages that reach logs: ``secret`` and any token-like run (32+ letters, digits, - or _,
    as IBM API keys are; a saved account's token is not in the environment) replaced."""
    text = text.replace(secret.strip(), "***") if secret and secret.strip() else text
    return _TOKEN_LIKE.sub("***", text)


def fingerprint(circuit) -> str:
    """A digest of a circuit that is the same in every process (parameter UUIDs left out)."""
    digest = hashlib.sha256()
    for ins in circuit.data:
        qubits = [circuit.find_bit(q).index for q in ins.qubits]
        digest.update(f"{ins.operation.name}{qubits}{[str(p) for p in ins.operation.params]};".encode())
    return digest.hexdigest()


class ShotRunner:
    """One ansatz transpiled once for ``backend``; call it like the executor, with numpy arrays.

    Jobs go through ``jobs`` (default: this process, nothing journaled); each call is
    one job holding one PUB, keyed by the circuit, the values and the options, so a
    journaled runner finds the same job again after a restart.
    """

    def __init__(
        self,
        ansatz: Ansatz,
        backend,
        shots: int = 1024,
        *,
        optimization_level: int = 1,
        seed_transpiler: int = 0,
        seed_simulator: int | None = None,
        budget: ShotBudget | None = None,
        jobs: JobRunner | None = None,
        dynamical_decoupling: bool = False,
        twirling: bool = False,
    ) -> None:
        from qiskit.transpiler import generate_preset_pass_manager

        if shots < 1:
            raise ValueError(f"shots must be at least 1, got {shots}")
        self.ansatz, self.backend, self.shots, self.budget = ansatz, backend, shots, budget
        self.jobs = jobs if jobs is not None else JobRunner(LocalRuntime(backend))
        self.options = RuntimeOptions(shots, seed_simulator, dynamical_decoupling, twirling)
        circuit = ansatz.circuit.copy()
        self.probabilities = isinstance(ansatz.output, Probabilities)
        if self.probabilities:
            circuit.measure_all()  # classical bit k = qubit k: outcomes in Qiskit's basis order
        pm = generate_preset_pass_manager(backend=backend, optimization_level=optimization_level, seed_transpiler=seed_transpiler)
        self.isa = pm.run(circuit)
        order = {p: k for k, p in enumerate(list(ansatz.inputs) + list(ansatz.weights))}
        self._columns = [order[p] for p in self.isa.parameters]  # PUB values follow the circuit's (name-sorted) order
        if self.probabilities:
            self._collect = collect_matrix(ansatz.circuit.num_qubits, ansatz.output)  # type: ignore[arg-type]
        else:
            assert isinstance(ansatz.output, Expectations)
            self._observables = [o.apply_layout(self.isa.layout) for o in ansatz.output.observables]
        # The job key names the logical circuit, not the transpiled one: the layout the transpiler
        # picks follows the device's calibration, which may change while a job sits in the queue.
        identity = [fingerprint(circuit), getattr(backend, "name", ""), str(optimization_level), str(seed_transpiler), str(self.options)]
        identity += [] if self.probabilities else [str(o) for o in ansatz.output.observables]  # type: ignore[union-attr]
        self._identity = "|".join(identity)

    def _key(self, values: np.ndarray) -> str:
        return hashlib.sha256(self._identity.encode() + np.ascontiguousarray(values).tobytes()).hexdigest()

    def __call__(self, inputs: np.ndarray | None, weights: np.ndarray) -> np.ndarray:
        """(B, out), or (W, B, out) for weights (W, n_weights); B dropped for circuits without inputs."""
        w = np.atleast_2d(np.asarray(weights, dtype=float))
        x = np.zeros((1, 0)) if inputs is None else np.asarray(inputs, dtype=float)
        W, B = w.shape[0], x.shape[0]
        values = np.concatenate([np.broadcast_to(x[None], (W, B, x.shape[1])), np.broadcast_to(w[:, None], (W, B, w.shape[1]))], axis=-1)
        values = values[..., self._columns]
        if self.budget is not None:
            self.budget.charge(W * B, self.shots)  # refuses before submission
        key = self._key(values)
        if self.probabilities:
            result = self.jobs.run(key, "sampler", (self.isa, values), self.options, W * B)
            out = _outcome_probabilities(result.data.meas.array, self.ansatz.circuit.num_qubits, self.shots)
            if self._collect is not None:
                out = out @ self._collect
        else:
            result = self.jobs.run(key, "estimator", (self.isa, self._observables, values[:, :, None, :]), self.options, W * B)
            out = np.asarray(result.data.evs, dtype=float)
        if inputs is None:
            out = out[:, 0]
        return out[0] if np.ndim(weights) == 1 else out


def _outcome_probabilities(bits: np.ndarray, num_qubits: int, shots: int) -> np.ndarray:
    """Shot records (..., shots, bytes; big-endian) → outcome frequencies (..., 2**n)."""
    ints = np.zeros(bits.shape[:-1], dtype=np.int64)
    for byte in range(bits.shape[-1]):
        ints = (ints << 8) | bits[..., byte]
    flat = ints.reshape(-1, shots)
    N = 2**num_qubits
    offset = flat + N * np.arange(len(flat))[:, None]  # one bincount for every row at once
    counts = np.bincount(offset.ravel(), minlength=len(flat) * N).reshape(len(flat), N)
    return (counts / shots).reshape(*bits.shape[:-2], N)
