"""Emitting events into sessions, and reading and closing sessions, from a client.

``emit`` sends the ``emit`` signal with start: the server records the event durably before the
call returns, whether or not a worker runs, and starts the session's workflow if it is not
running. ``emit(..., wait=True)`` uses update-with-start instead, which returns the event's
outcome in one round trip once a worker has processed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from agentflow.client import visibility
from agentflow.config import FlowConfig
from agentflow.errors import AgentflowError, ConfigError
from agentflow.limits import MAX_ID_BYTES, data_problem
from agentflow.models import attributes
from agentflow.models.flow import PRIORITY_KEYS, Event, FlowResult
from agentflow.models.session import (
    MAX_EVENT_ID_BYTES,
    MAX_SESSION_ID_BYTES,
    EmitRequest,
    EventOutcome,
    SessionState,
    SessionSummary,
    SessionView,
)
from agentflow.names import (
    CLOSE_UPDATE,
    EMIT_AND_WAIT_UPDATE,
    EMIT_SIGNAL,
    EVENT_RESULT_UPDATE,
    SESSION_QUERY,
    SESSION_WORKFLOW,
    session_workflow_id,
)

# Temporal limits one payload to 2 MB; leave room for the config that travels with the event.
MAX_EMIT_BYTES = 2 * 1024 * 1024 - 128 * 1024
# How long a client waits between asking a session that was continuing as new again.
MOVED_RETRY_SECONDS = 0.05


class EventDeadLetteredError(AgentflowError):
    """The event could not be processed; ``outcome.dead_letter_id`` names its dead letter."""

    def __init__(self, outcome: EventOutcome) -> None:
        super().__init__(
            f"event {outcome.event_id or '(unreadable)'} was dead-lettered "
            f"({outcome.reason}): {outcome.error or ''} [dead letter {outcome.dead_letter_id}]"
        )
        self.outcome = outcome


@dataclass
class EmitHandle:
    """An emitted event: durably recorded in its session, processed in its turn."""

    event_id: str
    session_id: str
    workflow_id: str
    client: Client
    outcome_now: EventOutcome | None = None

    async def outcome(self) -> EventOutcome:
        """Wait until the event is processed or dead-lettered (never raises for either)."""
        if self.outcome_now is not None and self.outcome_now.status != "moved":
            return self.outcome_now
        return await event_outcome(self.client, self.workflow_id, self.event_id)

    async def result(self) -> FlowResult:
        """The event's FlowResult; EventDeadLetteredError if it went to dead letters."""
        outcome = await self.outcome()
        if outcome.status == "dead_lettered":
            raise EventDeadLetteredError(outcome)
        if outcome.result is None:
            detail = outcome.reason or (
                "its result is no longer held by the session (it keeps the last 100 outcomes, "
                "and their results as far as 256 KB go); see `agentflow trace --session "
                f"{self.session_id}`"
            )
            raise AgentflowError(
                f"event {self.event_id} of session {self.session_id}: {outcome.status}: {detail}"
            )
        return outcome.result


def new_event(
    config: FlowConfig,
    data: dict[str, Any] | None = None,
    *,
    session_id: str | None = None,
    target: str | None = None,
    priority: str = "normal",
    deadline: datetime | None = None,
    within: timedelta | None = None,
    event_id: str | None = None,
    metadata: dict[str, str] | None = None,
) -> Event:
    """An event checked against Temporal's limits, with one clear error for bad input."""
    if priority not in PRIORITY_KEYS:
        raise ConfigError(f"--priority: unknown {priority!r}; allowed: low, normal, high, critical")
    if deadline is not None and within is not None:
        raise ConfigError("--deadline and --within: give one of them")
    if within is not None:
        if within.total_seconds() <= 0:
            raise ConfigError("--within: must be a positive duration")
        deadline = datetime.now(timezone.utc) + within
    if deadline is not None and deadline.tzinfo is None:
        raise ConfigError("--deadline: give a time zone (RFC 3339, e.g. 2026-11-21T15:00:00Z)")
    if target is not None and target not in config.enabled_agents():
        known = ", ".join(config.enabled_agents())
        raise ConfigError(f"--target: no enabled agent {target!r}; enabled agents: {known}")
    event_id = str(uuid.uuid4()) if event_id is None else event_id
    _check_id("--event-id", event_id, MAX_EVENT_ID_BYTES)
    session_id = event_id if session_id is None else session_id
    _check_id("--session", session_id, MAX_SESSION_ID_BYTES)
    check_data(data)
    meta = dict(metadata or {})
    meta.setdefault("session_id", session_id)
    return Event(id=event_id, target_agent=target or "", session_id=session_id,
                 data=dict(data or {}), metadata=meta, priority=priority,
                 deadline=deadline)  # fmt: skip


def check_run(data: dict[str, Any] | None, session_id: str | None, workflow_id: str | None) -> None:
    """A run's input, session and workflow id checked against Temporal's limits (ConfigError):
    refused here, they cannot reach the server as a misleading error or a silent change."""
    check_data(data)
    if session_id:
        _check_id("--session", session_id, MAX_SESSION_ID_BYTES)
    if workflow_id is not None:
        _check_id("--workflow-id", workflow_id, MAX_ID_BYTES, "Temporal's limit for workflow ids")


def check_data(data: dict[str, Any] | None) -> None:
    """Input data that Temporal's JSON converter would change (NaN becomes null) or refuse."""
    if data and (problem := data_problem(data)):
        raise ConfigError(f"--input: {problem}")


def _check_id(
    flag: str, value: str, limit: int,
    why: str = "it becomes part of a Temporal workflow id and search attribute",
) -> None:  # fmt: skip
    if not value.strip():
        raise ConfigError(f"{flag}: must not be empty")
    size = len(value.encode("utf-8", errors="surrogatepass"))
    if size > limit:
        raise ConfigError(f"{flag}: {size} bytes; at most {limit} ({why})")
    if any(ord(ch) < 32 or 0xD800 <= ord(ch) <= 0xDFFF for ch in value):
        raise ConfigError(f"{flag}: control characters and lone surrogates are not allowed")


async def emit(
    client: Client, config: FlowConfig, task_queue: str, event: Event, *, wait: bool = False,
    redrive_of: str | None = None,
) -> EmitHandle:  # fmt: skip
    """Record ``event`` in its session (starting or reopening the session if needed)."""
    request = EmitRequest(config=config, event=event, redrive_of=redrive_of)
    size = len(request.model_dump_json())
    if size > MAX_EMIT_BYTES:
        raise ConfigError(
            f"--input: the event is {size / 1e6:.1f} MB with its config; Temporal payloads are "
            "limited to 2 MB, so keep large data outside the event and pass a reference"
        )
    workflow_id = session_workflow_id(config.name, event.session_id)
    handle = EmitHandle(event.id, event.session_id, workflow_id, client)
    start = _start_state(config, event.session_id)
    try:
        handle.outcome_now = await _send(client, config, task_queue, workflow_id, start, request,
                                         wait, WorkflowIDReusePolicy.REJECT_DUPLICATE)  # fmt: skip
    except WorkflowAlreadyStartedError:
        # The session was closed: reopen it where it left off (its context, ids and counts).
        start = await _reopened(client, workflow_id, start)
        handle.outcome_now = await _send(client, config, task_queue, workflow_id, start, request,
                                         wait, WorkflowIDReusePolicy.ALLOW_DUPLICATE)  # fmt: skip
    return handle


async def _send(
    client: Client,
    config: FlowConfig,
    task_queue: str,
    workflow_id: str,
    start: SessionState,
    request: EmitRequest,
    wait: bool,
    reuse: WorkflowIDReusePolicy,
) -> EventOutcome | None:
    options: dict[str, Any] = dict(
        id=workflow_id, task_queue=task_queue, id_reuse_policy=reuse,
        search_attributes=attributes.search_attributes(config, start.session_id),
        static_summary=f"session {start.session_id} · {config.name} · {config.mode}",
        static_details=attributes.static_details(config, start.session_id),
        task_timeout=timedelta(seconds=config.orchestration.workflow_task_timeout_seconds),
    )  # fmt: skip
    try:
        if not wait:
            await client.start_workflow(
                SESSION_WORKFLOW, start, start_signal=EMIT_SIGNAL, start_signal_args=[request],
                **options,
            )  # fmt: skip
            return None
        operation: WithStartWorkflowOperation[Any, Any] = WithStartWorkflowOperation(
            SESSION_WORKFLOW, start, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            result_type=SessionSummary, **options,
        )  # fmt: skip
        try:
            outcome: EventOutcome = await client.execute_update_with_start_workflow(
                EMIT_AND_WAIT_UPDATE, request, start_workflow_operation=operation,
                # A fresh update id: Temporal would answer a repeated one from its own record,
                # and the session must see a repeated event to count it as a duplicate.
                result_type=EventOutcome, id=f"emit-{request.event.id}-{uuid.uuid4().hex[:8]}",
            )  # fmt: skip
        except WorkflowAlreadyStartedError:
            # The start operation holds the same error: read it, or asyncio logs it with a
            # traceback ("Future exception was never retrieved") when the operation is freed.
            with contextlib.suppress(WorkflowAlreadyStartedError):
                await operation.workflow_handle()
            raise
        return outcome
    except RPCError as err:
        raise visibility.missing_attribute_error(err, client.namespace) or err from None


def _start_state(config: FlowConfig, session_id: str) -> SessionState:
    sessions = config.sessions
    return SessionState(
        flow=config.name, session_id=session_id,
        idle_timeout_seconds=sessions.idle_timeout_seconds,
        max_queued_events=sessions.max_queued_events,
        events_per_run=sessions.events_per_run, dedupe_window=sessions.dedupe_window,
    )  # fmt: skip


async def _reopened(client: Client, workflow_id: str, start: SessionState) -> SessionState:
    """A closed session's context, counts and remembered ids, to start its next run with."""
    summary = await _closed_summary(client, workflow_id)
    view = summary.view
    return start.model_copy(
        update={
            "context": view.context, "counts": view.counts, "seen": summary.seen,
            "next_seq": summary.next_seq, "runs": view.runs + 1, "recent": summary.recent,
            "reopened_from": view.closed_reason or "closed",
        }
    )  # fmt: skip


async def _closed_summary(client: Client, workflow_id: str) -> SessionSummary:
    handle = client.get_workflow_handle(workflow_id, result_type=SessionSummary)
    description = await handle.describe()
    if description.status != WorkflowExecutionStatus.COMPLETED:
        status = visibility.status_name(description.status)
        raise AgentflowError(
            f"session workflow {handle.id} ended as {status}, so its context cannot be carried "
            "over; terminate or delete it to start the session afresh"
        )
    summary: SessionSummary = await handle.result()
    return summary


async def event_outcome(client: Client, workflow_id: str, event_id: str) -> EventOutcome:
    """Wait for an event's outcome, following the session across continue-as-new."""
    while True:
        handle = client.get_workflow_handle(workflow_id)
        try:
            outcome: EventOutcome = await handle.execute_update(
                EVENT_RESULT_UPDATE, event_id, result_type=EventOutcome
            )
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            # Between runs (continue-as-new), or the session has closed.
            closed = await _closed_outcome(client, workflow_id, event_id)
            if closed is not None:
                return closed
            outcome = EventOutcome(event_id=event_id, session_id="", status="moved")
        if outcome.status != "moved":
            return outcome
        await asyncio.sleep(MOVED_RETRY_SECONDS)


async def _closed_outcome(client: Client, workflow_id: str, event_id: str) -> EventOutcome | None:
    description = await client.get_workflow_handle(workflow_id).describe()
    if description.status == WorkflowExecutionStatus.RUNNING:
        return None
    summary = await _closed_summary(client, workflow_id)
    for outcome in summary.recent:
        if outcome.event_id == event_id:
            return outcome
    return EventOutcome(event_id=event_id, session_id=summary.view.session_id, status="unknown",
                        reason="the session has closed and no longer lists this event")  # fmt: skip


async def session_view(client: Client, flow: str, session_id: str) -> SessionView:
    """A session's status, queue, counts and context (closed sessions: as they ended)."""
    handle = client.get_workflow_handle(session_workflow_id(flow, session_id))
    try:
        description = await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise AgentflowError(f"no session {session_id!r} of flow {flow!r}") from None
        raise
    if description.status != WorkflowExecutionStatus.RUNNING:
        return (await _closed_summary(client, handle.id)).view
    view: SessionView = await handle.query(SESSION_QUERY, result_type=SessionView)
    return view


async def close_session(client: Client, flow: str, session_id: str, by: str) -> SessionView:
    """Ask a session to finish its queued events and end, keeping its context."""
    handle = client.get_workflow_handle(session_workflow_id(flow, session_id))
    view: SessionView = await handle.execute_update(CLOSE_UPDATE, by, result_type=SessionView)
    return view


def redrive_id(event_id: str) -> str:
    """The id a dead letter's event is emitted again with: ``x`` → ``x.r1`` → ``x.r2``."""
    match = re.fullmatch(r"(.*)\.r(\d+)", event_id)
    if match:
        return f"{match.group(1)}.r{int(match.group(2)) + 1}"
    return f"{event_id}.r1"
