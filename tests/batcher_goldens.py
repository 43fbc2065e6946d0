"""The golden histories of a batched subscriber (workflows/batcher.py), kept in
tests/histories/batchers/: its batcher, which sends three deliveries as a full batch of two
and, after max_wait, a partial one of one; and the subscriber's session, where the first batch
completes and the second fails for good and is dead-lettered event by event.

``batcher`` and ``batch_session`` were recorded before a send waited for its batch's outcome;
``batcher_waits`` and ``batch_session_waits`` since (each send returns with the outcome, the
session answering its ``event_result`` update), with the deliveries arriving as
``batch_add_many``; ``batch_bus_shard`` is the bus shard that fanned the three out, counting its
fan-outs by events (workflows/_checkpoint.py). Recorded by ``python -m tests.record_histories
batcher_waits batch_session_waits batch_bus_shard``; replayed by tests/test_bus_batches.py."""

from __future__ import annotations

import asyncio
from pathlib import Path

from temporalio.client import Client, WorkflowHistory

from agentflow.client.batches import batch_session
from agentflow.client.bus import client_request, publish, session_counts
from agentflow.config import FlowConfig, parse_config
from agentflow.models.bus import shard_session, subscribers_of
from agentflow.names import BUS_FLOW, batcher_workflow_id, session_workflow_id
from agentflow.worker.serve import serving
from tests.conftest import REPO

BATCHER_HISTORIES = Path(__file__).parent / "histories" / "batchers"
BATCHER_GOLDENS = (
    "batchers/batcher",
    "batchers/batch_session",
    "batchers/batcher_waits",
    "batchers/batch_session_waits",
    "batchers/batch_bus_shard",
)


def golden_batch_flow() -> FlowConfig:
    raw = {
        "agent_flow": {"name": "golden-batched"},
        "orchestration": {"mode": "route"},
        "agents": {"taker": {"handler": "tests.batch_agents:log_batch", "retry_attempts": 1,
                             "subscribes": ["golden.batched"],
                             "batch": {"max_events": 2, "max_wait": "1s"}}},
    }  # fmt: skip
    return parse_config(raw, base_dir=REPO, check_handlers=True)


async def record_batcher_goldens(client: Client, log: Path) -> dict[str, WorkflowHistory]:
    config = golden_batch_flow()
    async with serving(client, [(config, REPO)], task_queue="golden-batched") as worker:
        sub = subscribers_of(config, worker.task_queue)[0]
        for n in range(3):  # one key: in publish order; the third one's batch fails
            data = {"n": n, "log_file": str(log), "fail": n == 2}
            request = client_request(config, "golden.batched", data, identity="golden",
                                     key="k", event_id=f"golden-batched-{n}")  # fmt: skip
            await publish(client, request)
        session = session_workflow_id(config.name, batch_session(sub))
        for _ in range(600):
            counts = await session_counts(client, session, 5.0)
            if counts and counts.completed and counts.dead_lettered:
                break
            await asyncio.sleep(0.1)
        else:
            raise TimeoutError(f"{session}: the batches did not finish")
        batcher = batcher_workflow_id(config.name, sub.agent)
        shard = session_workflow_id(BUS_FLOW, shard_session("k", "golden-batched-0"))
        return {
            "batchers/batcher_waits": await client.get_workflow_handle(batcher).fetch_history(),
            "batchers/batch_session_waits": await client.get_workflow_handle(
                session
            ).fetch_history(),
            "batchers/batch_bus_shard": await client.get_workflow_handle(shard).fetch_history(),
        }
