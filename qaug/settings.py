"""Quiet, private defaults for the tools qaug drives; variables the user has set win.

Called by the CLI before Prefect, DVC or Great Expectations are imported: no
analytics from any of them, Prefect's state (database, logs) inside the project
(``.prefect/``, git-ignored) and Prefect logging at WARNING unless asked.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULTS = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "DVC_NO_ANALYTICS": "1",
    "GX_ANALYTICS_ENABLED": "False",
}


def configure(root: Path | None = None) -> None:
    root = Path.cwd() if root is None else Path(root)
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("PREFECT_HOME", str(root.resolve() / ".prefect"))
