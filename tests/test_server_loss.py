"""A Prefect server killed in the middle of `qaug flow`: the command ends with one line saying what to do, and once
the server is back, the automation `qaug automations` installed marks the orphaned run Crashed instead of leaving it
Running forever. The test's own server (not the session's: it is killed), on a free port, restarted on its database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.pipeline_helpers import project_env, tiny_params


class Server:
    """``prefect server start`` on a free port with its own PREFECT_HOME (database): kill -9 and start again."""

    def __init__(self, home: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/api"
        self.env = project_env(PREFECT_HOME=str(home), PREFECT_API_URL=self.url, PREFECT_SERVER_UI_ENABLED="false",
                               PREFECT_SERVER_ANALYTICS_ENABLED="false")
        self.proc: subprocess.Popen | None = None
        self.log = home / "server.log"
        home.mkdir(parents=True, exist_ok=True)

    def start(self, timeout: float = 180) -> None:
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
                                         env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            time.sleep(0.3)
        raise TimeoutError(f"the Prefect server did not start in {timeout} s")

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@pytest.fixture
def server(tmp_path):
    own = Server(tmp_path / "prefect-home")
    own.start()
    yield own
    own.kill()


def project(root: Path) -> Path:
    """The smallest project `qaug flow` runs: tiny params and a two-stage dvc.yaml whose first stage says it
    started and then takes a few seconds (the time the server dies in)."""
    env = project_env()
    root.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=root, check=True, env=env, timeout=300)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=root, check=True, env=env, timeout=300)
    (root / "params.yaml").write_text(yaml.safe_dump(tiny_params(), sort_keys=False))
    slow = "import time; print('first started', flush=True); time.sleep(6); open('a.txt', 'w').write('a')"
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": {
        "first": {"cmd": f'python -c "{slow}"', "outs": ["a.txt"]},
        "second": {"cmd": "python -c \"open('b.txt', 'w').write(open('a.txt').read())\"", "deps": ["a.txt"], "outs": ["b.txt"]}}}))
    return root


def test_a_server_lost_mid_flow_costs_one_line_and_its_run_ends_crashed(server, tmp_path) -> None:
    from datetime import timedelta

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.automations import ZOMBIES, install

    root = project(tmp_path / "proj")
    with temporary_settings({PREFECT_API_URL: server.url}):
        # the shipped window is 3 heartbeats of 60 s; the test's run beats every 30 s (Prefect's minimum) and its
        # process is gone once the CLI has returned, so a short window proves the mechanism in seconds
        assert install(within=timedelta(seconds=10)) == [ZOMBIES]
    env = {**server.env, "PYTHONPATH": os.environ.get("PYTHONPATH", ""), "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30",
           "PREFECT_CLIENT_MAX_RETRIES": "1",  # the CLI gives the server up in seconds, not after its default backoff
           "PREFECT_LOGGING_LEVEL": "INFO"}  # the stage's lines on the terminal, whatever an in-process `qaug grid` left in os.environ
    cli = subprocess.Popen([sys.executable, "-m", "cli", "flow"], cwd=root, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)  # stderr read by one thread only, as it comes
    err: list[str] = []
    said: list[float] = []  # when the CLI said it lost the server
    started = threading.Event()

    def read_stderr() -> None:
        for line in cli.stderr:
            err.append(line)
            if line.rstrip().endswith(": first started"):
                started.set()
            if "lost the Prefect server" in line:
                said.append(time.monotonic())

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        assert started.wait(240), "".join(err)
        server.kill()
        killed = time.monotonic()
        cli.wait(timeout=300)
    finally:
        cli.kill()
    reader.join(10)
    started_at = next(i for i, line in enumerate(err) if line.rstrip().endswith(": first started"))
    after = [line.rstrip() for line in err[started_at + 1:] if line.strip()]
    assert cli.returncode == 2, "".join(err)
    assert len(after) == 1 and "Traceback" not in "".join(after), "\n".join(after)
    (line,) = after
    assert line.startswith(f"qaug flow: lost the Prefect server at {server.url}: "), line
    assert "start the server again (`prefect server start`) and run `qaug flow` to go on" in line, line
    assert said[0] - killed < 10  # said when it happened, not after Prefect's retries (minutes with its defaults)

    server.start()
    with temporary_settings({PREFECT_API_URL: server.url}), get_client(sync_client=True) as client:
        (run,) = client.read_flow_runs()
        assert run.state.type in (StateType.RUNNING, StateType.CRASHED)  # Running forever, before the automation
        deadline = time.monotonic() + 60
        while (state := client.read_flow_run(run.id).state).type == StateType.RUNNING and time.monotonic() < deadline:
            time.sleep(1)
    assert state.type == StateType.CRASHED and "no heartbeat" in state.message, state


def test_qaug_automations_installs_once_and_refuses_what_it_cannot_do(prefect_api, capsys) -> None:
    """Heartbeats off or an unknown notification block: one line, exit 2, nothing installed; a second install
    replaces the first; --notify adds the failure notification through that block."""
    from prefect.blocks.notifications import SlackWebhook
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from cli.main import main
    from flows.automations import FAILURES, ZOMBIES

    def installed() -> dict:
        with get_client(sync_client=True) as client:
            return {name: client.read_automations_by_name(name) for name in (ZOMBIES, FAILURES)}

    before = installed()  # `qaug deploy` in another test of the session may have installed the first
    assert main(["automations"]) == 2  # the test session sends no heartbeats
    assert "flow-run heartbeats are off" in capsys.readouterr().err
    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: 60}):
        assert main(["automations", "--notify", "slack-webhook/nobody"]) == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert line.startswith("qaug automations: --notify slack-webhook/nobody: no such notification block"), line
        assert installed() == before
        assert main(["automations"]) == 0 and main(["automations"]) == 0
        (zombies,) = installed()[ZOMBIES]
        assert zombies.trigger.within.total_seconds() == 180 and zombies.actions[0].state.value == "CRASHED"
        block = SlackWebhook(url="http://127.0.0.1:9/hook").save(f"qaug-test-{id(capsys)}")
        assert main(["automations", "--notify", f"slack-webhook/qaug-test-{id(capsys)}"]) == 0
    found = installed()
    (failures,) = found[FAILURES]
    assert len(found[ZOMBIES]) == 1 and failures.actions[0].block_document_id == block
    assert failures.trigger.expect == {"prefect.flow-run.Failed", "prefect.flow-run.Crashed", "prefect.flow-run.TimedOut"}
