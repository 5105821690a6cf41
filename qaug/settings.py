"""Quiet, private defaults for the tools qaug drives; variables the user has set win.

Called by the CLI before Prefect, DVC or Great Expectations are imported: no
analytics from any of them, Prefect's state (database, logs) inside the project
(``.prefect/``, git-ignored). Prefect logs at INFO (``prefect.toml``: the stages' output in the run logs).
"""

from __future__ import annotations

import os
from pathlib import Path

# How qaug's processes (``qaug stage`` under ``dvc repro``) write their log records: the pipeline flow reads each
# line's level back from it (flows.steps.line_level), so a stage's warnings reach the UI as warnings.
LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"

DEFAULTS = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DVC_NO_ANALYTICS": "1",
    "GX_ANALYTICS_ENABLED": "False",
}


def configure(root: Path | None = None, quiet_prefect: bool = False) -> None:
    """``quiet_prefect``: Prefect at WARNING (a grid's hundreds of task runs would bury its progress bar)."""
    root = Path.cwd() if root is None else Path(root)
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
    if quiet_prefect:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_HOME", str(root.resolve() / ".prefect"))
