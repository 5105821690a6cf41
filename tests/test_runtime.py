"""Queue logic for IBM jobs (journal, re-attach, retries, budget) against the stand-in runtime."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from qiskit_ibm_runtime.fake_provider import FakeManilaV2

from qmodels.backends import BackendError, ShotBudget, ShotBudgetError, ShotRunner
from qmodels.circuits import hqcnn_ansatz
from qmodels.runtime import JobRunner
from tasks.journal import FileJournal
from tests.pipeline_helpers import PROJECT
from tests.standin_runtime import Killed, StandInRuntime

ANSATZ = hqcnn_ansatz(2, 1)
X = np.random.default_rng(0).uniform(0, np.pi, (8, 2))
W = np.random.default_rng(1).uniform(0, 2 * np.pi, len(ANSATZ.weights))


def shot_runner(runtime, journal, sleeps=None, budget=None) -> ShotRunner:
    jobs = JobRunner(runtime, journal, retries=3, backoff_s=5.0, sleep=(sleeps.append if sleeps is not None else lambda s: None))
    return ShotRunner(ANSATZ, runtime.backend, shots=256, seed_simulator=5, budget=budget, jobs=jobs)


def test_a_run_killed_after_submitting_reattaches_instead_of_resubmitting(tmp_path) -> None:
    cloud: dict = {}
    journal = tmp_path / "data/jobs/generate.json"
    first = StandInRuntime(cloud, kill_at_wait=0)
    with pytest.raises(Killed):
        shot_runner(first, FileJournal(journal, "ibm:ibm_test"))(X, W)
    assert first.submissions == ["job-0"]
    entry = json.loads(journal.read_text())
    assert [e["job_id"] for e in entry.values()] == ["job-0"] and next(iter(entry.values()))["circuits"] == len(X)

    restarted = StandInRuntime(cloud)  # a new process: new runtime, new runner, the journal on disk
    runner = shot_runner(restarted, FileJournal(journal, "ibm:ibm_test"))
    out = runner(X, W)
    assert restarted.submissions == [] and runner.jobs.reattached == 1 and len(cloud) == 1
    direct = ShotRunner(ANSATZ, FakeManilaV2(), shots=256, seed_simulator=5)(X, W)
    np.testing.assert_array_equal(out, direct)  # the queued job's own result


def test_a_journal_from_another_backend_or_other_values_is_not_reused(tmp_path) -> None:
    cloud: dict = {}
    journal = tmp_path / "jobs.json"
    shot_runner(StandInRuntime(cloud), FileJournal(journal, "ibm:ibm_a"))(X, W)
    other_backend = StandInRuntime(cloud)
    shot_runner(other_backend, FileJournal(journal, "ibm:ibm_b"))(X, W)
    other_values = StandInRuntime(cloud)
    shot_runner(other_values, FileJournal(journal, "ibm:ibm_a"))(X[:4], W)
    assert other_backend.submissions == ["job-1"] and other_values.submissions == ["job-2"]


def test_a_job_gone_from_the_service_is_submitted_again(tmp_path) -> None:
    cloud: dict = {}
    journal = tmp_path / "jobs.json"
    shot_runner(StandInRuntime(cloud), FileJournal(journal, "ibm:x"))(X, W)
    cloud.clear()  # past the service's retention
    again = StandInRuntime(cloud)
    shot_runner(again, FileJournal(journal, "ibm:x"))(X, W)
    assert again.submissions == ["job-0"]


def test_transient_failures_are_retried_with_exponential_backoff(tmp_path) -> None:
    sleeps: list[float] = []
    runtime = StandInRuntime({}, refuse_submits=2, drop_waits=1)
    out = shot_runner(runtime, FileJournal(tmp_path / "j.json", "ibm:x"), sleeps)(X, W)
    assert runtime.submissions == ["job-0"]  # a dropped wait re-polls the same job, never resubmits
    assert sleeps == [5.0, 10.0, 5.0] and out.shape == (len(X), ANSATZ.output_dim)


def test_retries_give_up_after_the_limit_and_keep_the_job(tmp_path) -> None:
    journal = tmp_path / "j.json"
    runtime = StandInRuntime({}, drop_waits=10)
    with pytest.raises(TimeoutError):
        shot_runner(runtime, FileJournal(journal, "ibm:x"))(X, W)
    assert [e["job_id"] for e in json.loads(journal.read_text()).values()] == ["job-0"]  # still queued: next run re-attaches


def test_a_failed_job_is_reported_with_its_id_and_forgotten(tmp_path) -> None:
    journal = tmp_path / "j.json"
    cloud: dict = {}
    with pytest.raises(BackendError, match="job job-0 failed: RuntimeError: Job failed: internal error 1517; rerun"):
        shot_runner(StandInRuntime(cloud, fail_jobs=True), FileJournal(journal, "ibm:x"))(X, W)
    assert json.loads(journal.read_text()) == {}
    rerun = StandInRuntime(cloud)
    shot_runner(rerun, FileJournal(journal, "ibm:x"))(X, W)
    assert rerun.submissions == ["job-1"]


def test_over_budget_is_refused_before_submission(tmp_path) -> None:
    runtime = StandInRuntime({})
    budget = ShotBudget(max_shots=256 * len(X) - 1)
    with pytest.raises(ShotBudgetError, match="over quantum.max_shots = 2,047"):
        shot_runner(runtime, FileJournal(tmp_path / "j.json", "ibm:x"), budget=budget)(X, W)
    assert runtime.submissions == [] and not (tmp_path / "j.json").exists()


def test_submission_keys_are_the_same_in_a_fresh_process() -> None:
    """Re-attaching needs the key to survive a restart (Qiskit parameters carry per-process UUIDs)."""
    code = (
        "import numpy as np; from qiskit_ibm_runtime.fake_provider import FakeManilaV2;"
        "from qmodels.backends import ShotRunner; from qmodels.circuits import hqcnn_ansatz;"
        "r = ShotRunner(hqcnn_ansatz(2, 1), FakeManilaV2(), shots=256, seed_simulator=5);"
        "print(r._key(np.arange(12.0).reshape(2, 6)))"
    )
    other = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True, check=True, timeout=900).stdout.strip()
    here = ShotRunner(hqcnn_ansatz(2, 1), FakeManilaV2(), shots=256, seed_simulator=5)._key(np.arange(12.0).reshape(2, 6))
    assert other == here


def test_client_errors_are_not_retried_but_server_errors_are() -> None:
    from qiskit_ibm_runtime.api.exceptions import RequestsApiError

    from qmodels.runtime import transient

    assert not transient(RequestsApiError("bad request", status_code=400))
    assert transient(RequestsApiError("unavailable", status_code=503)) and transient(RequestsApiError("unknown"))
    assert transient(ConnectionError()) and transient(TimeoutError()) and not transient(ValueError())


class _Context:
    """Stands in for qiskit_ibm_runtime's Batch / Session: records what opened and closed it."""

    log: list = []

    def __init__(self, backend) -> None:
        self.backend = backend
        self.log.append((type(self).__name__, "open", backend))

    def close(self) -> None:
        self.log.append((type(self).__name__, "close", self.backend))


class _Batch(_Context):
    pass


class _Session(_Context):
    pass


class _Primitive:
    """Stands in for SamplerV2 / EstimatorV2: keeps its mode and options, returns the pubs as the 'job'."""

    made: list = []

    def __init__(self, mode) -> None:
        from types import SimpleNamespace

        self.mode = mode
        self.options = SimpleNamespace(default_shots=None, dynamical_decoupling=SimpleNamespace(enable=None),
                                       twirling=SimpleNamespace(enable_gates=None))
        self.made.append(self)

    def run(self, pubs):
        return ("job", pubs)


@pytest.mark.parametrize("mode, context", [("batch", "_Batch"), ("session", "_Session"), ("job", None)])
def test_ibm_runtime_modes_and_options_against_a_stand_in_service(monkeypatch, mode: str, context: str | None) -> None:
    import qiskit_ibm_runtime

    from qmodels.runtime import IBMRuntime, RuntimeOptions

    monkeypatch.setattr(qiskit_ibm_runtime, "Batch", _Batch)
    monkeypatch.setattr(qiskit_ibm_runtime, "Session", _Session)
    monkeypatch.setattr(qiskit_ibm_runtime, "SamplerV2", _Primitive)
    monkeypatch.setattr(qiskit_ibm_runtime, "EstimatorV2", _Primitive)
    _Context.log, _Primitive.made = [], []
    backend = object()
    runtime = IBMRuntime(service=object(), backend=backend, mode=mode)  # type: ignore[arg-type]
    options = RuntimeOptions(shots=321, dynamical_decoupling=True, twirling=True)
    assert runtime.submit("sampler", ("circuit",), options) == ("job", [("circuit",)])
    runtime.submit("estimator", ("circuit", "obs"), options)
    first, second = _Primitive.made
    assert first.mode is second.mode  # one Batch/Session for every job of the stage
    assert first.mode is backend if context is None else type(first.mode).__name__ == context
    for prim in (first, second):
        assert (prim.options.default_shots, prim.options.dynamical_decoupling.enable, prim.options.twirling.enable_gates) == (321, True, True)
    runtime.close()
    runtime.close()  # closing twice closes once
    expected = [] if context is None else [(context, "open", backend), (context, "close", backend)]
    assert _Context.log == expected
