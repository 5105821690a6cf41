"""Whether a Prefect server watches this command: its runs become flow runs there, or go on without Prefect."""

from __future__ import annotations

import os
import sys


class ServerDown(RuntimeError):
    """The configured Prefect server does not answer."""


class ServerLost(RuntimeError):
    """The server went away during the run, and the user was told when it did (one line): exit 2, nothing more."""


def watched(required: bool) -> bool:
    """Whether a Prefect server is configured and answers. A stage of a run that already decided (the pipeline
    flow logs its output; a fallback run goes without) does not ask. A configured server that is down: a warning
    (``required=False``: go on without Prefect) or ServerDown."""
    from qaug.repro import NO_STAGE_FLOW

    if os.environ.get(NO_STAGE_FLOW):
        return False
    from flows.server import api_url, down_message, unreachable

    url = api_url()
    why = unreachable(url) if url else None
    if why and required:
        raise ServerDown(down_message(url, why))
    if why:
        print(f"qaug: warning: {down_message(url, why)}; running without Prefect", file=sys.stderr, flush=True)
    return bool(url) and not why
