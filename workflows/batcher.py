"""A batched subscriber's batcher: one long-lived workflow per flow and agent
(``batch = { max_events, max_wait }``) that gathers the bus's deliveries to the agent and
sends them on as batches, each one event into the subscriber's session.

Deliveries arrive as the ``batch_add_many`` signal (``batch_add`` before it: one each), the
fan-outs' signal-with-start, recorded by the server whether or not a worker runs; one signal
holds the deliveries that reached a worker's fan-outs together. They are remembered by id, so
a retried fan-out adds nothing twice. A batch goes out when ``max_events`` wait, or when
``max_wait`` has passed since the first of them arrived (a durable timer), in arrival order.
Sending is an activity that records the batch in the session and waits for its outcome there,
heartbeating; its id is a digest of its events' ids, so a retried send dedupes there. The
session calls the agent once per batch and, when the batch fails for good, dead-letters each
of its events (workflows/_letters.py); a batch the session refuses (one it can never take) is
dead-lettered here, event by event. Batches are sent one after another, each once the one
before has its outcome: the session runs them in order, and a slow agent leaves the
deliveries waiting here, where they grow the next batch, not the session's queue. The run
continues as new every ``BATCHES_PER_RUN`` batches and ends once nothing has waited for
``IDLE_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from agentflow.models.batcher import (
        HEARTBEAT_SECONDS,
        IDLE_SECONDS,
        MAX_BATCH_BYTES,
        MAX_REMEMBERED,
        BatcherState,
        BatcherView,
        BatchSend,
        batch_event,
    )
    from agentflow.models.flow import Event
    from agentflow.names import (
        BATCH_ADD_MANY_SIGNAL,
        BATCH_ADD_SIGNAL,
        BATCH_DELIVER_ACTIVITY,
        BATCHER_QUERY,
        BATCHER_WORKFLOW,
    )
    from agentflow.workflows._batch_letters import refused_letter, split_batch
    from agentflow.workflows._letters import start_letter

BATCHES_PER_RUN = 200
# Recording a batch in a session is one signal-with-start: retried until the server takes it.
SEND_TIMEOUT = timedelta(seconds=30)
SEND_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=10))
# Batchers that started before sends waited for the batch's outcome replay without the wait.
WAIT_PATCH = "batcher-waits-outcome"
# A send that waits: as long as a batch's call may take (retries included); its heartbeat
# notices a dead worker sooner, and a retry asks the session for the outcome again.
WAIT_TIMEOUT = timedelta(hours=1)


@workflow.defn(name=BATCHER_WORKFLOW)
class BatcherWorkflow:
    @workflow.init
    def __init__(self, state: BatcherState) -> None:
        self.state = state
        self.seen = set(state.seen)

    @workflow.signal(name=BATCH_ADD_SIGNAL)
    def add(self, event: Event) -> None:
        if event.id in self.seen:
            return
        self.seen.add(event.id)
        self.state.seen.append(event.id)
        if len(self.state.seen) > MAX_REMEMBERED:
            self.seen.discard(self.state.seen.pop(0))
        self.state.pending.append(event)
        self.state.arrived.append(workflow.now())

    @workflow.signal(name=BATCH_ADD_MANY_SIGNAL)
    def add_many(self, events: list[Event]) -> None:
        """Deliveries that reached one worker's fan-outs together, in order."""
        for event in events:
            self.add(event)

    @workflow.query(name=BATCHER_QUERY)
    def view(self) -> BatcherView:
        oldest = self.state.arrived[0] if self.state.arrived else None
        return BatcherView(waiting=len(self.state.pending), batches=self.state.batches,
                           oldest=oldest)  # fmt: skip

    @workflow.run
    async def run(self, state: BatcherState) -> int:
        sent_here = 0
        while True:
            if sent_here >= BATCHES_PER_RUN or workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self.state)
            if not self.state.pending:
                try:
                    await workflow.wait_condition(
                        lambda: bool(self.state.pending), timeout=timedelta(seconds=IDLE_SECONDS)
                    )
                except asyncio.TimeoutError:
                    await workflow.wait_condition(workflow.all_handlers_finished)
                    if not self.state.pending:
                        return self.state.batches
                continue
            await self._full_or_due()
            await self._send()
            sent_here += 1

    async def _full_or_due(self) -> None:
        """Wait until ``max_events`` wait or ``max_wait`` has passed since the first came."""
        state = self.state
        due = state.arrived[0] + timedelta(seconds=state.max_wait_seconds)
        left = (due - workflow.now()).total_seconds()
        if len(state.pending) >= state.max_events or left <= 0:
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await workflow.wait_condition(
                lambda: len(state.pending) >= state.max_events, timeout=timedelta(seconds=left)
            )

    async def _send(self) -> None:
        state = self.state
        events = state.pending[: state.max_events]
        event = batch_event(events, state.session_id, workflow.now())
        waits = workflow.patched(WAIT_PATCH)
        send = BatchSend(config=state.config, task_queue=state.task_queue, event=event,
                         wait=waits)  # fmt: skip
        while len(events) > 1 and len(event.model_dump_json()) > MAX_BATCH_BYTES:
            events = events[: len(events) // 2]  # too large for the session: fewer events
            send.event = event = batch_event(events, state.session_id, workflow.now())
        try:
            await workflow.execute_activity(
                BATCH_DELIVER_ACTIVITY,
                send,
                start_to_close_timeout=WAIT_TIMEOUT if waits else SEND_TIMEOUT,
                heartbeat_timeout=timedelta(seconds=HEARTBEAT_SECONDS) if waits else None,
                retry_policy=SEND_RETRY, summary=f"batch of {len(events)} to {state.agent}",
            )  # fmt: skip
        except ActivityError as err:  # refused for good (never takeable): a letter per event
            letter = refused_letter(state.flow, event, str(err.cause or err))
            for part in split_batch(letter):
                await start_letter(part, state.config)
        del state.pending[: len(events)]
        del state.arrived[: len(events)]
        state.batches += 1
