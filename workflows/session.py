"""A session: one long-lived workflow that takes emitted events one at a time, in priority order
and then in arrival order, and keeps the session's context between them.

Events arrive as the ``emit`` signal (recorded by the server at once, whether or not a worker
runs) or an update (``emit_and_wait``; ``emit_and_wait_by_key`` names a config this run has).
Each runs the flow's mode in this workflow, so an event into a live session does not pay a
workflow start. What cannot be processed becomes a dead letter (a ``DeadLetterWorkflow``
child). The run continues as new between events, carrying the queue, context and seen ids.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from functools import partial
from typing import Any, NoReturn

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from temporalio.contrib.workflow_streams import WorkflowStream

    from agentflow.models.flow import FlowInput, FlowResult
    from agentflow.models.session import (
        EventOutcome,
        InFlight,
        QueuedEvent,
        SessionState,
        SessionSummary,
        SessionView,
        initial_state,
    )
    from agentflow.names import (
        CLOSE_UPDATE,
        EMIT_AND_WAIT_UPDATE,
        EMIT_SIGNAL,
        EVENT_RESULT_UPDATE,
        SESSION_QUERY,
        SESSION_WORKFLOW,
    )
    from agentflow.workflows._approval import ApprovalHandlers
    from agentflow.workflows._checkpoint import LocalWork
    from agentflow.workflows._event import handle_event
    from agentflow.workflows._letters import Letters
    from agentflow.workflows._modes import MODE_BODIES
    from agentflow.workflows._session_handover import (
        closed_summary,
        next_run_state,
        run_is_full,
    )
    from agentflow.workflows._session_intake import KeyedIntake, accept
    from agentflow.workflows._session_queue import EventBook, check_context
    from agentflow.workflows._session_view import idle_details, session_view
    from agentflow.workflows._steps import FlowRun
    from agentflow.workflows._stream import RunStream


@workflow.defn(name=SESSION_WORKFLOW)
class SessionWorkflow(ApprovalHandlers, KeyedIntake):  # approvals; emit_and_wait_by_key
    @workflow.init
    def __init__(self, state: SessionState) -> None:
        self.state = state
        self.book = EventBook(state)
        self.letters = Letters(state, self.book.counts)
        self.context: dict[str, Any] = dict(state.context)
        self.current: QueuedEvent | None = None
        self.closing: str | None = None
        self.moving = False  # continuing as new: waiters re-ask the next run
        self.local_work = LocalWork()  # unrecorded local work: checkpoints between events
        self.stream = RunStream(WorkflowStream(state.stream))  # live items of every event

    @workflow.run
    async def run(self, state: SessionState) -> SessionSummary:
        if state.in_flight is not None:
            await self._run_event(state.in_flight.queued, state.in_flight.flow_input, True)
        done_here = 0
        while True:
            await self.letters.write_pending(self.book.finished)
            if self.book:
                await self.local_work.checkpoint_if_due(f"checkpoint-{self.book.next_seq}")
                await self._process(self.book.pop())
                done_here += 1
                if run_is_full(done_here, state.events_per_run):
                    await self._continue_as_new()
            elif self.closing:
                self.stream.release()  # watchers' polls are handlers too
                await workflow.wait_condition(workflow.all_handlers_finished)
                if not self.book and not self.letters.pending:
                    return closed_summary(self.view(), self.book)
            else:
                await self._idle()

    async def _idle(self) -> None:
        self.local_work.recorded()  # waiting ends the workflow task
        workflow.set_current_details(idle_details(self.state, self.book))
        timeout = self.state.idle_timeout_seconds
        try:
            await workflow.wait_condition(
                lambda: bool(self.book) or bool(self.letters.pending) or bool(self.closing),
                timeout=timedelta(seconds=timeout) if timeout else None,
            )
        except asyncio.TimeoutError:
            self.closing = f"idle for {timeout:g}s (sessions.idle_timeout_seconds)"

    @workflow.signal(name=EMIT_SIGNAL)
    def emit(self, raw: RawValue) -> None:
        accept(raw, self.state.flow, self.book, self.letters)

    @workflow.update(name=EMIT_AND_WAIT_UPDATE)
    async def emit_and_wait(self, raw: RawValue) -> EventOutcome:
        if (event_id := accept(raw, self.state.flow, self.book, self.letters)) is None:
            return EventOutcome(event_id="", session_id=self.state.session_id,
                                status="dead_lettered", reason="unreadable")  # fmt: skip
        return await self._wait(event_id)

    @workflow.update(name=EVENT_RESULT_UPDATE)
    async def event_result(self, event_id: str) -> EventOutcome:
        return await self._wait(event_id)

    @workflow.update(name=CLOSE_UPDATE)
    def close(self, by: str) -> SessionView:
        self.closing = self.closing or f"closed by {by or 'request'}"
        return self.view()

    @workflow.query(name=SESSION_QUERY)
    def view(self) -> SessionView:
        return session_view(self.state, self.book, self.current, self.closing, self.context)

    async def _wait(self, event_id: str) -> EventOutcome:
        """The event's outcome once it has one; "moved" if this run ends first."""
        if not self.book.knows(event_id):
            return EventOutcome(event_id=event_id, session_id=self.state.session_id,
                                status="unknown", reason="not in this session")  # fmt: skip
        await workflow.wait_condition(lambda: event_id in self.book.recent or self.moving)
        if event_id in self.book.recent:
            return self.book.recent[event_id]
        return EventOutcome(event_id=event_id, session_id=self.state.session_id, status="moved")

    async def _process(self, queued: QueuedEvent) -> None:
        event = queued.event
        if event.deadline is not None and workflow.now() >= event.deadline:
            self.current = queued
            await self.letters.deadline_passed(queued, self.book.config(queued), self.book.finished)
            self.current = None
            return
        flow_input = FlowInput(
            config=self.book.config(queued),
            event=event.model_copy(update={"data": {}}),
            state=initial_state(event, self.context),
        )
        await self._run_event(queued, flow_input, False)

    async def _run_event(self, queued: QueuedEvent, flow_input: FlowInput, resumed: bool) -> None:
        """Run one event's flow; commit its context, or dead-letter it."""
        self.current = queued
        self.state.last_event_at = workflow.now()
        run = FlowRun(flow_input, activity_prefix=f"{queued.seq}.", resumed=resumed,
                      continue_as_new=partial(self._continue_mid_event, queued),
                      stream=self.stream)  # fmt: skip
        try:
            await self._handle(queued, run)
        finally:
            self.local_work.after(run)
            self.current = None

    async def _handle(self, queued: QueuedEvent, run: FlowRun) -> None:
        flow_input = run.input
        try:
            result = await handle_event(run, MODE_BODIES[flow_input.config.mode])
            check_context(result)
        except ApplicationError as err:
            failed = err.details[0] if err.details else None
            partial_result = failed if isinstance(failed, FlowResult) else None
            self.book.count_usage(partial_result)
            run.progress.finished("failed", err.message)
            await self.letters.failed(queued, flow_input.config, partial_result, str(err),
                                      self.book.finished)  # fmt: skip
        else:
            run.progress.finished(result.status, result.error)
            self.context = result.state.context
            self.book.processed(queued, result)

    async def _continue_mid_event(self, queued: QueuedEvent, flow_input: FlowInput) -> NoReturn:
        await self._continue_as_new(InFlight(queued=queued, flow_input=flow_input))

    async def _continue_as_new(self, in_flight: InFlight | None = None) -> NoReturn:
        self.moving = True
        self.stream.release()  # watchers follow to the next run
        while True:
            # A letter still pending (an unreadable event that arrived meanwhile) would be
            # lost with this run: write it first. No await between this check and the end.
            await self.letters.write_pending(self.book.finished)
            await workflow.wait_condition(workflow.all_handlers_finished)
            if not self.letters.pending:
                break
        workflow.continue_as_new(next_run_state(self.book, self.context, in_flight,
                                                self.state.last_event_at, self.stream))  # fmt: skip
