"""Trace lines of a session: the events sent to it and the ones it dead-lettered.

A session runs many events in one workflow: each line carries its own event's id (agents'
activity ids start with the event's arrival number, ``"7.2-agent"``, and their input names
the event; _arrivals.py numbers the arrivals as the session does)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from temporalio.api.common.v1 import Payload
from temporalio.api.history.v1 import HistoryEvent

from agentflow.inspect.trace._arrivals import Arrivals
from agentflow.inspect.trace._entry import first_line
from agentflow.inspect.trace._steps import DecoderBase, FlowEvent
from agentflow.models.flow import PARENT_EVENT_KEY
from agentflow.models.session import (
    DeadLetter,
    EmitByKey,
    EmitRequest,
    SessionState,
    received_config_key,
)
from agentflow.names import DEAD_LETTER_WORKFLOW


class SessionEvents(DecoderBase):
    """Reads a session's input, the events emitted to it, and its dead letters."""

    def session_started(self, session: SessionState) -> str:
        self.flow, self.arrivals = session.flow, Arrivals(session)
        self.context = dict(session.context)
        self.configs = dict(session.configs)  # as the run keeps them: by config_key
        for queued in session.queue:
            self.waiting[queued.event.id] = (queued.event, session.configs.get(queued.config_key))
        detail = f"session {session.session_id} of {session.flow}"
        if session.runs > 1:
            detail += f", run {session.runs}"
        if session.queue:
            detail += f", {len(session.queue)} queued"
        if session.in_flight is not None:  # a loop that continued as new mid-event
            flow_input = session.in_flight.flow_input
            self.flow_events[flow_input.event.id] = FlowEvent(flow_input.config, flow_input.state)
            self.current_event = flow_input.event.id
            detail += f", resuming event {flow_input.event.id}"
        if session.reopened_from:
            detail += f", reopened after: {session.reopened_from}"
        return detail

    async def emitted(
        self, event: HistoryEvent, payloads: Sequence[Payload], arrivals: Arrivals
    ) -> None:
        """An event sent to the session (``emit`` signal or ``emit_and_wait`` update)."""
        try:
            [request] = await self.converter.decode(payloads, [EmitRequest])
            if request.config.name != self.flow:
                raise ValueError(f"it is for flow {request.config.name!r}")
        except Exception as err:  # the session dead-letters it as "unreadable"
            self.line(event, "emitted", event_id="", detail=f"unreadable event: {first_line(err)}")
            return
        self.configs.setdefault(received_config_key(request.config), request.config)
        self.arrived(event, request, arrivals)

    async def emitted_by_key(
        self, event: HistoryEvent, payloads: Sequence[Payload], arrivals: Arrivals,
        signal: bool = False,
    ) -> None:  # fmt: skip
        """An event sent with its config's key (``emit_by_key``, ``emit_and_wait_by_key``).
        For a key the run does not have, the Update answered "unknown" without taking it (the
        client sent it again with its config): no line; the signal dead-lettered it."""
        try:
            [request] = await self.converter.decode(payloads, [EmitByKey])
        except Exception as err:  # the session dead-letters it as "unreadable"
            self.line(event, "emitted", event_id="", detail=f"unreadable event: {first_line(err)}")
            return
        config = self.configs.get(request.config_key)
        if config is not None:
            full = EmitRequest(config=config, event=request.event, redrive_of=request.redrive_of)
            self.arrived(event, full, arrivals)
        elif signal:
            self.line(event, "emitted", event_id=request.event.id,
                      detail="its config is unknown to this run: dead-lettered")  # fmt: skip

    def arrived(self, event: HistoryEvent, request: EmitRequest, arrivals: Arrivals) -> None:
        emitted = request.event
        details = [f"priority {emitted.priority}"]
        if emitted.deadline is not None:
            details.append(f"deadline {emitted.deadline.isoformat()}")
        if emitted.target_agent:
            details.append(f"target {emitted.target_agent}")
        if request.redrive_of:
            details.append(f"redrive of {request.redrive_of}")
        parent = emitted.metadata.get(PARENT_EVENT_KEY, "")
        if parent:
            details.append(f"child of {parent}" + (f" from {emitted.source_agent}"
                                                    if emitted.source_agent else ""))  # fmt: skip
        if arrivals.accept(emitted.id):
            self.waiting[emitted.id] = (emitted, request.config)
        else:
            details.append("duplicate: this session has it already, not processed again")
        self.line(event, "emitted", event_id=emitted.id, detail=", ".join(details),
                  parent_event_id=parent)  # fmt: skip

    async def letter_initiated(self, event: HistoryEvent) -> None:
        attrs = event.start_child_workflow_execution_initiated_event_attributes
        if attrs.workflow_type.name != DEAD_LETTER_WORKFLOW:
            return
        letter: DeadLetter | None = None
        with contextlib.suppress(Exception):  # unreadable: still a letter, shown without reason
            [letter] = await self.converter.decode(attrs.input.payloads, [DeadLetter])
        self.letters[event.event_id] = letter
        if letter and letter.reason == "session queue full" and letter.event and self.arrivals:
            self.arrivals.not_queued(letter.event.id)

    def letter_started(self, event: HistoryEvent) -> None:
        """The letter counts once its workflow started (a taken id is retried with another)."""
        attrs = event.child_workflow_execution_started_event_attributes
        if attrs.initiated_event_id not in self.letters:
            return
        letter = self.letters.pop(attrs.initiated_event_id)
        letter_id = attrs.workflow_execution.workflow_id
        if letter is None:
            self.line(event, "dead-lettered", detail=f"as {letter_id}", dead_letter_id=letter_id)
            return
        event_id = letter.event.id if letter.event else ""
        self.lettered.add(event_id)
        detail = f"as {letter_id} ({letter.reason})" + (f": {letter.error}" if letter.error else "")
        self.line(event, "dead-lettered", letter.failed_agent or "", event_id=event_id,
                  detail=detail, dead_letter_id=letter_id)  # fmt: skip
