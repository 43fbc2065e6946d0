"""Batched subscribers (``batch = { max_events, max_wait }``): the fan-out's deliveries to one
go to its batcher (workflows/batcher.py), which sends them on to the subscriber's session in
batches. See docs/bus.md "Batched subscribers"."""

from __future__ import annotations

from temporalio.client import Client

from agentflow.config import FlowConfig
from agentflow.config.batch import BatchConfig
from agentflow.models.batcher import BatcherState
from agentflow.models.bus import WHOLE_FLOW, Subscriber, short_id
from agentflow.models.flow import Event
from agentflow.names import BATCH_ADD_SIGNAL, BATCHER_WORKFLOW, batcher_workflow_id


def batch_of(config: FlowConfig, sub: Subscriber) -> BatchConfig | None:
    """The subscriber's ``batch`` (None: each delivery is its own call)."""
    agent = config.agents.get(sub.agent) if sub.agent != WHOLE_FLOW else None
    return agent.batch if agent is not None else None


def batch_session(sub: Subscriber) -> str:
    """The session that runs a batched subscriber's batches, one after another."""
    return short_id(f"bus:{sub.agent}:batch")


async def add_to_batch(
    client: Client, config: FlowConfig, sub: Subscriber, batch: BatchConfig, event: Event
) -> str:
    """Record ``event`` (a delivery) in the subscriber's batcher, starting it if none runs;
    returns the batcher's workflow id. A repeat (a retried fan-out) is dropped there by id."""
    workflow_id = batcher_workflow_id(sub.flow, sub.agent)
    start = BatcherState(flow=sub.flow, agent=sub.agent, task_queue=sub.task_queue,
                         session_id=batch_session(sub), config=config,
                         max_events=batch.max_events,
                         max_wait_seconds=batch.max_wait)  # fmt: skip
    await client.start_workflow(
        BATCHER_WORKFLOW, start, id=workflow_id, task_queue=sub.task_queue,
        start_signal=BATCH_ADD_SIGNAL, start_signal_args=[event],
        static_summary=f"batches of {sub.flow}.{sub.agent}'s bus deliveries",
    )  # fmt: skip
    return workflow_id
