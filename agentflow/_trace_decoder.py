"""Temporal history → trace lines: the decoder behind ``agentflow.trace``.

Reads one run's history events (a mode workflow, a session or a dead letter) and turns each
step into a ``TraceEntry``. What it relies on:

- A session runs many events in one workflow: each line carries its own event's id (agents'
  activity ids start with the event's arrival number, ``"7.2-agent"``, and their input names
  the event).
- Temporal writes an activity's "started" event only when its last attempt ends, keeping the
  previous attempt's failure: so a retried agent shows one ``retried`` line (attempt N, the
  last failure) rather than one line per failed attempt.
- Local agents (``local = true``) leave no scheduled/started/completed events: the SDK records
  each result as a ``core_local_activity`` marker when the workflow task completes (its
  ``data`` detail names the activity id, type and attempt; ``result`` holds the output, the
  marker's ``failure`` the error). They get a ``completed`` or ``failed`` line from it, timed
  when the marker was recorded; their input is not in history, so their state before is the
  flow's last known state.
"""

from __future__ import annotations

import contextlib
import itertools
import re
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, Field
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from agentflow._trace_approvals import approval_line
from agentflow._trace_tools import (
    ToolCallLine,
    asked_for,
    model_step_root,
    tool_returned,
    tool_scheduled,
)
from agentflow.activity_types import is_agent_call
from agentflow.batch_models import BatchOutput
from agentflow.bus import BUS_FLOW, publication_id
from agentflow.config import FlowConfig
from agentflow.events import (
    DEAD_LETTER_WORKFLOW,
    EMIT_AND_WAIT_UPDATE,
    EMIT_SIGNAL,
    SESSION_WORKFLOW,
    DeadLetter,
    DeadLetterView,
    EmitRequest,
    SessionState,
    SessionSummary,
    initial_state,
)
from agentflow.llm_turn import ToolInput, ToolOutput
from agentflow.models import (
    AgentInput,
    AgentOutput,
    Event,
    FlowInput,
    FlowResult,
    HookInput,
    HookOutput,
    State,
)
from workflows import _MODULES
from workflows._batch import LOCAL_BATCH
from workflows._bus import PUBLISH, published_topics
from workflows._event import RUN_HOOKS
from workflows._llm_loop import RUN_TOOL
from workflows._session_queue import MAX_SEEN_BYTES
from workflows._state import changed_keys, merge_states

Action = Literal[
    "emitted", "started", "completed", "failed", "retried", "timed out", "handed off",
    "published", "rejected", "dead-lettered", "continued-as-new", "canceled", "terminated",
    "waiting", "approved", "tool",
]  # fmt: skip
# Lines that --flow-only keeps: where control moves, without per-attempt detail.
FLOW_ACTIONS = {"emitted", "completed", "failed", "timed out", "handed off", "published",
                "rejected", "dead-lettered", "continued-as-new", "canceled",
                "terminated", "waiting", "approved"}  # fmt: skip
LOCAL_ACTIVITY_MARKER = "core_local_activity"  # the SDK core's marker for a local activity
# The mode workflows' types: a child workflow of one of them is a flow agent's nested flow.
FLOW_WORKFLOW_TYPES = frozenset(name for _, name in _MODULES.values())
HOOKS = "hooks"  # the AGENT column of event hook lines (before/after_event_handling)
ERROR_HANDOFF = "to error handler "  # a hand-off line's detail: "to error handler X (kind)"
# What an [error_routing] handler's input holds besides the failed event's state.
ROUTING_KEYS = ("original_event", "failed_agent", "error_message", "error_type",
                "exception_type", "attempts", "state")  # fmt: skip


class TraceEntry(BaseModel):
    """One line of a trace (the seeds' TraceEntry: time, event id, agent, action, data)."""

    time: datetime
    workflow_id: str
    run_id: str
    history_event_id: int
    event_id: str = ""
    agent: str = ""  # empty for lines about the flow (or the session) itself
    action: Action
    attempt: int | None = None
    duration_ms: float | None = None
    changed_keys: list[str] = Field(default_factory=list)
    detail: str = ""
    batch: int | None = None  # agents scheduled by the same workflow task ran in parallel
    topic: str = ""  # a published line's topic; on a subscriber's lines, the topic it got
    source_event: int | None = None  # a subscriber's lines: the publisher's completed event
    dead_letter_id: str = ""  # a dead-lettered line: the letter's workflow id
    bus_event: str = ""  # a published line: the event's id on the durable bus
    # The bus's fan-out line: the topic and where each delivery went (agentflow/bus.py).
    deliveries: list[dict[str, str]] = Field(default_factory=list)
    # Flows inside flows: a flow agent's started line names its child workflow, and the
    # child's own lines follow it, one level deeper (agentflow/trace.py splices them in).
    child_workflow_id: str = ""
    # ...and its run: a loop's flow agent reuses the child's id in every run of the loop.
    child_run_id: str = ""
    depth: int = 0


class _Step:
    """One agent call or event hook point: what its scheduled event (or, for a local activity,
    its marker) told us."""

    def __init__(
        self,
        agent: str,
        event_id: str,
        batch: int,
        before: State | None,
        *,
        hook: str = "",
        topic: str | None = None,
        source_event: int | None = None,
        activity_id: str = "",
    ) -> None:
        self.agent, self.event_id, self.batch, self.hook = agent, event_id, batch, hook
        self.activity_id = activity_id
        self.before = before  # the state it got, to tell what it changed
        self.topic = topic
        self.attempt = 1
        self.started: datetime | None = None
        # Fields every line of this step carries.
        self.tags: dict[str, Any] = {"batch": batch, "event_id": event_id}
        if topic is not None:
            self.tags.update(topic=topic, source_event=source_event)


class _Batch:
    """Steps of one event that ran side by side: the state they all got, and their outputs
    (merged, in order, into what the event's next step gets)."""

    def __init__(self, before: State) -> None:
        self.before = before
        self.outputs: list[State] = []
        self.open_until: datetime | None = None  # local steps: when the last member ended


class _FlowEvent:
    """One flow event of the run: the config it runs with and the last state passed on."""

    def __init__(self, config: FlowConfig | None, state: State) -> None:
        self.config, self.state = config, state


class _Arrivals:
    """Which flow event each arrival number (``seq``, the ``7.`` of activity id
    ``"7.2-agent"``) is: the session's input and the events it then accepted, numbered as
    ``workflows/_session_queue.EventBook`` numbers them. Local agents need it, since their
    input (which names the event) is not in history."""

    def __init__(self, state: SessionState) -> None:
        self.next_seq = state.next_seq
        self.window = state.dedupe_window
        self.seen: OrderedDict[str, int] = OrderedDict((id_, len(id_)) for id_ in state.seen)
        self.seen_bytes = sum(self.seen.values())
        self.by_seq = {queued.seq: queued.event.id for queued in state.queue}
        if state.in_flight is not None:
            self.by_seq[state.in_flight.queued.seq] = state.in_flight.queued.event.id

    def accept(self, event_id: str) -> bool:
        """Number a new event; False for a repeated id (a duplicate, never processed)."""
        if event_id in self.seen:
            return False
        self.seen[event_id] = len(event_id)
        self.seen_bytes += len(event_id)
        while len(self.seen) > self.window or self.seen_bytes > MAX_SEEN_BYTES:
            self.seen_bytes -= self.seen.popitem(last=False)[1]
        self.by_seq[self.next_seq] = event_id
        self.next_seq += 1
        return True

    def not_queued(self, event_id: str) -> None:
        """The event was dead-lettered as "session queue full": it never got a number, so
        the events numbered after it move up one."""
        numbers = [seq for seq, id_ in self.by_seq.items() if id_ == event_id]
        if not numbers:
            return
        moved = sorted(seq for seq in self.by_seq if seq >= max(numbers))
        for seq, after in itertools.pairwise(moved):
            self.by_seq[seq] = self.by_seq[after]
        del self.by_seq[moved[-1]]
        self.next_seq -= 1


async def decode_run(
    client: Client, workflow_id: str, run_id: str, events: list[HistoryEvent]
) -> list[TraceEntry]:
    decoder = _RunDecoder(client, workflow_id, run_id)
    for event in events:
        await decoder.decode(event)
    return decoder.entries


class _RunDecoder:
    """Turns one run's history events into trace lines, one event at a time. The run is a mode
    workflow (one flow event), a session (many) or a dead letter (``workflow_type``)."""

    def __init__(self, client: Client, workflow_id: str, run_id: str) -> None:
        self.converter = client.data_converter
        self.workflow_id, self.run_id = workflow_id, run_id
        self.entries: list[TraceEntry] = []
        self.workflow_type = ""
        self.event_id = ""  # the flow event of a mode workflow (a session's lines set theirs)
        self.config: FlowConfig | None = None
        self.started_at: datetime | None = None
        self.steps: dict[int, _Step] = {}  # scheduled history event -> step
        self.completed_by_activity: dict[str, int] = {}  # activity id -> completed event
        self.batches: dict[int, _Batch] = {}
        self.local_batch: int | None = None
        # LLM agents calling tools (agentflow/_trace_tools.py): the first model step's step,
        # by its activity id, until the agent answers; and the tool calls in flight.
        self.tool_loops: dict[str, _Step] = {}
        self.tool_calls: dict[int, tuple[ToolCallLine, _Step | None]] = {}
        self.flow_events: dict[str, _FlowEvent] = {}
        self.current_event = ""
        # A session: accepted events not yet started, their numbers, its context, its letters.
        self.arrivals: _Arrivals | None = None
        self.flow = ""
        self.waiting: dict[str, tuple[Event, FlowConfig | None]] = {}
        self.context: dict[str, Any] = {}
        self.letters: dict[int, DeadLetter | None] = {}  # initiated event -> letter
        self.lettered: set[str] = set()
        self.children: dict[int, _Step] = {}  # a flow agent's initiated event -> its step
        self.flow_lines: dict[int, TraceEntry] = {}  # ... -> its started line

    def line(self, event: HistoryEvent, action: Action, agent: str = "", **fields: Any) -> None:
        fields.setdefault("event_id", self.event_id)
        self.entries.append(
            TraceEntry(
                time=_time(event),
                workflow_id=self.workflow_id,
                run_id=self.run_id,
                history_event_id=event.event_id,
                agent=agent,
                action=action,
                **fields,
            )
        )

    async def decode(self, event: HistoryEvent) -> None:
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            await self.run_started(event)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            signal = event.workflow_execution_signaled_event_attributes
            if self.arrivals is not None and signal.signal_name == EMIT_SIGNAL:
                await self.emitted(event, signal.input.payloads, self.arrivals)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            update = event.workflow_execution_update_accepted_event_attributes.accepted_request
            if self.arrivals is not None and update.input.name == EMIT_AND_WAIT_UPDATE:
                await self.emitted(event, update.input.args.payloads, self.arrivals)
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
        elif kind in _CHILD_ENDS:
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

    # -- the run's start and end ---------------------------------------------------------

    async def run_started(self, event: HistoryEvent) -> None:
        attrs = event.workflow_execution_started_event_attributes
        self.workflow_type, self.started_at = attrs.workflow_type.name, _time(event)
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
            self.flow_events[self.event_id] = _FlowEvent(flow_input.config, flow_input.state)
            self.current_event = self.event_id
            detail = f"{flow_input.config.name} ({flow_input.config.mode})"
            if flow_input.event.session_id:
                session_of_run = f", session {flow_input.event.session_id}"
        if attrs.continued_execution_run_id:
            detail += f", continued from run {attrs.continued_execution_run_id}"
        self.line(event, "started", detail=detail + session_of_run)

    def session_started(self, session: SessionState) -> str:
        self.flow, self.arrivals = session.flow, _Arrivals(session)
        self.context = dict(session.context)
        for queued in session.queue:
            self.waiting[queued.event.id] = (queued.event, session.configs.get(queued.config_key))
        detail = f"session {session.session_id} of {session.flow}"
        if session.runs > 1:
            detail += f", run {session.runs}"
        if session.queue:
            detail += f", {len(session.queue)} queued"
        if session.in_flight is not None:  # a loop that continued as new mid-event
            flow_input = session.in_flight.flow_input
            self.flow_events[flow_input.event.id] = _FlowEvent(flow_input.config, flow_input.state)
            self.current_event = flow_input.event.id
            detail += f", resuming event {flow_input.event.id}"
        if session.reopened_from:
            detail += f", reopened after: {session.reopened_from}"
        return detail

    async def run_ended(self, event: HistoryEvent) -> None:
        kind, when = event.event_type, _time(event)
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
            detail = _failure(event.workflow_execution_failed_event_attributes.failure)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            new_run = event.workflow_execution_continued_as_new_event_attributes
            detail = f"new run {new_run.new_execution_run_id}"
        self.line(event, _FLOW_ENDS[kind], duration_ms=duration, detail=detail, changed_keys=keys)

    # -- a session's events ----------------------------------------------------------------

    async def emitted(
        self, event: HistoryEvent, payloads: Sequence[Payload], arrivals: _Arrivals
    ) -> None:
        """An event sent to the session (``emit`` signal or ``emit_and_wait`` update)."""
        try:
            [request] = await self.converter.decode(payloads, [EmitRequest])
            if request.config.name != self.flow:
                raise ValueError(f"it is for flow {request.config.name!r}")
        except Exception as err:  # the session dead-letters it as "unreadable"
            self.line(event, "emitted", event_id="", detail=f"unreadable event: {_first(err)}")
            return
        emitted = request.event
        details = [f"priority {emitted.priority}"]
        if emitted.deadline is not None:
            details.append(f"deadline {emitted.deadline.isoformat()}")
        if emitted.target_agent:
            details.append(f"target {emitted.target_agent}")
        if request.redrive_of:
            details.append(f"redrive of {request.redrive_of}")
        if arrivals.accept(emitted.id):
            self.waiting[emitted.id] = (emitted, request.config)
        else:
            details.append("duplicate: this session has it already, not processed again")
        self.line(event, "emitted", event_id=emitted.id, detail=", ".join(details))

    def flow_event(self, event_id: str) -> _FlowEvent:
        """The flow event a step belongs to. A session runs one event at a time, so a new one
        means the previous has ended: its context (unless dead-lettered) is the session's."""
        if event_id != self.current_event:
            previous = self.flow_events.pop(self.current_event, None)
            if previous is not None and self.current_event not in self.lettered:
                self.context = previous.state.context
            self.current_event, self.batches, self.local_batch = event_id, {}, None
        known = self.flow_events.get(event_id)
        if known is None:
            emitted, config = self.waiting.pop(event_id, (None, self.config))
            state = initial_state(emitted, self.context) if emitted else State()
            known = self.flow_events[event_id] = _FlowEvent(config, state)
        return known

    def event_of(self, seq: int | None) -> str:
        if seq is None or self.arrivals is None:
            return self.event_id
        return self.arrivals.by_seq.get(seq, "")

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

    # -- flows inside flows: an agent that is a child workflow ------------------------------

    async def child_flow_started(self, event: HistoryEvent) -> None:
        attrs = event.start_child_workflow_execution_initiated_event_attributes
        if attrs.workflow_type.name not in FLOW_WORKFLOW_TYPES:
            return
        [flow_input] = await self.converter.decode(attrs.input.payloads, [FlowInput])
        _, agent = _parse_activity_id(attrs.workflow_id.rpartition("/")[2])
        batch = attrs.workflow_task_completed_event_id
        step = _Step(agent, flow_input.event.id, batch, flow_input.state)
        step.started = _time(event)
        self.flow_event(step.event_id)
        self.batches.setdefault(batch, _Batch(flow_input.state))
        self.children[event.event_id] = step
        self.line(event, "started", agent, attempt=1, child_workflow_id=attrs.workflow_id,
                  detail=f"flow {flow_input.config.name} ({flow_input.config.mode}) as "
                         f"{attrs.workflow_id}", **step.tags)  # fmt: skip
        self.flow_lines[event.event_id] = self.entries[-1]

    def child_flow_run(self, event: HistoryEvent) -> None:
        """The run a flow agent's child got: its started line names it."""
        attrs = event.child_workflow_execution_started_event_attributes
        if (line := self.flow_lines.get(attrs.initiated_event_id)) is not None:
            line.child_run_id = attrs.workflow_execution.run_id

    async def child_flow_ended(self, event: HistoryEvent) -> None:
        kind = event.event_type
        attrs = getattr(event, _CHILD_ENDS[kind])
        if (step := self.children.pop(attrs.initiated_event_id, None)) is None:
            return
        ended = _time(event)
        if kind == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED:
            [result] = await self.converter.decode(attrs.result.payloads, [FlowResult])
            since = step.started or ended
            self.agent_done(event, step, AgentOutput(state=result.state, started_at=since,
                                                     ended_at=ended))  # fmt: skip
            return
        duration = (ended - (step.started or ended)).total_seconds() * 1000
        if kind == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_FAILED:
            self.step_failed(event, step, "failed", attrs.failure, 1, duration)
            return
        ends: dict[int, Action] = {
            EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TIMED_OUT: "timed out",
            EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_CANCELED: "canceled",
        }
        action = ends.get(kind, "terminated")
        self.line(event, action, step.agent, attempt=1, duration_ms=duration, **step.tags)

    # -- activities: agents and event hooks ------------------------------------------------

    async def scheduled(self, event: HistoryEvent) -> None:
        attrs = event.activity_task_scheduled_event_attributes
        kind, batch = attrs.activity_type.name, attrs.workflow_task_completed_event_id
        step: _Step | None = None
        if is_agent_call(kind):  # "agent:NAME", or "run_agent" in runs from before it
            [request] = await self.converter.decode(attrs.input.payloads, [AgentInput])
            if request.turn is not None:  # a model step after tool calls: the same agent call
                self.model_step_scheduled(event, request)
                return
            source = self.completed_by_activity.get(request.published_by or "")
            step = _Step(request.agent, request.event.id, batch, request.state,
                         topic=request.topic, source_event=source,
                         activity_id=attrs.activity_id)  # fmt: skip
            flow_event = self.flow_event(step.event_id)
            if request.topic is None:
                self.batches.setdefault(batch, _Batch(request.state))
            self.hand_off(event, step, request.state, flow_event.config)
            detail = f"{request.topic} from {request.event.source_agent}" if request.topic else ""
            self.line(event, "started", step.agent, attempt=1, detail=detail, **step.tags)
        elif kind == RUN_TOOL:
            [tool] = await self.converter.decode(attrs.input.payloads, [ToolInput])
            call = tool_scheduled(attrs.activity_id, tool)
            first = self.tool_loops.get(call.root)
            self.tool_calls[event.event_id] = (call, first)
            self.line(event, "tool", call.agent, detail=call.detail,
                      **(first.tags if first else {}))  # fmt: skip
        elif kind == RUN_HOOKS:
            [hooks] = await self.converter.decode(attrs.input.payloads, [HookInput])
            step = _Step(HOOKS, hooks.event.id, batch, hooks.state, hook=hooks.hook,
                         activity_id=attrs.activity_id)  # fmt: skip
            self.flow_event(step.event_id)
            self.line(event, "started", HOOKS, attempt=1, detail=hooks.hook, **step.tags)
        if step is not None:
            self.steps[event.event_id] = step
            self.local_batch = None  # a scheduled step ends a run of local ones
            seq, _ = _parse_activity_id(attrs.activity_id)
            if self.arrivals is not None and seq is not None:
                self.arrivals.by_seq[seq] = step.event_id  # the input names it: authoritative

    def model_step_scheduled(self, event: HistoryEvent, request: AgentInput) -> None:
        attrs = event.activity_task_scheduled_event_attributes
        root = model_step_root(attrs.activity_id)
        first = self.tool_loops.get(root)
        batch = first.batch if first else attrs.workflow_task_completed_event_id
        step = _Step(request.agent, request.event.id, batch,
                     first.before if first else request.state, topic=request.topic,
                     activity_id=root)  # fmt: skip
        if first is not None:
            step.tags = first.tags
        self.steps[event.event_id] = step

    async def tool_returned(self, event: HistoryEvent, scheduled: int) -> bool:
        """A ``run_tool`` activity's result, as a ``tool`` line; False if it was no tool."""
        if (found := self.tool_calls.pop(scheduled, None)) is None:
            return False
        call, first = found
        result = event.activity_task_completed_event_attributes.result.payloads
        [output] = await self.converter.decode(result, [ToolOutput])
        self.line(event, "tool", call.agent, detail=tool_returned(output),
                  **(first.tags if first else {}))  # fmt: skip
        return True

    def tool_failed(self, event: HistoryEvent, scheduled: int, failure: Any) -> bool:
        """A ``run_tool`` activity that failed for good; False if it was no tool."""
        if (found := self.tool_calls.pop(scheduled, None)) is None:
            return False
        call, first = found
        detail = f"{call.detail.removesuffix(' called')} failed: {_failure(failure)}"
        self.line(event, "tool", call.agent, detail=detail, **(first.tags if first else {}))
        return True

    def attempt_started(self, event: HistoryEvent) -> None:
        attrs = event.activity_task_started_event_attributes
        if (step := self.steps.get(attrs.scheduled_event_id)) is None:
            return
        step.attempt, step.started = attrs.attempt, _time(event)
        if attrs.attempt > 1:
            detail = (
                f"after {attrs.attempt - 1} failed attempt(s); last: {_failure(attrs.last_failure)}"
            )
            self.line(event, "retried", step.agent, attempt=attrs.attempt, detail=detail,
                      **step.tags)  # fmt: skip

    async def completed(self, event: HistoryEvent) -> None:
        attrs = event.activity_task_completed_event_attributes
        if await self.tool_returned(event, attrs.scheduled_event_id):
            return
        if (step := self.steps.pop(attrs.scheduled_event_id, None)) is None:
            return
        if step.hook:
            [hooks] = await self.converter.decode(attrs.result.payloads, [HookOutput])
            since = step.started or _time(event)
            duration = (_time(event) - since).total_seconds() * 1000
            self.hooks_done(event, step, hooks, step.attempt, duration)
        else:
            [output] = await self.converter.decode(attrs.result.payloads, [AgentOutput])
            if asked := asked_for(output):  # not done: its tools run next
                self.tool_loops.setdefault(step.activity_id, step)
                self.line(event, "tool", step.agent, detail=asked, **step.tags)
                return
            self.tool_loops.pop(step.activity_id, None)
            self.agent_done(event, step, output)

    def failed(self, event: HistoryEvent, action: Action, scheduled: int, failure: Any) -> None:
        if self.tool_failed(event, scheduled, failure):
            return
        if (step := self.steps.pop(scheduled, None)) is None:
            return
        since = step.started or _time(event)
        duration = (_time(event) - since).total_seconds() * 1000
        self.step_failed(event, step, action, failure, step.attempt, duration)

    async def local_step(self, event: HistoryEvent) -> None:
        """A local activity's marker: its completion or failure (its input is not recorded)."""
        attrs = event.marker_recorded_event_attributes
        if attrs.marker_name != LOCAL_ACTIVITY_MARKER or "data" not in attrs.details:
            return
        try:
            [info] = await self.converter.decode(attrs.details["data"].payloads, [dict])
        except Exception:
            return  # a marker from an SDK that writes it differently: nothing to show
        kind, activity_id = info.get("activity_type"), str(info.get("activity_id", ""))
        if kind == LOCAL_BATCH:
            await self.batch_steps(event, activity_id, int(info.get("attempt") or 1))
            return
        if not isinstance(kind, str) or not (is_agent_call(kind) or kind == RUN_HOOKS):
            return
        seq, name = _parse_activity_id(activity_id)
        event_id = self.event_of(seq)
        flow_event = self.flow_event(event_id)
        attempt = int(info.get("attempt") or 1)
        scheduled_at = _proto_time(info.get("original_schedule_time"))
        if kind == RUN_HOOKS:
            step = _Step(HOOKS, event_id, self.new_local_batch(event, flow_event), flow_event.state,
                         hook=name.removeprefix(f"{HOOKS}-"), activity_id=activity_id)  # fmt: skip
        else:
            batch = self.local_batch_of(event, scheduled_at, flow_event)
            step = _Step(name, event_id, batch, None, activity_id=activity_id)
        if attrs.HasField("failure"):
            action: Action = "timed out" if _timed_out(attrs.failure) else "failed"
            self.step_failed(event, step, action, attrs.failure, attempt, None, local=True)
            return
        if "result" not in attrs.details:
            return
        payloads = attrs.details["result"].payloads
        if step.hook:
            [hooks] = await self.converter.decode(payloads, [HookOutput])
            self.hooks_done(event, step, hooks, attempt, None, local=True)
            return
        [output] = await self.converter.decode(payloads, [AgentOutput])
        step.before = self.batches[step.batch].before
        if _error_routing(flow_event.config, step.agent, output.state):
            self.hand_off(event, step, output.state, flow_event.config)
            step.before = _handler_input(output.state, flow_event.state)
        self.agent_done(event, step, output, local=True)

    async def batch_steps(self, event: HistoryEvent, activity_id: str, attempt: int) -> None:
        """A batch of local agents (workflows/_batch.py): a line per agent, as if each had run
        on its own. A failed marker is its first agent's (its id is that agent's)."""
        attrs = event.marker_recorded_event_attributes
        seq, first = _parse_activity_id(activity_id)
        event_id = self.event_of(seq)
        flow_event = self.flow_event(event_id)
        if attrs.HasField("failure"):
            step = _Step(first, event_id, self.new_local_batch(event, flow_event), None,
                         activity_id=activity_id)  # fmt: skip
            action: Action = "timed out" if _timed_out(attrs.failure) else "failed"
            self.step_failed(event, step, action, attrs.failure, attempt, None, local=True)
            return
        if "result" not in attrs.details:
            return
        [done] = await self.converter.decode(attrs.details["result"].payloads, [BatchOutput])
        number = -event.event_id * 1000  # one trace batch per agent: they ran one by one
        for agent, step_id, output in zip(done.agents, done.activity_ids, done.outputs,
                                          strict=True):  # fmt: skip
            number -= 1
            self.batches[number], self.local_batch = _Batch(flow_event.state), number
            step = _Step(agent, event_id, number, None, activity_id=step_id)
            step.before = self.batches[number].before
            self.agent_done(event, step, output, local=True)
        if (failure := done.failure) is not None:
            detail = f"{failure.type}: {failure.message} (local)"
            self.line(event, "failed", failure.agent, attempt=failure.attempt, batch=number - 1,
                      event_id=event_id, detail=detail)  # fmt: skip

    def local_batch_of(
        self, event: HistoryEvent, scheduled_at: datetime | None, flow_event: _FlowEvent
    ) -> int:
        """Local steps have no scheduling event to group them by. One scheduled before the
        previous ones ended ran beside them (fan-out); else it ran after them."""
        batch = self.batches.get(self.local_batch) if self.local_batch is not None else None
        if (
            batch is not None
            and scheduled_at is not None
            and batch.open_until is not None
            and scheduled_at < batch.open_until
        ):
            return self.local_batch  # type: ignore[return-value]
        return self.new_local_batch(event, flow_event)

    def new_local_batch(self, event: HistoryEvent, flow_event: _FlowEvent) -> int:
        number = -event.event_id  # never a workflow task's event id
        self.batches[number] = _Batch(flow_event.state)
        self.local_batch = number
        return number

    def hand_off(
        self, event: HistoryEvent, step: _Step, state: State, config: FlowConfig | None
    ) -> None:
        """An ``[error_routing]`` handler's step: the failed agent hands the event over."""
        if routed := _error_routing(config, step.agent, state):
            failed, kind = routed
            self.line(event, "handed off", failed, detail=f"{ERROR_HANDOFF}{step.agent} ({kind})",
                      **step.tags)  # fmt: skip

    def agent_done(
        self, event: HistoryEvent, step: _Step, output: AgentOutput, local: bool = False
    ) -> None:
        flow_event = self.flow_event(step.event_id)
        before = step.before or flow_event.state
        self.completed_by_activity[step.activity_id] = event.event_id
        config = flow_event.config
        tags = dict(step.tags)
        if config is not None and config.name == BUS_FLOW:  # the fan-out: where it delivered
            sent = output.state.data.get("deliveries")
            tags["deliveries"] = sent if isinstance(sent, list) else []
            tags["topic"] = str(output.state.data.get("topic", ""))
        self.line(
            event, "completed", step.agent, attempt=output.attempt,
            duration_ms=(output.ended_at - output.started_at).total_seconds() * 1000,
            changed_keys=changed_keys(before, output.state), detail="local" if local else "",
            **tags,
        )  # fmt: skip
        for topic in published_topics(output.state.meta.get(PUBLISH)):
            subscribers = config.subscribers(topic) if config else []
            bus_event = publication_id(self.run_id, step.activity_id, topic)
            self.line(event, "published", step.agent, topic=topic, batch=step.batch,
                      event_id=step.event_id, bus_event=bus_event,
                      detail=f"{topic} → {', '.join(subscribers) or 'no subscribers'} in this "
                             f"flow; on the bus as {bus_event}")  # fmt: skip
        # Route mode follows meta["route"]; other modes ignore it, so it is no hand-off there.
        if config is not None and config.mode == "route" and output.state.meta.get("route"):
            self.line(event, "handed off", step.agent, detail=f"to {output.state.meta['route']}",
                      batch=step.batch, event_id=step.event_id)  # fmt: skip
        if step.topic is None:
            self.passed_on(step, flow_event, output.state, output.ended_at if local else None)

    def passed_on(
        self, step: _Step, flow_event: _FlowEvent, state: State, ended: datetime | None
    ) -> None:
        """What the event's next step gets: the outputs of this step's batch, merged."""
        state = state.model_copy(update={"meta": {k: v for k, v in state.meta.items()
                                                  if k != PUBLISH}})  # fmt: skip
        batch = self.batches.get(step.batch)
        if batch is None:
            flow_event.state = state
            return
        batch.outputs.append(state)
        flow_event.state = merge_states(batch.before, batch.outputs)
        if ended is not None and (batch.open_until is None or ended > batch.open_until):
            batch.open_until = ended

    def hooks_done(
        self,
        event: HistoryEvent,
        step: _Step,
        output: HookOutput,
        attempt: int,
        duration: float | None,
        local: bool = False,
    ) -> None:
        flow_event = self.flow_event(step.event_id)
        before = step.before or flow_event.state
        self.line(event, "completed", HOOKS, attempt=attempt, duration_ms=duration,
                  changed_keys=changed_keys(before, output.state),
                  detail=step.hook + (" (local)" if local else ""), **step.tags)  # fmt: skip
        if output.rejected_by:
            self.line(event, "rejected", HOOKS, **step.tags,
                      detail=f"{step.hook} hook {output.rejected_by}: {output.reason}")  # fmt: skip
        flow_event.state = output.state

    def step_failed(
        self,
        event: HistoryEvent,
        step: _Step,
        action: Action,
        failure: Any,
        attempt: int,
        duration: float | None,
        local: bool = False,
    ) -> None:
        detail = (f"{step.hook}: " if step.hook else "") + _failure(failure)
        self.line(event, action, step.agent, attempt=attempt, duration_ms=duration,
                  detail=detail + (" (local)" if local else ""), **step.tags)  # fmt: skip
        if _failure_type(failure) == "HookRejected":  # an agent hook raised FatalError
            self.line(event, "rejected", step.agent, detail=_innermost(failure).message,
                      **step.tags)  # fmt: skip


_ACTIVITY_ID = re.compile(r"(?:(\d+)\.)?\d+-(.+)")


def _parse_activity_id(activity_id: str) -> tuple[int | None, str]:
    """``"7.2-agent"`` (a session's event 7) or ``"2-agent"`` → (7 or None, ``"agent"``)."""
    match = _ACTIVITY_ID.fullmatch(activity_id)
    if match is None:
        return None, activity_id
    seq = match.group(1)
    return (int(seq) if seq else None), match.group(2)


def _error_routing(config: FlowConfig | None, agent: str, state: State) -> tuple[str, str] | None:
    """(failed agent, error kind) when ``agent`` runs as the error handler of a failed step:
    its state carries what ``workflows/_event.py`` hands it, and config names it the handler."""
    data = state.data
    kind = data.get("error_type")
    if config is None or not isinstance(kind, str) or "original_event" not in data:
        return None
    if config.error_routing.handler_for(kind) != agent:
        return None
    return str(data.get("failed_agent") or ""), kind


def _handler_input(output: State, event_state: State) -> State:
    """What a local error handler got (its input is not in history), to tell what it changed."""
    data = {key: output.data[key] for key in ROUTING_KEYS if key in output.data}
    return State(data=data, meta=dict(event_state.meta), context=dict(event_state.context))


def _time(event: HistoryEvent) -> datetime:
    return event.event_time.ToDatetime(tzinfo=timezone.utc)


def _proto_time(value: Any) -> datetime | None:
    """A protobuf Timestamp as the marker's JSON holds it: ``{"seconds": …, "nanos": …}``."""
    if not isinstance(value, dict) or "seconds" not in value:
        return None
    seconds = float(value["seconds"]) + float(value.get("nanos") or 0) / 1e9
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


# How a flow agent's child workflow ended: the event's attributes field.
_CHILD_ENDS: dict[int, str] = {
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED:
        "child_workflow_execution_completed_event_attributes",
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_FAILED:
        "child_workflow_execution_failed_event_attributes",
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TIMED_OUT:
        "child_workflow_execution_timed_out_event_attributes",
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_CANCELED:
        "child_workflow_execution_canceled_event_attributes",
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TERMINATED:
        "child_workflow_execution_terminated_event_attributes",
}  # fmt: skip

_FLOW_ENDS: dict[int, Action] = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED: "completed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED: "failed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT: "timed out",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW: "continued-as-new",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED: "canceled",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED: "terminated",
}


def _failure(failure: Any) -> str:
    """The failure's message, prefixed with its error type (e.g. ``ValueError: bad value``)."""
    while failure.HasField("cause") and not failure.message:
        failure = failure.cause
    kind = (
        failure.application_failure_info.type
        if failure.HasField("application_failure_info")
        else ""
    )
    return f"{kind}: {failure.message}" if kind and kind != "FlowFailed" else str(failure.message)


def _innermost(failure: Any) -> Any:
    """The application failure an activity failure wraps (or the failure itself)."""
    while not failure.HasField("application_failure_info") and failure.HasField("cause"):
        failure = failure.cause
    return failure


def _failure_type(failure: Any) -> str:
    inner = _innermost(failure)
    return str(inner.application_failure_info.type)


def _timed_out(failure: Any) -> bool:
    while True:
        if failure.HasField("timeout_failure_info"):
            return True
        if not failure.HasField("cause"):
            return False
        failure = failure.cause


def _first(err: Exception) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]
