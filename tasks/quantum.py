"""Which backend the quantum-heavy stages run inference on (``quantum`` section of params.yaml).

Training always uses the exact executor. ``generate`` and ``filter``'s regeneration
rounds sample the QGAN on the configured backend, ``analyze_errors`` and ``evaluate``
run the classifier there; the filter's judge stays exact, so device noise shows in
the samples, not in the acceptance test. ``exact`` (the default) keeps everything on
the executor.

On IBM Quantum the stage's jobs share one Batch (or Session), their ids are kept in
the stage's journal (``data/jobs/<stage>.json``) so a restarted run re-attaches, and
transient failures are retried with exponential backoff.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal, Sequence

import torch

from qaug.params import require
from qmodels.backends import BackendSpec, JobRunner, ShotBudget, ShotRunner, connect, fake_device
from qmodels.layer import QuantumLayer
from tasks.journal import FileJournal

# Rough QPU time per shot on IBM Eagle/Heron devices: the default repetition delay
# (250 µs) dominates circuits this small. Used for the estimate printed before submission.
SECONDS_PER_SHOT = 250e-6

log = logging.getLogger("qaug.quantum")


@dataclass(frozen=True)
class QuantumParams:
    backend: str = "exact"  # exact | aer | fake:<FakeName> | ibm:<backend name>
    shots: int = 1024
    seed_simulator: int = 0
    optimization_level: int = 1
    max_shots: int = 50_000_000  # per stage; a submission beyond it is refused before it is sent
    mode: Literal["batch", "session", "job"] = "batch"  # how IBM jobs are grouped
    dynamical_decoupling: bool = False  # IBM hardware only
    twirling: bool = False  # Pauli twirling of gates, IBM hardware only
    retries: int = 3  # per job, for transient failures (network, timeouts, HTTP errors)
    retry_backoff_s: float = 5.0  # first retry delay; doubles each time

    def validate(self) -> None:
        try:
            spec = BackendSpec.parse(self.backend)
            if spec.kind == "fake":
                fake_device(spec.name or "")
        except ValueError as err:
            require(False, "backend", str(err).split(": ", 1)[1] if err.args[0].startswith("backend ") else str(err))
        require(self.shots >= 1, "shots", "must be at least 1")
        require(0 <= self.optimization_level <= 3, "optimization_level", "must be 0, 1, 2 or 3")
        require(self.max_shots >= 1, "max_shots", "must be at least 1")
        require(self.retries >= 0, "retries", "must be 0 or more")
        require(self.retry_backoff_s >= 0, "retry_backoff_s", "must be 0 or more")

    @property
    def spec(self) -> BackendSpec:
        return BackendSpec.parse(self.backend)

    @property
    def exact(self) -> bool:
        return self.spec.kind == "exact"

    @property
    def ibm(self) -> bool:
        return self.spec.kind == "ibm"


@dataclass
class QuantumRun:
    """A stage's use of the backend: what to record in metrics, and the cost check before submitting."""

    params: QuantumParams
    record: dict

    def announce(self, what: str, circuits: int, refuse: bool = True) -> None:
        """Print the cost of a stage's submissions up front; refuse them when over the budget.

        ``refuse=False`` is for an upper bound (the filter's regeneration rounds, which
        usually stop early): it warns instead, and each job is still checked as it goes.
        """
        p = self.params
        if p.exact:
            return
        shots = circuits * p.shots
        qpu = f", ≈ {shots * SECONDS_PER_SHOT:,.0f} s of QPU time" if p.ibm else ""
        print(f"{what} on {p.backend}: {circuits:,} circuits × {p.shots:,} shots = {shots:,} shots{qpu}", flush=True)
        if shots > p.max_shots and not refuse:
            print(f"  over quantum.max_shots = {p.max_shots:,}: the stage stops with an error if it gets there", flush=True)
        elif refuse:
            ShotBudget(p.max_shots).charge(circuits, p.shots)


def model_device(params: QuantumParams, device: torch.device, layers: Sequence[QuantumLayer] = ()) -> torch.device:
    """Where a model runs whose circuits are ``layers``: ``device`` on the exact executor (or without circuits),
    the CPU on a shot-based backend, whose runners take CPU tensors."""
    return device if params.exact or not layers else torch.device("cpu")


@contextmanager
def on_backend(params: QuantumParams, layers: Sequence[QuantumLayer], journal: Path) -> Iterator[QuantumRun]:
    """Run ``layers`` on the configured backend inside the block; closes the IBM Batch/Session after it.

    No layers (a classical generator) means no circuits: nothing connects, nothing is recorded as run on the backend."""
    if params.exact:
        yield QuantumRun(params, {"backend": "exact", "shots": None})
        return
    if not layers:
        yield QuantumRun(QuantumParams(), {"backend": "none (no circuits)", "shots": None})
        return
    runtime = connect(params.spec, params.seed_simulator, params.mode)
    assert runtime is not None
    jobs = JobRunner(runtime, FileJournal(journal, params.backend), params.retries, params.retry_backoff_s)
    budget = ShotBudget(params.max_shots)
    for layer in layers:
        layer.backend = ShotRunner(
            layer.ansatz, runtime.backend, params.shots, optimization_level=params.optimization_level,
            seed_simulator=params.seed_simulator, budget=budget, jobs=jobs,
            dynamical_decoupling=params.dynamical_decoupling, twirling=params.twirling,
        )
    noise = {"aer": "none", "fake": "device model", "ibm": "hardware"}[params.spec.kind]
    record = {"backend": params.backend, "shots": params.shots, "noise": noise, "optimization_level": params.optimization_level}
    if params.ibm:
        record |= {"mode": params.mode, "dynamical_decoupling": params.dynamical_decoupling, "twirling": params.twirling}
    try:
        yield QuantumRun(params, record)
    finally:
        for layer in layers:
            layer.backend = None
        try:
            runtime.close()
        except Exception as err:  # a failing close must not hide the stage's own error; queued jobs still run
            log.warning("closing the %s %s failed: %s", params.backend, params.mode, type(err).__name__)
        if params.ibm:
            print(f"{params.backend}: {jobs.submitted} job(s) submitted, {jobs.reattached} re-attached (journal {journal})", flush=True)
