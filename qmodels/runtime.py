"""Primitive jobs: where a PUB is sent, how a restart finds it again, what is retried.

A :class:`Runtime` is the boundary to a Qiskit backend: ``submit`` a PUB as a
sampler or estimator job, look a job up by id, close the Batch or Session.
:class:`LocalRuntime` runs aer and fake devices in this process;
:class:`IBMRuntime` sends jobs to IBM Quantum through ``qiskit-ibm-runtime`` in
Batch mode (or a Session, or one job at a time).

:class:`JobRunner` adds what a queue needs on top: the job id goes into a
:class:`Journal` as soon as the job is accepted, so a crashed or restarted run
re-attaches to the queued or finished job instead of paying for it twice, and
transient failures (network, timeouts, HTTP errors) are retried with exponential
backoff, both while submitting and while waiting.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Literal, Protocol, TypeVar

Primitive = Literal["sampler", "estimator"]
Mode = Literal["batch", "session", "job"]
T = TypeVar("T")

log = logging.getLogger("qaug.runtime")


class BackendError(RuntimeError):
    """A backend cannot be used as configured (no credentials, over budget, a failed job); says what to change."""


class ShotBudgetError(BackendError):
    """A submission would exceed the shot budget; raised before anything is submitted."""


@dataclass
class ShotBudget:
    """Shots one stage may spend on a backend (``quantum.max_shots``), shared by its runners."""

    max_shots: int
    used: int = 0

    def charge(self, circuits: int, shots: int) -> None:
        need = circuits * shots
        if self.used + need > self.max_shots:
            raise ShotBudgetError(
                f"{circuits:,} circuits × {shots:,} shots = {need:,} shots would bring this stage to "
                f"{self.used + need:,}, over quantum.max_shots = {self.max_shots:,}; raise quantum.max_shots "
                "or lower quantum.shots / augment.n_gen"
            )
        self.used += need


@dataclass(frozen=True)
class RuntimeOptions:
    """Primitive options applied to every job (DD and twirling only act on IBM hardware)."""

    shots: int = 1024
    seed_simulator: int | None = None
    dynamical_decoupling: bool = False
    twirling: bool = False


class Job(Protocol):
    def job_id(self) -> str: ...

    def result(self) -> Any: ...


class Runtime(Protocol):
    """Where jobs run. ``reattachable`` runtimes keep jobs by id across processes."""

    backend: Any
    reattachable: bool

    def submit(self, primitive: Primitive, pub: tuple, options: RuntimeOptions) -> Job: ...

    def job(self, job_id: str) -> Job:
        """The job with this id; LookupError when the runtime no longer has it."""
        ...

    def close(self) -> None: ...


class Journal(Protocol):
    """Job ids by submission key; a file-backed one lives beside a stage's outputs."""

    def get(self, key: str) -> str | None: ...

    def record(self, key: str, job_id: str, info: dict) -> None: ...

    def forget(self, key: str) -> None: ...


class MemoryJournal:
    """A journal that lasts as long as the process (local runs: nothing survives a restart anyway)."""

    def __init__(self) -> None:
        self.entries: dict[str, dict] = {}

    def get(self, key: str) -> str | None:
        return self.entries.get(key, {}).get("job_id")

    def record(self, key: str, job_id: str, info: dict) -> None:
        self.entries[key] = {"job_id": job_id, **info}

    def forget(self, key: str) -> None:
        self.entries.pop(key, None)


def transient(err: BaseException) -> bool:
    """Worth retrying: the network, timeouts, and the runtime's HTTP errors other than 4xx (a 4xx stays wrong)."""
    from qiskit_ibm_runtime.api.exceptions import RequestsApiError

    if isinstance(err, RequestsApiError):
        return not 400 <= err.status_code < 500
    return isinstance(err, (ConnectionError, TimeoutError))


class LocalRuntime:
    """aer or a fake IBM device, in this process, through Qiskit's backend primitives.

    Not qiskit-ibm-runtime's local testing mode: it drops ``seed_simulator=0`` (a falsy
    check), which leaves runs with the default seed unseeded and unrepeatable.
    """

    reattachable = False

    def __init__(self, backend: Any) -> None:
        self.backend = backend

    def submit(self, primitive: Primitive, pub: tuple, options: RuntimeOptions) -> Job:
        from qiskit.primitives import BackendEstimatorV2, BackendSamplerV2

        seed = {} if options.seed_simulator is None else {"seed_simulator": options.seed_simulator}
        if primitive == "sampler":
            return BackendSamplerV2(backend=self.backend, options={"default_shots": options.shots, **seed}).run([pub])
        # the estimator takes a precision and runs ceil(1/precision²) shots: nudge it so that is exactly `shots`
        precision = (1 + 1e-12) / math.sqrt(options.shots)
        return BackendEstimatorV2(backend=self.backend, options={"default_precision": precision, **seed}).run([pub])

    def job(self, job_id: str) -> Job:
        raise LookupError(f"local job {job_id} cannot be re-attached")

    def close(self) -> None:
        pass


class IBMRuntime:
    """IBM Quantum: jobs go out in one Batch (default), one Session, or as single jobs."""

    reattachable = True

    def __init__(self, service: Any, backend: Any, mode: Mode = "batch") -> None:
        self.service, self.backend, self.mode = service, backend, mode
        self._context: Any = None

    def _mode(self) -> Any:
        if self.mode == "job":
            return self.backend
        if self._context is None:  # opened on the first submission: a run that re-attaches opens none
            from qiskit_ibm_runtime import Batch, Session

            self._context = (Batch if self.mode == "batch" else Session)(backend=self.backend)
        return self._context

    def submit(self, primitive: Primitive, pub: tuple, options: RuntimeOptions) -> Job:
        with warnings.catch_warnings():  # qiskit-ibm-runtime 0.50 deprecates the V2 classes for its executor
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            from qiskit_ibm_runtime import EstimatorV2, SamplerV2

            prim = (SamplerV2 if primitive == "sampler" else EstimatorV2)(mode=self._mode())
        prim.options.default_shots = options.shots
        prim.options.dynamical_decoupling.enable = options.dynamical_decoupling
        prim.options.twirling.enable_gates = options.twirling
        return prim.run([pub])

    def job(self, job_id: str) -> Job:
        from qiskit_ibm_runtime.exceptions import RuntimeJobNotFound

        try:
            return self.service.job(job_id)
        except RuntimeJobNotFound as err:
            raise LookupError(job_id) from err

    def close(self) -> None:
        """Accept no more jobs in the Batch/Session; queued ones still run."""
        if self._context is not None:
            self._context.close()
            self._context = None


class JobRunner:
    """Runs PUBs on a runtime: re-attach by journal, submit with retries, wait with retries."""

    def __init__(
        self,
        runtime: Runtime,
        journal: Journal | None = None,
        retries: int = 3,
        backoff_s: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.runtime, self.retries, self.backoff_s, self.sleep = runtime, retries, backoff_s, sleep
        self.journal: Journal = journal if journal is not None else MemoryJournal()
        self.submitted = self.reattached = 0

    def _retrying(self, what: str, call: Callable[[], T]) -> T:
        for attempt in range(self.retries + 1):
            try:
                return call()
            except Exception as err:
                if not transient(err) or attempt == self.retries:
                    raise
                delay = self.backoff_s * 2**attempt
                log.warning("%s failed (%s); retry %d/%d in %.0f s", what, type(err).__name__, attempt + 1, self.retries, delay)
                self.sleep(delay)
        raise AssertionError("unreachable")

    def _attach(self, key: str, primitive: Primitive, pub: tuple, options: RuntimeOptions, circuits: int) -> Job:
        job_id = self.journal.get(key) if self.runtime.reattachable else None
        if job_id is not None:
            try:
                job = self._retrying(f"re-attaching to job {job_id}", lambda: self.runtime.job(job_id))
                self.reattached += 1
                log.warning("re-attached to job %s (no resubmission)", job_id)
                return job
            except LookupError:
                log.warning("job %s is gone; submitting again", job_id)
        job = self._retrying(f"submitting a {primitive} job", lambda: self.runtime.submit(primitive, pub, options))
        self.submitted += 1
        if self.runtime.reattachable:
            info = {"primitive": primitive, "circuits": circuits, "shots": options.shots,
                    "submitted": datetime.now(timezone.utc).isoformat(timespec="seconds")}
            self.journal.record(key, job.job_id(), info)  # before waiting: a crash from here on re-attaches
        return job

    def run(self, key: str, primitive: Primitive, pub: tuple, options: RuntimeOptions, circuits: int) -> Any:
        """The PUB's result (``PubResult``); ``key`` identifies the submission across restarts."""
        job = self._attach(key, primitive, pub, options, circuits)
        try:
            return self._retrying(f"waiting for job {job.job_id()}", lambda: job.result())[0]
        except Exception as err:
            if transient(err):
                raise  # the job may still finish: the journal keeps it for the next run
            self.journal.forget(key)  # a failed job is not re-attached to: the next run submits again
            again = "; rerun to submit it again" if self.runtime.reattachable else ""
            raise BackendError(f"job {job.job_id()} failed: {type(err).__name__}: {err}{again}") from err
