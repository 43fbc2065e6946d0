"""The seeds' DumpTrace, rebuilt from Temporal history: Temporal's history *is* the trace.

One ``TraceEntry`` per step of a run, read with ``fetch_history_events`` and decoded with the
client's (pydantic) data converter, so nothing is stored twice. Columns:

- ``history_event_id``: the Temporal history event the line comes from (``#`` in the table,
  the same number the Temporal UI shows); ``event_id``: the flow's ``Event.id`` (the seeds'
  EventID), shared by every line of a run and of the runs it continued as.
- Temporal writes an activity's "started" event only when its last attempt ends, keeping the
  previous attempt's failure: so a retried agent shows one ``retried`` line (attempt N, the
  last failure) rather than one line per failed attempt.
- An agent whose output sets ``meta["publish"]`` gets one ``published`` line per topic
  (``topic → subscribers``); a subscriber's lines carry the ``topic`` and ``source_event``,
  the history event of the publish it reacts to.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, Field
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from agentflow import visibility
from agentflow.config import FlowConfig
from agentflow.errors import AgentflowError
from agentflow.models import AgentInput, AgentOutput, FlowInput, FlowResult
from workflows._bus import PUBLISH, published_topics
from workflows._calls import RUN_AGENT
from workflows._state import changed_keys

Action = Literal[
    "started", "completed", "failed", "retried", "timed out", "handed off", "published",
    "continued-as-new", "canceled", "terminated",
]  # fmt: skip
# Lines that --flow-only keeps: where control moves, without per-attempt detail.
FLOW_ACTIONS = {"completed", "failed", "timed out", "handed off", "published",
                "continued-as-new", "canceled", "terminated"}  # fmt: skip


class TraceEntry(BaseModel):
    """One line of a trace (the seeds' TraceEntry: time, event id, agent, action, data)."""

    time: datetime
    workflow_id: str
    run_id: str
    history_event_id: int
    event_id: str = ""
    agent: str = ""  # empty for lines about the flow itself
    action: Action
    attempt: int | None = None
    duration_ms: float | None = None
    changed_keys: list[str] = Field(default_factory=list)
    detail: str = ""
    batch: int | None = None  # agents scheduled by the same workflow task ran in parallel
    topic: str = ""  # a published line's topic; on a subscriber's lines, the topic it got
    source_event: int | None = None  # a subscriber's lines: the publisher's completed event


async def trace(
    client: Client,
    workflow_id: str | None = None,
    run_id: str | None = None,
    *,
    session: str | None = None,
    agent: str | None = None,
    flow_only: bool = False,
) -> list[TraceEntry]:
    """The trace of one run (following continue-as-new) or of every run of a session."""
    if session:
        entries: list[TraceEntry] = []
        seen: set[str] = set()
        async for run in visibility.list_runs(client, session=session):
            if run.id not in seen:
                seen.add(run.id)
                entries += await trace_chain(client, run.id)
        entries.sort(key=lambda entry: (entry.time, entry.workflow_id, entry.history_event_id))
    elif workflow_id:
        entries = await trace_chain(client, workflow_id, run_id)
    else:
        raise AgentflowError("trace needs a workflow id or a session id")
    return filter_entries(entries, agent=agent, flow_only=flow_only)


def filter_entries(
    entries: Iterable[TraceEntry], *, agent: str | None = None, flow_only: bool = False
) -> list[TraceEntry]:
    return [
        entry
        for entry in entries
        if (agent is None or entry.agent == agent)
        and (not flow_only or not entry.agent or entry.action in FLOW_ACTIONS)
    ]


async def resolve_workflow_id(client: Client, run: str) -> tuple[str, str | None]:
    """``RUN`` on the command line may be a workflow id or a run id (found via visibility)."""
    try:
        await client.get_workflow_handle(run).describe()
        return run, None
    except RPCError:
        pass  # not a workflow id: try it as a run id below
    async for execution in client.list_workflows(f"RunId = '{run}'", limit=1):
        return execution.id, execution.run_id
    raise AgentflowError(f"no workflow or run with id {run!r} in namespace {client.namespace}")


async def trace_chain(
    client: Client, workflow_id: str, run_id: str | None = None
) -> list[TraceEntry]:
    """Every run of a continue-as-new chain, from its first run, in order."""
    entries: list[TraceEntry] = []
    async for current, events in run_histories(client, workflow_id, run_id):
        entries += await _decode_run(client, workflow_id, current, events)
    return entries


async def run_histories(
    client: Client, workflow_id: str, run_id: str | None = None
) -> AsyncIterator[tuple[str, list[HistoryEvent]]]:
    """(run id, events) of every run of the continue-as-new chain that ``run_id`` (default:
    the latest run) belongs to, from its first run, in order."""
    first = await _history(client.get_workflow_handle(workflow_id, run_id=run_id))
    start = first[0].workflow_execution_started_event_attributes
    current = start.first_execution_run_id or run_id
    while current:
        events = await _history(client.get_workflow_handle(workflow_id, run_id=current))
        yield current, events
        current = _next_run(events)


async def _history(handle: WorkflowHandle[Any, Any]) -> list[HistoryEvent]:
    return [event async for event in handle.fetch_history_events()]


def _next_run(events: list[HistoryEvent]) -> str | None:
    last = events[-1] if events else None
    if (
        last is not None
        and last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    ):
        return last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
    return None


class _Step:
    """What the scheduled event told us about one agent call."""

    def __init__(self, request: AgentInput, batch: int, source_event: int | None) -> None:
        self.request, self.batch = request, batch
        self.attempt = 1
        self.started: datetime | None = None
        self.completed_event: int | None = None
        # Fields every line of this step carries.
        self.tags: dict[str, Any] = {"batch": batch}
        if request.topic is not None:
            self.tags.update(topic=request.topic, source_event=source_event)


async def _decode_run(
    client: Client, workflow_id: str, run_id: str, events: list[HistoryEvent]
) -> list[TraceEntry]:
    decoder = _RunDecoder(client, workflow_id, run_id)
    for event in events:
        await decoder.decode(event)
    return decoder.entries


class _RunDecoder:
    """Turns one run's history events into trace lines, one event at a time."""

    def __init__(self, client: Client, workflow_id: str, run_id: str) -> None:
        self.converter = client.data_converter
        self.workflow_id, self.run_id = workflow_id, run_id
        self.entries: list[TraceEntry] = []
        self.steps: dict[int, _Step] = {}
        self.by_activity_id: dict[str, _Step] = {}
        self.event_id, self.route_mode = "", False
        self.config: FlowConfig | None = None
        self.started_at: datetime | None = None

    def line(self, event: HistoryEvent, action: Action, agent: str = "", **fields: Any) -> None:
        self.entries.append(
            TraceEntry(
                time=_time(event),
                workflow_id=self.workflow_id,
                run_id=self.run_id,
                history_event_id=event.event_id,
                event_id=self.event_id,
                agent=agent,
                action=action,
                **fields,
            )
        )

    async def decode(self, event: HistoryEvent) -> None:
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            await self.flow_started(event)
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
        elif kind in _FLOW_ENDS:
            await self.flow_ended(event)

    async def flow_started(self, event: HistoryEvent) -> None:
        attrs = event.workflow_execution_started_event_attributes
        [flow_input] = await self.converter.decode(attrs.input.payloads, [FlowInput])
        self.event_id, self.started_at = flow_input.event.id, _time(event)
        self.route_mode = flow_input.config.mode == "route"
        self.config = flow_input.config
        detail = f"{flow_input.config.name} ({flow_input.config.mode})"
        if attrs.continued_execution_run_id:
            detail += f", continued from run {attrs.continued_execution_run_id}"
        if flow_input.event.session_id:
            detail += f", session {flow_input.event.session_id}"
        self.line(event, "started", detail=detail)

    async def scheduled(self, event: HistoryEvent) -> None:
        attrs = event.activity_task_scheduled_event_attributes
        if attrs.activity_type.name != RUN_AGENT:
            return
        [request] = await self.converter.decode(attrs.input.payloads, [AgentInput])
        publisher = self.by_activity_id.get(request.published_by or "")
        source = publisher.completed_event if publisher else None
        step = _Step(request, attrs.workflow_task_completed_event_id, source)
        self.steps[event.event_id] = self.by_activity_id[attrs.activity_id] = step
        detail = f"{request.topic} from {request.event.source_agent}" if request.topic else ""
        self.line(event, "started", request.agent, attempt=1, detail=detail, **step.tags)

    def attempt_started(self, event: HistoryEvent) -> None:
        attrs = event.activity_task_started_event_attributes
        if (step := self.steps.get(attrs.scheduled_event_id)) is None:
            return
        step.attempt, step.started = attrs.attempt, _time(event)
        if attrs.attempt > 1:
            detail = (
                f"after {attrs.attempt - 1} failed attempt(s); last: {_failure(attrs.last_failure)}"
            )
            self.line(event, "retried", step.request.agent, attempt=attrs.attempt,
                      detail=detail, **step.tags)  # fmt: skip

    async def completed(self, event: HistoryEvent) -> None:
        attrs = event.activity_task_completed_event_attributes
        if (step := self.steps.get(attrs.scheduled_event_id)) is None:
            return
        [output] = await self.converter.decode(attrs.result.payloads, [AgentOutput])
        agent = step.request.agent
        step.completed_event = event.event_id
        self.line(
            event, "completed", agent, attempt=output.attempt,
            duration_ms=(output.ended_at - output.started_at).total_seconds() * 1000,
            changed_keys=changed_keys(step.request.state, output.state), **step.tags,
        )  # fmt: skip
        for topic in published_topics(output.state.meta.get(PUBLISH)):
            subscribers = self.config.subscribers(topic) if self.config else []
            self.line(event, "published", agent, topic=topic, batch=step.batch,
                      detail=f"{topic} → {', '.join(subscribers) or 'no subscribers'}")  # fmt: skip
        # Route mode follows meta["route"]; other modes ignore it, so it is no hand-off there.
        if self.route_mode and output.state.meta.get("route"):
            self.line(event, "handed off", agent, detail=f"to {output.state.meta['route']}",
                      batch=step.batch)  # fmt: skip

    def failed(self, event: HistoryEvent, action: Action, scheduled: int, failure: Any) -> None:
        if (step := self.steps.get(scheduled)) is None:
            return
        since = step.started or _time(event)
        self.line(event, action, step.request.agent, attempt=step.attempt,
                  duration_ms=(_time(event) - since).total_seconds() * 1000,
                  detail=_failure(failure), **step.tags)  # fmt: skip

    async def flow_ended(self, event: HistoryEvent) -> None:
        kind, when = event.event_type, _time(event)
        duration = (when - self.started_at).total_seconds() * 1000 if self.started_at else None
        detail, keys = "", []
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            done = event.workflow_execution_completed_event_attributes
            [result] = await self.converter.decode(done.result.payloads, [FlowResult])
            # Subscribers' outputs are not merged into the flow's state: leave them out.
            keys = sorted({k for r in result.results if r.topic is None for k in r.changed_keys})
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
            detail = _failure(event.workflow_execution_failed_event_attributes.failure)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            new_run = event.workflow_execution_continued_as_new_event_attributes
            detail = f"new run {new_run.new_execution_run_id}"
        self.line(event, _FLOW_ENDS[kind], duration_ms=duration, detail=detail, changed_keys=keys)


def _time(event: HistoryEvent) -> datetime:
    return event.event_time.ToDatetime(tzinfo=timezone.utc)


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


def format_table(entries: list[TraceEntry]) -> str:
    """The trace as an aligned, readable table (one line per step)."""
    header = ("TIME", "#", "EVENT", "AGENT", "ACTION", "TRY", "MS", "CHANGED", "DETAIL")
    rows = [header]
    for e in entries:
        rows.append((
            e.time.astimezone().strftime("%H:%M:%S.%f")[:-3], str(e.history_event_id),
            e.event_id[:8],
            e.agent or "(flow)", e.action, "" if e.attempt is None else str(e.attempt),
            "" if e.duration_ms is None else f"{e.duration_ms:.1f}",
            ", ".join(e.changed_keys), e.detail,
        ))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    return "\n".join(
        (
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
            + "  "
            + row[-1]
        ).rstrip()
        for row in rows
    )


def to_json(entries: list[TraceEntry]) -> str:
    return json.dumps([entry.model_dump(mode="json") for entry in entries], ensure_ascii=False)
