"""Batched subscribers (``batch = { max_events, max_wait }``): the fan-out's deliveries to one
go to its batcher (workflows/batcher.py), which sends them on to the subscriber's session in
batches. See docs/bus.md "Batched subscribers"."""

from __future__ import annotations

import asyncio
import weakref

from temporalio.client import Client

from agentflow.config import FlowConfig
from agentflow.config.batch import BatchConfig
from agentflow.models.batcher import BatcherState
from agentflow.models.bus import WHOLE_FLOW, Subscriber, short_id
from agentflow.models.flow import Event
from agentflow.names import BATCH_ADD_MANY_SIGNAL, BATCHER_WORKFLOW, batcher_workflow_id


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
    returns the batcher's workflow id once Temporal has it. A repeat (a retried fan-out) is
    dropped there by id.

    The shards fan out at once, so deliveries to one batcher are sent together: one signal
    (``batch_add_many``) carries every delivery that came while the one before was in flight,
    in the order they came (a shard awaits each event's fan-out, so a key's events keep their
    order). Each caller returns once the signal holding its event was recorded, and gets its
    error when that failed (its fan-out is retried)."""
    workflow_id = batcher_workflow_id(sub.flow, sub.agent)
    start = BatcherState(flow=sub.flow, agent=sub.agent, task_queue=sub.task_queue,
                         session_id=batch_session(sub), config=config,
                         max_events=batch.max_events,
                         max_wait_seconds=batch.max_wait)  # fmt: skip
    outboxes = _OUTBOXES.setdefault(client, {})
    outbox = outboxes.setdefault(workflow_id, _Outbox(client, workflow_id))
    await outbox.add(event, sub, start)
    return workflow_id


class _Outbox:
    """The deliveries to one batcher from this process that wait for a signal."""

    def __init__(self, client: Client, workflow_id: str) -> None:
        self.client, self.workflow_id = client, workflow_id
        self.waiting: list[tuple[Event, asyncio.Future[None]]] = []
        self.sending: asyncio.Task[None] | None = None
        self.start: tuple[Subscriber, BatcherState] | None = None

    async def add(self, event: Event, sub: Subscriber, start: BatcherState) -> None:
        done = asyncio.get_running_loop().create_future()
        self.waiting.append((event, done))
        self.start = (sub, start)  # the newest registration's, should the batcher start
        if self.sending is None or self.sending.done():
            self.sending = asyncio.create_task(self._send_all())
        await done  # cancelled: its event may still be sent (a retried fan-out dedupes)

    async def _send_all(self) -> None:
        while self.waiting and self.start is not None:
            (sub, start), (sent, self.waiting) = self.start, (self.waiting, [])
            try:
                await self.client.start_workflow(
                    BATCHER_WORKFLOW, start, id=self.workflow_id, task_queue=sub.task_queue,
                    start_signal=BATCH_ADD_MANY_SIGNAL,
                    start_signal_args=[[event for event, _ in sent]],
                    static_summary=f"batches of {sub.flow}.{sub.agent}'s bus deliveries",
                )  # fmt: skip
            except Exception as err:  # each fan-out sees it, and is retried
                for _, done in sent:
                    if not done.done():
                        done.set_exception(err)
            else:
                for _, done in sent:
                    if not done.done():
                        done.set_result(None)


# Per client: one outbox per batcher that this process delivers to.
_OUTBOXES: weakref.WeakKeyDictionary[Client, dict[str, _Outbox]] = weakref.WeakKeyDictionary()
