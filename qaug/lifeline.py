"""Nothing ``qaug grid``, ``qaug run`` or ``qaug flow`` starts outlives it, however it ends (``kill -9`` included).

What they start is mostly started by other code: Prefect's temporary server and pool workers (with
multiprocessing's resource tracker), Dask or Ray workers, ``dvc repro`` (in a session of its own) and its
``qaug stage``. A process group does not hold them (DVC and Ray start new sessions), PR_SET_PDEATHSIG reaches
only a direct child and fires when the *thread* that started it ends, and a watchdog thread needs qaug's code
in every process (uvicorn runs none). What they keep is the environment: the main process puts a token in
``QAUG_LIFELINE`` that every process below it inherits. A guard process (in a session of its own, so the
terminal's signals and a kill of the group leave it alone) waits for the main process to end, then stops
every process that carries the token, and those it last saw below the main process (a process that renames
itself, as Ray's agents do with setproctitle, overwrites its environment as /proc shows it; its parent may be
gone first): SIGTERM, a few seconds' grace, SIGKILL.

SIGINT (Ctrl-C), SIGTERM and SIGHUP make the main process stop them itself, then end by the same signal.
Left to Prefect, its shutdown would wait for the running tasks (hours, for a long stage) and then for the
temporary server, which Ctrl-C has already stopped: such a run hung. In exchange a Prefect server of one's
own shows the run as Running, not Crashed. POSIX (psutil reads the environments); a guard that cannot start
is a warning, not a failed run.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

ENV = "QAUG_LIFELINE"
POLL = 1.0  # seconds between the guard's looks at the main process's tree: how late the cleanup starts at worst
GRACE = 5.0  # seconds a process has to end after SIGTERM (the Prefect server closes its database)
SETTLE = 0.1  # a process in the middle of its exec shows no environment yet: a sweep looks twice before it ends
ROUNDS = 3  # a process may start another while it is being stopped; one that outlives SIGKILL ends the sweep

SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))

_guard: subprocess.Popen | None = None
_token: str | None = None  # set in the owning process only: the others inherit ENV but own nothing


def hold() -> None:
    """Make this process (its main thread) the owner of everything started below it from now on (once per process)."""
    global _guard, _token
    if _guard is not None:
        return
    token = f"{os.getpid()}:{secrets.token_hex(8)}"
    env = {k: v for k, v in os.environ.items() if k != ENV}  # the guard is nobody's to stop
    try:
        _guard = subprocess.Popen([sys.executable, "-m", "qaug.lifeline", token], env=env, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, start_new_session=True)
    except OSError as err:
        print(f"qaug: warning: no guard for the processes this run starts ({err}); if it is killed, stop them by hand",
              file=sys.stderr)
        return
    os.environ[ENV] = _token = token
    _install()


@contextmanager
def stopping_first() -> Iterator[None]:
    """Inside a Prefect flow run of the owning process: Prefect puts its own SIGTERM handler in front of
    :func:`hold`'s for the run; this puts ours back for the block. Elsewhere (a flow run by a Prefect worker,
    a test calling a function) it does nothing."""
    if _token is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = _install()
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _install() -> dict:
    """:func:`_on_signal` for SIGNALS the process does not ignore (``nohup`` ignores SIGHUP, a shell's background job
    SIGINT: such a run must go on, as it did before); returns the handlers it replaced."""
    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
    for sig, handler in previous.items():
        if handler is not signal.SIG_IGN:
            signal.signal(sig, _on_signal)
    return previous


def _on_signal(signum: int, frame) -> None:
    """Stop what this process started, then end it by the same signal (a second one ends it at once)."""
    signal.signal(signum, signal.SIG_DFL)
    stopped = sweep(_token, also=below(os.getpid(), leave_out=_guard.pid))
    try:  # the signal may have come in the middle of a write to these streams: a reentrant flush raises
        print(f"qaug: {signal.Signals(signum).name}: stopped {len(stopped)} process(es) this run started", file=sys.stderr, flush=True)
        sys.stdout.flush()
    except (OSError, RuntimeError, ValueError):
        pass
    os.kill(os.getpid(), signum)


def carrying(token: str) -> list:
    """This machine's processes that inherited ``token`` (of those whose environment it may read: the user's own)."""
    import psutil

    found = []
    for proc in psutil.process_iter():
        try:
            if proc.pid != os.getpid() and proc.environ().get(ENV) == token and _alive(proc):
                found.append(proc)
        except psutil.Error:  # ended meanwhile, or not ours
            continue
    return found


def sweep(token: str, also: Sequence = (), grace: float = GRACE) -> list[str]:
    """Stop every process carrying ``token`` and those of ``also`` still running (psutil knows a reused pid
    from the process it saw); returns what was stopped, as ``pid name`` strings."""
    stopped: list[str] = []
    for _ in range(ROUNDS):
        procs = carrying(token)
        procs += [p for p in _alive_only(also) if p not in procs]
        also = ()
        if not procs:
            time.sleep(SETTLE)
            procs = carrying(token)
        if not procs:
            break
        stopped += [_signal(p, "kill" if _ignores(p, signal.SIGTERM) else "terminate") for p in procs]
        alive = _wait(procs, grace)
        for proc in alive:
            _signal(proc, "kill")
        _wait(alive, grace)
    return stopped


def _signal(proc, how: str) -> str:
    """``proc.terminate()`` or ``proc.kill()`` (one that ended meanwhile is fine); its ``pid name``."""
    import psutil

    try:
        label = f"{proc.pid} {proc.name()}"
        getattr(proc, how)()
    except psutil.Error:
        return f"{proc.pid}"
    return label


def _ignores(proc, signum: int) -> bool:
    """Whether ``proc`` ignores ``signum`` (multiprocessing's resource tracker ignores SIGTERM: it would only
    wait out the grace). Linux's /proc; False where it cannot say."""
    try:
        with open(f"/proc/{proc.pid}/status") as status:
            ignored = next(int(line.split()[1], 16) for line in status if line.startswith("SigIgn:"))
    except (OSError, StopIteration, ValueError):
        return False
    return bool(ignored >> (signum - 1) & 1)


def _alive(proc) -> bool:
    """Running and not a zombie (ended: its parent, or an init that may never do it, has yet to reap it)."""
    import psutil

    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _alive_only(procs) -> list:
    return [p for p in procs if _alive(p)]


def _wait(procs: list, timeout: float) -> list:
    """Those of ``procs`` still alive after ``timeout`` seconds (or as soon as none is)."""
    deadline = time.monotonic() + timeout
    while (procs := _alive_only(procs)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return procs


def below(pid: int, leave_out: int | None = None) -> list:
    """The processes below ``pid`` now (none if it is gone), but ``leave_out``."""
    import psutil

    try:
        return [p for p in psutil.Process(pid).children(recursive=True) if p.pid != leave_out]
    except psutil.Error:
        return []


def guard(token: str) -> None:
    """The guard process: wait until the main process (the token's pid) is no longer its parent, then sweep.
    Reparenting is how POSIX says a parent ended, and unlike a pid it cannot be reused meanwhile. Every
    process ever seen below it counts, not the last look alone: while it dies, one below it may end first and
    leave its children to init (Ray's raylet does; its agents, renamed, carry no readable token)."""
    parent = int(token.split(":")[0])
    seen: dict = {}  # everything seen below it and still running: as it dies, its children may go first
    while os.getppid() == parent:
        seen = {p.pid: p for p in _alive_only(seen.values())} | {p.pid: p for p in below(parent, leave_out=os.getpid())}
        time.sleep(POLL)
    stopped = sweep(token, also=list(seen.values()))
    if stopped:
        print(f"qaug: process {parent} ended; stopped {len(stopped)} process(es) it had started: {', '.join(stopped)}",
              file=sys.stderr, flush=True)


if __name__ == "__main__":
    guard(sys.argv[1])
