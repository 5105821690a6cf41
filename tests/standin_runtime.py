"""A stand-in at the QiskitRuntimeService boundary, for the queue logic of IBM jobs.

It runs every PUB on a fake device in this process and keeps its jobs in a ``cloud``
dict that outlives a runtime object, the way IBM keeps jobs after the client process
dies. It can refuse submissions, drop the connection while a job is awaited, fail
jobs, or "kill" the client while it waits.
"""

from __future__ import annotations

from qiskit_ibm_runtime.fake_provider import FakeManilaV2

from qmodels.runtime import LocalRuntime


class Killed(BaseException):
    """The client process dies (SIGKILL, a crashed node): nothing after this point runs."""


class StandInJob:
    def __init__(self, job_id: str, job, runtime: "StandInRuntime") -> None:
        self._id, self._job, self._runtime = job_id, job, runtime

    def job_id(self) -> str:
        return self._id

    def result(self):
        return self._runtime.wait(self._job)


class StandInRuntime:
    reattachable = True

    def __init__(
        self, cloud: dict, refuse_submits: int = 0, drop_waits: int = 0, kill_at_wait: int | None = None, fail_jobs: bool = False,
    ) -> None:
        """``kill_at_wait``: the client dies while waiting for its k-th job (0-based)."""
        self.cloud, self.backend = cloud, FakeManilaV2()
        self.refuse_submits, self.drop_waits, self.kill_at_wait, self.fail_jobs = refuse_submits, drop_waits, kill_at_wait, fail_jobs
        self.submissions: list[str] = []
        self.waits = 0
        self.closed = False

    def submit(self, primitive, pub, options):
        if self.refuse_submits:
            self.refuse_submits -= 1
            raise ConnectionError("connection reset by peer")
        job_id = f"job-{len(self.cloud)}"
        self.cloud[job_id] = LocalRuntime(self.backend).submit(primitive, pub, options)
        self.submissions.append(job_id)
        return StandInJob(job_id, self.cloud[job_id], self)

    def job(self, job_id):
        if job_id not in self.cloud:
            raise LookupError(job_id)
        return StandInJob(job_id, self.cloud[job_id], self)

    def wait(self, job):
        self.waits += 1
        if self.kill_at_wait == self.waits - 1:
            raise Killed()
        if self.drop_waits:
            self.drop_waits -= 1
            raise TimeoutError("read timed out")
        if self.fail_jobs:
            raise RuntimeError("Job failed: internal error 1517")
        return job.result()

    def close(self) -> None:
        self.closed = True
