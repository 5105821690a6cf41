"""No orphans: whatever ends ``qaug grid``, ``run`` or ``flow`` (SIGKILL included), nothing it started survives it —
the temporary Prefect server, pool workers, ``dvc repro`` and its ``qaug stage``. Each test stops only processes it
started itself (psutil checks a pid is still the same process before it signals one)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
import yaml

from qaug.lifeline import ENV, SIGNALS, carrying
from tests.pipeline_helpers import PROJECT, dvc_project, project_env
from tests.test_grid import SMALL, write_grid

BOUND = 30.0  # seconds the survivors of a kill have to be gone in


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    def running(p: psutil.Process) -> bool:
        try:
            return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    return [p for p in procs if running(p)]


def _gone_within(procs: list[psutil.Process], seconds: float) -> list[str]:
    """Those of ``procs`` still running after ``seconds``, described (empty: all gone)."""
    deadline = time.monotonic() + seconds
    while _alive(procs) and time.monotonic() < deadline:
        time.sleep(0.2)
    return [f"{p.pid} {_describe(p)[:120]}" for p in _alive(procs)]


def _describe(p: psutil.Process) -> str:
    try:
        return " ".join(p.cmdline())
    except psutil.Error:
        return ""


def _kill_when(cmd: list[str], cwd: Path, env: dict, ready: Callable[[list[str]], bool], sig: signal.Signals = signal.SIGKILL,
               limit: float = 600) -> list[psutil.Process]:
    """Start ``cmd``; once its descendants' command lines satisfy ``ready``, snapshot them all, send ``sig`` to
    the main process alone, see it end, and return the snapshot (the test then waits for it to go)."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    main, snapshot = psutil.Process(proc.pid), []
    try:
        deadline = time.monotonic() + limit
        while True:
            assert proc.poll() is None, f"{cmd[3]} ended (exit code {proc.returncode}) before it could be killed"
            assert time.monotonic() < deadline, f"{cmd[3]} did not start its processes in {limit:.0f} s"
            snapshot = main.children(recursive=True)
            if ready([_describe(p) for p in snapshot]):
                break
            time.sleep(0.2)
        os.kill(proc.pid, sig)
        try:
            proc.wait(timeout=BOUND)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{cmd[3]} still running {BOUND:.0f} s after {sig.name}") from None
        return snapshot
    except BaseException:
        for p in [main, *snapshot]:
            try:
                p.kill()
            except psutil.Error:
                pass
        raise


def _assert_none_survive(snapshot: list[psutil.Process]) -> None:
    try:
        assert not (left := _gone_within(snapshot, BOUND)), f"still running {BOUND:.0f} s after the kill: {left}"
    finally:
        for p in _alive(snapshot):
            p.kill()


# --- the guard itself ------------------------------------------------------------------------------------------

OWNER = """
import subprocess, sys, time
from qaug.lifeline import hold
hold()
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)  # a session of its own
print(child.pid, flush=True)
time.sleep(600)
"""


def _signals_at_default() -> None:
    """A command started from a terminal: SIGINT, SIGTERM and SIGHUP at their defaults, even where the test session
    inherited them ignored (a CI runner's background job ignores SIGINT, and qaug keeps an ignored signal ignored)."""
    for sig in SIGNALS:
        signal.signal(sig, signal.SIG_DFL)


def _owner() -> tuple[subprocess.Popen, psutil.Process]:
    """A process that holds its lifeline and starts a child outside its process group."""
    owner = subprocess.Popen([sys.executable, "-c", OWNER], cwd=PROJECT, stdout=subprocess.PIPE, text=True, start_new_session=True,
                             preexec_fn=_signals_at_default)
    return owner, psutil.Process(int(owner.stdout.readline()))


def _environ(p: psutil.Process) -> dict:
    """``p``'s environment, once its exec is done (until then Linux shows it empty)."""
    deadline = time.monotonic() + 10
    while not (env := p.environ()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return env


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_nothing_the_owner_started_outlives_it_however_it_ends(sig) -> None:
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])  # not the owner's: must survive
    owner, child = _owner()
    guard = next(p for p in psutil.Process(owner.pid).children() if p.pid != child.pid)
    try:
        assert ENV in _environ(child) and ENV not in _environ(guard)
        owner.send_signal(sig)
        assert owner.wait(timeout=60) == -sig  # ended by the signal itself, as without qaug's handler
        if sig != signal.SIGKILL:  # the owner stopped its child itself, before it ended
            assert not _alive([child])
        assert not _gone_within([child, guard], BOUND)  # the guard leaves once its work is done
        assert bystander.poll() is None
    finally:
        for p in (owner, bystander):
            if p.poll() is None:
                p.kill()
            p.wait()
        for p in _alive([child, guard]):
            p.kill()


def test_only_processes_carrying_the_token_are_found(monkeypatch) -> None:
    monkeypatch.setenv(ENV, "1:feedbeef")
    marked = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    monkeypatch.setenv(ENV, "1:other")
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        for p in (marked, other):
            _environ(psutil.Process(p.pid))
        assert [p.pid for p in carrying("1:feedbeef")] == [marked.pid]
    finally:
        for p in (marked, other):
            p.kill()
            p.wait()


# --- the commands ----------------------------------------------------------------------------------------------


def _without_prefect_api() -> dict:
    env = project_env()
    env.pop("PREFECT_API_URL", None)  # its own temporary server, as a user without a Prefect server gets
    return env


def test_a_killed_grid_leaves_neither_its_prefect_server_nor_its_workers(tmp_path) -> None:
    path = write_grid(tmp_path, SMALL)
    env = {**_without_prefect_api(), "PREFECT_HOME": str(tmp_path / "prefect")}
    cmd = [sys.executable, "-m", "cli", "grid", str(path), "--out", str(tmp_path / "out"), "--no-progress"]
    snapshot = _kill_when(cmd, tmp_path, env, lambda lines: any("uvicorn" in line and "prefect.server" in line for line in lines)
                          and any("multiprocessing.spawn" in line for line in lines))
    _assert_none_survive(snapshot)


@pytest.mark.parametrize("command, sig", [("flow", signal.SIGKILL), ("run", signal.SIGKILL),
                                          pytest.param("flow", signal.SIGTERM, marks=pytest.mark.slow)],  # the guard's own SIGTERM test covers it
                         ids=["flow-SIGKILL", "run-SIGKILL", "flow-SIGTERM"])
def test_a_killed_pipeline_run_leaves_no_dvc_stage_or_server(tmp_path, command, sig) -> None:
    """``qaug flow`` (Prefect's temporary server) or ``qaug run`` (plain ``dvc repro``), killed while a stage runs:
    train_baseline, made to run for many minutes (left alone, DVC and the stage would finish it; Prefect's own
    SIGTERM handling would wait for it)."""
    root = dvc_project(tmp_path / "proj")
    raw = yaml.safe_load((root / "params.yaml").read_text())
    raw["baseline"]["min_steps"] = 10**6
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    env = {**_without_prefect_api(), "PREFECT_HOME": str(tmp_path / "prefect")}

    def stage_running(lines: list[str]) -> bool:
        server = command == "run" or any("uvicorn" in line and "prefect.server" in line for line in lines)
        return server and any("dvc repro" in line for line in lines) and any("qaug stage train_baseline" in line for line in lines)

    snapshot = _kill_when([sys.executable, "-m", "cli", command], root, env, stage_running, sig)
    _assert_none_survive(snapshot)


def test_signals_the_process_ignores_stay_ignored() -> None:
    """`nohup qaug grid …` ignores SIGHUP: logging out must not stop the run (the guard's handler would)."""
    from qaug import lifeline

    before = {sig: signal.getsignal(sig) for sig in lifeline.SIGNALS}
    try:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        replaced = lifeline._install()
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) is lifeline._on_signal
        assert replaced[signal.SIGHUP] is signal.SIG_IGN
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
