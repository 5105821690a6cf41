"""The server-side automations a qaug Prefect server needs: a flow run whose process is gone is marked Crashed,
not left Running forever; optionally, a notification when a run fails.

Prefect 3.8's flow engine emits a ``prefect.flow-run.heartbeat`` event every ``flows.heartbeat_frequency``
seconds from the process that runs the flow — ``qaug flow`` and ``qaug run`` in-process as much as a worker's
run (prefect.toml sets 60 s). A process that dies, or that loses its server and gives up, sends neither
heartbeats nor a final state; the zombie automation (a proactive trigger, as Prefect's "detect zombie flows"
guide has it) waits ``MISSED`` heartbeat intervals after the last one for another heartbeat or a final state,
then sets the run Crashed. Its buckets live in the server's database, so a run whose server was killed is
crashed once the server is back. Both automations apply to qaug's flows only (other flows on a shared server
may beat at another frequency), and installing them again replaces them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Prefect is imported where it is used: the CLI imports AutomationError on every input error
    from prefect.automations import Automation
    from prefect.events.schemas.automations import EventTrigger

FLOWS = ("qaug-pipeline", "qaug-stage", "qaug-grid", "qaug-grid-report")  # the @flow names in flows/ and grid/engine.py
ZOMBIES = "qaug: crash runs whose heartbeats stopped"
FAILURES = "qaug: notify on failed runs"
MISSED = 3  # heartbeat intervals without one before a run counts as crashed: one late beat is not a crash
FINAL = ("Completed", "Failed", "Cancelled", "Crashed", "TimedOut")


class AutomationError(ValueError):
    """The automations cannot be installed as asked (heartbeats off, an unknown notification block)."""


def _qaug_flow_runs(**trigger) -> EventTrigger:
    from prefect.events.schemas.automations import EventTrigger
    from prefect.events.schemas.events import ResourceSpecification

    return EventTrigger(match=ResourceSpecification({"prefect.resource.id": "prefect.flow-run.*"}),
                        match_related=ResourceSpecification({"prefect.resource.role": "flow", "prefect.resource.name": list(FLOWS)}),
                        for_each={"prefect.resource.id"}, **trigger)


def crash_zombies(within: timedelta) -> Automation:
    """A qaug flow run with no heartbeat nor final state for ``within`` after its last heartbeat: Crashed."""
    from prefect.automations import Automation
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import Posture

    return Automation(
        name=ZOMBIES, description="qaug flow runs whose process stopped sending heartbeats (killed, or lost its server) are marked Crashed",
        trigger=_qaug_flow_runs(after={"prefect.flow-run.heartbeat"},
                                expect={"prefect.flow-run.heartbeat", *(f"prefect.flow-run.{s}" for s in FINAL)},
                                posture=Posture.Proactive, threshold=1, within=within),
        actions=[ChangeFlowRunState(state=StateType.CRASHED, message=f"no heartbeat for {within.total_seconds():.0f} s: its process "
                                    "ended without reporting (killed, or it lost the Prefect server); `qaug run` goes on from dvc.lock")])


def notify_failures(block_document_id) -> Automation:
    """A qaug flow run that fails, crashes or times out: a message through the notification block."""
    from prefect.automations import Automation
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import Posture

    return Automation(
        name=FAILURES, description="a message when a qaug flow run fails, crashes or times out",
        trigger=_qaug_flow_runs(expect={"prefect.flow-run.Failed", "prefect.flow-run.Crashed", "prefect.flow-run.TimedOut"},
                                posture=Posture.Reactive, threshold=1),
        actions=[SendNotification(block_document_id=block_document_id, subject="qaug: {{ flow_run.name }} {{ flow_run.state.name }}",
                                  body="Flow run {{ flow_run.name }} ({{ flow.name }}) ended {{ flow_run.state.name }}: "
                                       "{{ flow_run.state.message }}\n{{ flow_run|ui_url }}")])


def zombie_window() -> timedelta:
    """``MISSED`` heartbeat intervals of this process's settings (prefect.toml in the project root)."""
    from prefect.settings import get_current_settings

    every = get_current_settings().flows.heartbeat_frequency
    if every is None:
        raise AutomationError("flow-run heartbeats are off (PREFECT_FLOWS_HEARTBEAT_FREQUENCY is unset): set flows.heartbeat_frequency "
                              "in prefect.toml (qaug ships 60) so a dead run can be told from a live one")
    return timedelta(seconds=MISSED * every)


def install(notify: str | None = None, within: timedelta | None = None) -> list[str]:
    """Create (or replace) the zombie automation and, with ``notify`` ("block-type/block-name", e.g.
    "slack-webhook/team"), the failure notification; returns the installed automations' names."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    automations = [crash_zombies(within or zombie_window())]
    with get_client(sync_client=True) as client:
        if notify:
            kind, _, name = notify.partition("/")
            try:
                block = client.read_block_document_by_name(name=name, block_type_slug=kind, include_secrets=False)
            except ObjectNotFound:
                raise AutomationError(f"--notify {notify}: no such notification block on this server: create it (UI: Blocks, "
                                      "or `prefect block create slack-webhook`) and pass it as TYPE/NAME") from None
            automations.append(notify_failures(block.id))
        for automation in automations:
            for old in client.read_automations_by_name(automation.name):
                client.delete_automation(old.id)
    for automation in automations:
        automation.create()
    return [a.name for a in automations]
