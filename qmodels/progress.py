"""A long loop's progress: a tqdm bar on a terminal, elsewhere (``dvc repro`` under Prefect, a log file) an
INFO line on the ``qaug.progress`` logger every 5 % — what the run's log and progress artifact show."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator

from tqdm.auto import tqdm

log = logging.getLogger("qaug.progress")


class LoggedBar:
    """tqdm's iterate-and-``set_postfix`` surface, reported as log lines ``"<desc> <done>/<total> <unit> (key value, …)"``."""

    def __init__(self, total: int, desc: str, unit: str, lines: int = 20) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.every = max(1, total // lines)
        self.postfix = ""

    def __iter__(self) -> Iterator[int]:
        for done in range(1, self.total + 1):
            yield done - 1
            if done % self.every == 0 or done == self.total:
                log.info("%s %d/%d %s%s", self.desc, done, self.total, self.unit, self.postfix)

    def set_postfix(self, **values: str) -> None:
        self.postfix = " (" + ", ".join(f"{k} {v}" for k, v in values.items()) + ")"


def bar(total: int, desc: str, unit: str, enabled: bool) -> tqdm | LoggedBar:
    """Iterate ``range(total)`` showing progress when ``enabled``: a bar on a terminal, log lines elsewhere."""
    if enabled and not sys.stderr.isatty():
        return LoggedBar(total, desc, unit)
    return tqdm(range(total), desc=desc, unit=unit, disable=not enabled, leave=False)
