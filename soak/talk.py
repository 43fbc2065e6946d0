"""The LLM side of the soak: runs of an agent that calls a tool, and the long conversation
(one session, one turn per event, the prompt carrying every earlier turn), on the flow
without a payload store and on the one with it; then what each conversation's history holds."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from agentflow.client.sessions import event_outcome
from agentflow.models.session import EventOutcome
from agentflow.names import session_workflow_id
from soak.load import Counts, paced, run_to_end, runner
from soak.retry import patiently

LONG_SESSION = "long"


async def llm_runs(path: Path, runs: int, seconds: float, book: Counts) -> None:
    flow = runner(path)

    async def send(i: int) -> None:
        key = f"llm-{i:05d}"
        await run_to_end(flow, key, {"key": key, "message": f"[conv:{key}] look it up"}, book)

    await paced(runs, seconds, send)


async def conversation(path: Path, turns: int, book: Counts) -> None:
    """``turns`` events into one session, each waited for before the next is sent."""
    if not turns:
        return
    flow = runner(path)
    name = flow.config.name
    client = await flow.client()
    workflow_id = session_workflow_id(name, LONG_SESSION)
    for turn in range(turns):
        key = f"{name}-t{turn:04d}"
        data = {"key": key, "turn": turn}
        await patiently(partial(flow.emit, data, session_id=LONG_SESSION, event_id=key), "emit")
        book.emitted[f"{name}:{LONG_SESSION}"] += 1
        outcome = await patiently(partial(_outcome, client, workflow_id, key), "outcome")
        book.runs[f"{name}:{outcome.status}"] += 1


async def _outcome(client: Client, workflow_id: str, event_id: str) -> EventOutcome:
    """The event's outcome; a wait that outlasts a server restart is asked again."""
    return await asyncio.wait_for(event_outcome(client, workflow_id, event_id), 60)


@dataclass
class RunSize:
    run_id: str
    events: int
    bytes: int
    turns: int


@dataclass
class Measured:
    flow: str
    runs: list[RunSize] = field(default_factory=list)
    # Bytes recorded per turn (every history event of the turn's activities), in turn order.
    per_turn: list[int] = field(default_factory=list)


async def measure(client: Client, flow: str) -> Measured:
    """Every run of the long session, newest first, followed back through continue-as-new."""
    measured = Measured(flow)
    handle = client.get_workflow_handle(session_workflow_id(flow, LONG_SESSION))
    run_id: str | None = None
    runs: list[tuple[RunSize, list[int]]] = []
    while True:
        history = await patiently(
            client.get_workflow_handle(handle.id, run_id=run_id).fetch_history,
            "history",
        )
        turns: dict[str, int] = {}
        by_event: dict[int, str] = {}
        total = 0
        for event in history.events:
            size = event.ByteSize()
            total += size
            turn = _turn_of(event, by_event)
            if turn is not None:
                turns[turn] = turns.get(turn, 0) + size
        first = history.events[0].workflow_execution_started_event_attributes
        run = RunSize(history.run_id, len(history.events), total, len(turns))
        runs.append((run, list(turns.values())))
        previous = first.continued_execution_run_id
        if not previous:
            break
        run_id = previous
    for run, sizes in reversed(runs):
        measured.runs.append(run)
        measured.per_turn += sizes
    return measured


def _turn_of(event: HistoryEvent, by_event: dict[int, str]) -> str | None:
    """The turn (activity id prefix ``SEQ.``) an activity's event belongs to."""
    if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
        seq = event.activity_task_scheduled_event_attributes.activity_id.split(".")[0]
        by_event[event.event_id] = seq
        return seq
    for name in ("activity_task_started_event_attributes",
                 "activity_task_completed_event_attributes",
                 "activity_task_failed_event_attributes",
                 "activity_task_timed_out_event_attributes"):  # fmt: skip
        if event.HasField(name):
            return by_event.get(getattr(event, name).scheduled_event_id)
    return None
