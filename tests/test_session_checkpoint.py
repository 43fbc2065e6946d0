"""The session's checkpoint (workflows/_checkpoint.py): a session that takes its events one at a
time, idle in between, records no checkpoint activity, however many events it takes; one with
a queue of events ends its workflow task every CHECKPOINT_EVENTS events (or CHECKPOINT_LOCAL_MS
of local work), and processes every event once."""

from __future__ import annotations

import asyncio
import uuid

from temporalio.client import Client

from agentflow.client.runner import Runner
from agentflow.client.sessions import session_view
from agentflow.names import SESSION_CHECKPOINT, session_workflow_id
from agentflow.worker.serve import build_worker
from agentflow.workflows._checkpoint import CHECKPOINT_EVENTS
from tests.conftest import REPO, flow_config

AGENTS = [f"a{index}" for index in range(5)]
CONFIG = flow_config("sequential", dict.fromkeys(AGENTS, "tests.agents:noop"),
                     sequential_agents=AGENTS, local_agents=True)  # fmt: skip


async def _checkpoints(client: Client, session: str) -> int:
    handle = client.get_workflow_handle(session_workflow_id(CONFIG.name, session))
    found = 0
    async for event in handle.fetch_history_events():
        if event.HasField("activity_task_scheduled_event_attributes"):
            kind = event.activity_task_scheduled_event_attributes.activity_type.name
            found += kind == SESSION_CHECKPOINT
    return found


async def test_idle_session_records_no_checkpoint_and_a_busy_one_does(client: Client) -> None:
    task_queue = f"checkpoint-{uuid.uuid4().hex[:8]}"
    runner = Runner(CONFIG, client, task_queue)
    idle, busy = f"idle-{uuid.uuid4().hex[:6]}", f"busy-{uuid.uuid4().hex[:6]}"
    queued = 3 * CHECKPOINT_EVENTS - 5
    # No worker yet: the busy session's events are all recorded before it runs one of them.
    for n in range(queued):
        await runner.emit({"n": n}, session_id=busy)
    async with build_worker(client, [(CONFIG, REPO)], task_queue=task_queue):
        for n in range(CHECKPOINT_EVENTS + 2):  # one at a time: idle before each
            outcome = await (await runner.emit({"n": n}, session_id=idle, wait=True)).outcome()
            assert outcome.status == "completed"
        async with asyncio.timeout(60):
            while (view := await session_view(client, CONFIG.name, busy)).counts.processed < queued:
                await asyncio.sleep(0.1)
    assert await _checkpoints(client, idle) == 0
    assert view.counts.processed == queued and view.counts.dead_lettered == 0
    # Before event 11 and event 21 at the latest (earlier when 50 ms of local work came first).
    assert 2 <= await _checkpoints(client, busy) < queued
