"""One process at a time on a project or grid folder: a second is refused at once, told who holds it."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def held(path: Path, refuse: Callable[[str], Exception]) -> Iterator[None]:
    """Hold an advisory lock on ``path`` (created if missing) while the block runs; when another process holds
    it, raise ``refuse(pid)`` — the kernel drops the lock with its holder, so a killed run leaves none behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise refuse(handle.read().strip() or "?") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
