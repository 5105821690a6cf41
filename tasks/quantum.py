"""Which backend the quantum-heavy stages run inference on (``quantum`` section of params.yaml).

Training always uses the exact executor. ``generate`` and ``filter``'s regeneration
rounds sample the QGAN on the configured backend, ``analyze_errors`` and ``evaluate``
run the classifier there; the filter's judge stays exact, so device noise shows in
the samples, not in the acceptance test. ``exact`` (the default) keeps everything on
the executor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from qaug.params import require
from qmodels.backends import BackendSpec, ShotBudget, ShotRunner, make_backend
from qmodels.layer import QuantumLayer


@dataclass(frozen=True)
class QuantumParams:
    backend: str = "exact"  # exact | aer | fake:<FakeName> | ibm:<backend name>
    shots: int = 1024
    seed_simulator: int = 0
    optimization_level: int = 1
    max_shots: int = 50_000_000  # per stage; a submission beyond it is refused before it is sent

    def validate(self) -> None:
        try:
            BackendSpec.parse(self.backend)
        except ValueError as err:
            require(False, "backend", str(err).split(": ", 1)[1])
        require(self.shots >= 1, "shots", "must be at least 1")
        require(0 <= self.optimization_level <= 3, "optimization_level", "must be 0, 1, 2 or 3")
        require(self.max_shots >= 1, "max_shots", "must be at least 1")

    @property
    def exact(self) -> bool:
        return BackendSpec.parse(self.backend).kind == "exact"


def attach(params: QuantumParams, layers: Sequence[QuantumLayer]) -> dict:
    """Run ``layers`` on the configured backend from now on; returns what to record in metrics."""
    if params.exact:
        return {"backend": "exact", "shots": None}
    backend = make_backend(BackendSpec.parse(params.backend), params.seed_simulator)
    budget = ShotBudget(params.max_shots)
    for layer in layers:
        layer.backend = ShotRunner(
            layer.ansatz, backend, shots=params.shots, optimization_level=params.optimization_level,
            seed_simulator=params.seed_simulator, budget=budget,
        )
    noisy = params.backend.startswith(("fake:", "ibm:"))
    return {"backend": params.backend, "shots": params.shots, "noise": "device model" if noisy else "none",
            "optimization_level": params.optimization_level}


def announce(params: QuantumParams, what: str, circuits: int) -> None:
    """Print the cost of a submission up front and refuse it when it exceeds the budget."""
    if params.exact:
        return
    ShotBudget(params.max_shots).charge(circuits, params.shots)
    print(f"{what} on {params.backend}: {circuits:,} circuits × {params.shots:,} shots = {circuits * params.shots:,} shots", flush=True)
