"""Temporal history → trace lines: the decoder behind ``agentflow.trace``.

Reads one run's history events (a mode workflow, a session or a dead letter) and turns each
step into a ``TraceEntry``. ``_RunDecoder`` dispatches each history event to the module that
knows its kind, all sharing one state (_steps.py):

- _entry.py: the line model, its actions, small readers of history fields;
- _activities.py: agents, hooks and tool calls run as regular activities;
- _local.py: local agents, hooks and batches, from the SDK's markers;
- _session.py (with _arrivals.py): a session's events and dead letters;
- _bus.py: what agents publish and where the bus's fan-out delivered;
- _children.py: flow agents' child workflows;
- _approvals.py, _tools.py: approval lines, an LLM agent's tool calls.

This module reads the run's own start and end.
"""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from agentflow.inspect.trace._activities import ActivitySteps
from agentflow.inspect.trace._approvals import approval_line
from agentflow.inspect.trace._children import CHILD_ENDS, FLOW_WORKFLOW_TYPES, ChildFlows
from agentflow.inspect.trace._entry import (
    ERROR_HANDOFF,
    FLOW_ACTIONS,
    HOOKS,
    LOCAL_ACTIVITY_MARKER,
    Action,
    TraceEntry,
    event_time,
    failure_text,
)
from agentflow.inspect.trace._local import ROUTING_KEYS, LocalSteps
from agentflow.inspect.trace._session import SessionEvents
from agentflow.inspect.trace._steps import FlowEvent
from agentflow.models.flow import FlowInput, FlowResult
from agentflow.models.session import DeadLetter, DeadLetterView, SessionState, SessionSummary
from agentflow.names import (
    DEAD_LETTER_WORKFLOW,
    EMIT_AND_WAIT_UPDATE,
    EMIT_BY_KEY_SIGNAL,
    EMIT_BY_KEY_UPDATE,
    EMIT_SIGNAL,
    SESSION_WORKFLOW,
)

# The names read.py imports from here (and offers to graph/ and the tests).
__all__ = [
    "ERROR_HANDOFF",
    "FLOW_ACTIONS",
    "FLOW_WORKFLOW_TYPES",
    "HOOKS",
    "LOCAL_ACTIVITY_MARKER",
    "ROUTING_KEYS",
    "Action",
    "TraceEntry",
    "decode_run",
]


async def decode_run(
    client: Client, workflow_id: str, run_id: str, events: list[HistoryEvent]
) -> list[TraceEntry]:
    decoder = _RunDecoder(client, workflow_id, run_id)
    for event in events:
        await decoder.decode(event)
    return decoder.entries


class _RunDecoder(ActivitySteps, LocalSteps, SessionEvents, ChildFlows):
    """Turns one run's history events into trace lines, one event at a time. The run is a mode
    workflow (one flow event), a session (many) or a dead letter (``workflow_type``)."""

    async def decode(self, event: HistoryEvent) -> None:
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            await self.run_started(event)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            signal = event.workflow_execution_signaled_event_attributes
            if self.arrivals is not None and signal.signal_name == EMIT_SIGNAL:
                await self.emitted(event, signal.input.payloads, self.arrivals)
            elif self.arrivals is not None and signal.signal_name == EMIT_BY_KEY_SIGNAL:
                await self.emitted_by_key(event, signal.input.payloads, self.arrivals, True)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            update = event.workflow_execution_update_accepted_event_attributes.accepted_request
            if self.arrivals is not None and update.input.name == EMIT_AND_WAIT_UPDATE:
                await self.emitted(event, update.input.args.payloads, self.arrivals)
            elif self.arrivals is not None and update.input.name == EMIT_BY_KEY_UPDATE:
                await self.emitted_by_key(event, update.input.args.payloads, self.arrivals)
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            await self.scheduled(event)
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            self.attempt_started(event)
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            await self.completed(event)
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
            attrs = event.activity_task_failed_event_attributes
            self.failed(event, "failed", attrs.scheduled_event_id, attrs.failure)
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
            timed_out = event.activity_task_timed_out_event_attributes
            self.failed(event, "timed out", timed_out.scheduled_event_id, timed_out.failure)
        elif kind == EventType.EVENT_TYPE_MARKER_RECORDED:
            await self.local_step(event)
        elif kind == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
            await self.letter_initiated(event)
            await self.child_flow_started(event)
        elif kind in CHILD_ENDS:
            await self.child_flow_ended(event)
        elif kind == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
            self.letter_started(event)
            self.child_flow_run(event)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED:
            if found := await approval_line(self.converter, event):  # waiting, decided
                self.line(event, found.action, found.agent, detail=found.detail,
                          event_id=found.event_id or self.event_id)  # fmt: skip
        elif kind in _FLOW_ENDS:
            await self.run_ended(event)

    async def run_started(self, event: HistoryEvent) -> None:
        attrs = event.workflow_execution_started_event_attributes
        self.workflow_type, self.started_at = attrs.workflow_type.name, event_time(event)
        session_of_run = ""
        if self.workflow_type == SESSION_WORKFLOW:
            [session] = await self.converter.decode(attrs.input.payloads, [SessionState])
            detail = self.session_started(session)
        elif self.workflow_type == DEAD_LETTER_WORKFLOW:
            [letter] = await self.converter.decode(attrs.input.payloads, [DeadLetter])
            self.event_id = letter.event.id if letter.event else ""
            detail = f"dead letter of session {letter.session_id} ({letter.flow}): {letter.reason}"
        else:
            [flow_input] = await self.converter.decode(attrs.input.payloads, [FlowInput])
            self.event_id, self.config = flow_input.event.id, flow_input.config
            self.flow_events[self.event_id] = FlowEvent(flow_input.config, flow_input.state)
            self.current_event = self.event_id
            detail = f"{flow_input.config.name} ({flow_input.config.mode})"
            if flow_input.event.session_id:
                session_of_run = f", session {flow_input.event.session_id}"
        if attrs.continued_execution_run_id:
            detail += f", continued from run {attrs.continued_execution_run_id}"
        self.line(event, "started", detail=detail + session_of_run)

    async def run_ended(self, event: HistoryEvent) -> None:
        kind, when = event.event_type, event_time(event)
        duration = (when - self.started_at).total_seconds() * 1000 if self.started_at else None
        detail, keys = "", []
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            payloads = event.workflow_execution_completed_event_attributes.result.payloads
            if self.workflow_type == SESSION_WORKFLOW:
                [summary] = await self.converter.decode(payloads, [SessionSummary])
                counts = summary.view.counts
                detail = (f"closed ({summary.view.closed_reason}): {counts.processed} processed, "
                          f"{counts.dead_lettered} dead-lettered")  # fmt: skip
            elif self.workflow_type == DEAD_LETTER_WORKFLOW:
                [view] = await self.converter.decode(payloads, [DeadLetterView])
                detail = view.status + (f" as {view.redriven_as}" if view.redriven_as else "")
                detail += f" by {view.decided_by}" if view.decided_by else ""
            else:
                [result] = await self.converter.decode(payloads, [FlowResult])
                # Subscribers' outputs are not merged into the flow's state: leave them out.
                keys = sorted(
                    {k for r in result.results if r.topic is None for k in r.changed_keys}
                )
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
            detail = failure_text(event.workflow_execution_failed_event_attributes.failure)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            new_run = event.workflow_execution_continued_as_new_event_attributes
            detail = f"new run {new_run.new_execution_run_id}"
        self.line(event, _FLOW_ENDS[kind], duration_ms=duration, detail=detail, changed_keys=keys)


_FLOW_ENDS: dict[int, Action] = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED: "completed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED: "failed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT: "timed out",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW: "continued-as-new",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED: "canceled",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED: "terminated",
}
