"""A stage's IBM job ids in a JSON file beside its outputs (``data/jobs/<stage>.json``).

Written atomically after every submission, before the stage waits for the job, so a
run that crashes or is killed while jobs are queued finds them again on restart and
re-attaches instead of submitting (and paying for) them twice. Not a DVC output: DVC
deletes a stage's outputs before rerunning it, which is exactly when the ids are needed.
Delete the file to force resubmission.
"""

from __future__ import annotations

from pathlib import Path

from qaug.io import read_json, write_json


class FileJournal:
    def __init__(self, path: Path, backend: str) -> None:
        self.path, self.backend = Path(path), backend
        self.entries: dict[str, dict] = read_json(self.path) if self.path.exists() else {}

    def get(self, key: str) -> str | None:
        entry = self.entries.get(key)
        return entry["job_id"] if entry and entry.get("backend") == self.backend else None

    def record(self, key: str, job_id: str, info: dict) -> None:
        self.entries[key] = {"job_id": job_id, "backend": self.backend, **info}
        write_json(self.path, self.entries)

    def forget(self, key: str) -> None:
        if self.entries.pop(key, None) is not None:
            write_json(self.path, self.entries)
