"""Emitting events into sessions, and reading and closing sessions, from a client.

``emit`` sends the ``emit`` signal with start (``emit_by_key`` once this process has sent
the session the config): the server records the event durably before the call returns,
whether or not a worker runs, and starts the session's workflow if it is not running.
``emit(..., wait=True)`` uses update-with-start instead, which returns the event's outcome in
one round trip once a worker has processed it; the event names its config by key (the config
rides in the start input: ``session_payloads.py``). Events are built and checked
in ``inputs.py``; what became of one (``EmitHandle``, ``event_outcome``) is in ``outcomes.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from agentflow.client import session_payloads, visibility
from agentflow.client.inputs import check_data, check_run, new_event
from agentflow.client.outcomes import (
    EmitHandle,
    EventDeadLetteredError,
    closed_summary,
    event_outcome,
)
from agentflow.client.session_list import list_sessions
from agentflow.client.session_payloads import (
    MAX_EMIT_BYTES,
    EncodedEvent,
    config_sent,
    encoded_event,
    mark_config_sent,
)
from agentflow.config import FlowConfig
from agentflow.config.code_checks import unrunnable
from agentflow.errors import ConfigError, NotFoundError
from agentflow.models import attributes
from agentflow.models.flow import Event
from agentflow.models.session import (
    CONFIG_UNKNOWN,
    EmitRequest,
    EventOutcome,
    SessionState,
    SessionSummary,
    SessionView,
)
from agentflow.names import (
    CLOSE_UPDATE,
    EMIT_AND_WAIT_UPDATE,
    EMIT_BY_KEY_SIGNAL,
    EMIT_BY_KEY_UPDATE,
    EMIT_SIGNAL,
    SESSION_QUERY,
    SESSION_WORKFLOW,
    session_workflow_id,
)

__all__ = [
    "MAX_EMIT_BYTES",
    "EmitHandle",
    "EventDeadLetteredError",
    "check_data",
    "check_run",
    "close_if_running",
    "close_session",
    "emit",
    "emit_request",
    "event_outcome",
    "list_sessions",
    "new_event",
    "redrive_id",
    "session_view",
]


def emit_request(
    config: FlowConfig, event: Event, where: str = "--input", redrive_of: str | None = None
) -> EmitRequest:
    """The session's request for ``event``; ConfigError (naming ``where``) when it would not
    fit in a Temporal payload."""
    encoded_event(config, event, where, redrive_of)
    return EmitRequest(config=config, event=event, redrive_of=redrive_of)


async def emit(
    client: Client, config: FlowConfig, task_queue: str, event: Event, *, wait: bool = False,
    redrive_of: str | None = None,
) -> EmitHandle:  # fmt: skip
    """Record ``event`` in its session (starting or reopening the session if needed)."""
    if problem := unrunnable(config):
        raise ConfigError(problem)
    request = encoded_event(config, event, redrive_of=redrive_of)
    workflow_id = session_workflow_id(config.name, event.session_id)
    handle = EmitHandle(event.id, event.session_id, workflow_id, client)
    start = _start_state(config, event.session_id)
    try:
        handle.outcome_now = await retry_while_closing(lambda: _send(client, config, task_queue,
            workflow_id, start, request, wait, WorkflowIDReusePolicy.REJECT_DUPLICATE))  # fmt: skip
    except WorkflowAlreadyStartedError:
        # The session was closed: reopen it where it left off (its context, ids and counts).
        start = await _reopened(client, workflow_id, start)
        handle.outcome_now = await retry_while_closing(lambda: _send(client, config, task_queue,
            workflow_id, start, request, wait, WorkflowIDReusePolicy.ALLOW_DUPLICATE))  # fmt: skip
    return handle


# Seconds between tries while a session's run is closing (about 60 s in all).
CLOSING_WAITS = (0.2, 0.4, 0.8, 1.6, *(3.0,) * 19)


async def retry_while_closing(
    send: Callable[[], Awaitable[EventOutcome | None]],
) -> EventOutcome | None:
    """``send()``, tried again while the server refuses it because the session's run is
    closing (continuing as new while events keep arriving: ResourceExhausted, "workflow is
    closing"; Temporal's advice is to back off until the next run takes it). The SDK's own
    retries of it last a few seconds; a burst into one session (a bus shard) outlasts them.
    The event was not recorded, so sending it again cannot repeat it."""
    for wait in CLOSING_WAITS:
        try:
            return await send()
        except RPCError as err:
            if err.status != RPCStatusCode.RESOURCE_EXHAUSTED or "closing" not in err.message:
                raise
        await asyncio.sleep(wait)
    return await send()


async def _send(
    client: Client,
    config: FlowConfig,
    task_queue: str,
    workflow_id: str,
    start: SessionState,
    request: EncodedEvent,
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
        # The config travels in the start input (used only when this starts the session).
        start_input = session_payloads.start_input(client, start, request.config)
        if not wait:  # the first signal to a session carries the config; later ones its key
            key = request.config.key
            known = request.redrive_of is None and config_sent(client, workflow_id, key)
            signal, argument = ((EMIT_BY_KEY_SIGNAL, request.by_key(client)) if known
                                else (EMIT_SIGNAL, request.full(client)))  # fmt: skip
            await client.start_workflow(SESSION_WORKFLOW, start_input, start_signal=signal,
                                        start_signal_args=[argument], **options)  # fmt: skip
            mark_config_sent(client, workflow_id, key)
            return None
        try:
            outcome = await _update_with_start(client, EMIT_BY_KEY_UPDATE,
                                               request.by_key(client), request.event.id,
                                               start_input, options)  # fmt: skip
            if outcome.status != "unknown" or outcome.reason != CONFIG_UNKNOWN:
                return outcome
        except WorkflowUpdateFailedError as err:
            if not _no_such_update(err):
                raise
        # This run of the session does not have the config (or its worker predates keys).
        return await _update_with_start(client, EMIT_AND_WAIT_UPDATE, request.full(client),
                                        request.event.id, start_input, options)  # fmt: skip
    except RPCError as err:
        raise visibility.missing_attribute_error(err, client.namespace) or err from None


async def _update_with_start(
    client: Client, update: str, request: Any, event_id: str, start_input: Any,
    options: dict[str, Any],
) -> EventOutcome:  # fmt: skip
    operation: WithStartWorkflowOperation[Any, Any] = WithStartWorkflowOperation(
        SESSION_WORKFLOW, start_input, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        result_type=SessionSummary, **options,
    )  # fmt: skip
    try:
        outcome: EventOutcome = await client.execute_update_with_start_workflow(
            update, request, start_workflow_operation=operation,
            # A fresh update id: Temporal would answer a repeated one from its own record,
            # and the session must see a repeated event to count it as a duplicate.
            result_type=EventOutcome, id=f"emit-{event_id}-{uuid.uuid4().hex[:8]}",
        )  # fmt: skip
    except Exception:
        # The start operation holds the same error (a closed session, the server down): read
        # it, or asyncio logs it with a traceback ("Future exception was never retrieved")
        # when the operation is freed. Not set (the call failed before it): do not wait.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(operation.workflow_handle(), 0.05)
        raise
    return outcome


def _no_such_update(err: WorkflowUpdateFailedError) -> bool:
    """The session's worker has no ``emit_and_wait_by_key`` (a worker from before it)."""
    cause = err.cause
    return (
        isinstance(cause, ApplicationError) and cause.type == "RuntimeError"
        and EMIT_BY_KEY_UPDATE in cause.message and "not found" in cause.message
    )  # fmt: skip


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
    summary = await closed_summary(client, workflow_id)
    view = summary.view
    return start.model_copy(
        update={
            "context": view.context, "counts": view.counts, "seen": summary.seen,
            "next_seq": summary.next_seq, "runs": view.runs + 1, "recent": summary.recent,
            "reopened_from": view.closed_reason or "closed",
        }
    )  # fmt: skip


async def session_view(client: Client, flow: str, session_id: str) -> SessionView:
    """A session's status, queue, counts and context (closed sessions: as they ended)."""
    handle = client.get_workflow_handle(session_workflow_id(flow, session_id))
    try:
        description = await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise NotFoundError(f"no session {session_id!r} of flow {flow!r}") from None
        raise
    if description.status != WorkflowExecutionStatus.RUNNING:
        return (await closed_summary(client, handle.id)).view
    view: SessionView = await handle.query(SESSION_QUERY, result_type=SessionView)
    return view


async def close_session(client: Client, flow: str, session_id: str, by: str) -> SessionView:
    """Ask a session to finish its queued events and end, keeping its context."""
    handle = client.get_workflow_handle(session_workflow_id(flow, session_id))
    view: SessionView = await handle.execute_update(CLOSE_UPDATE, by, result_type=SessionView)
    return view


async def close_if_running(
    client: Client, flow: str, session_id: str, by: str, timeout: float = 20.0
) -> SessionView | None:
    """``close_session`` of a running session, answered by a worker within ``timeout``
    seconds (NoWorkerError otherwise); None when the session is closed already, NotFoundError
    when there is no such session. What ``agentflow session close`` and the web API call."""
    workflow_id = session_workflow_id(flow, session_id)
    try:
        description = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise NotFoundError(f"no session {session_id!r} of flow {flow!r}") from None
        raise
    if description.status != WorkflowExecutionStatus.RUNNING:
        return None
    queue, what = description.task_queue, f"close session {session_id!r}"
    await visibility.require_workers(client, queue, what)
    closing = close_session(client, flow, session_id, by)
    return await visibility.worker_answer(closing, queue, what, timeout)


def redrive_id(event_id: str) -> str:
    """The id a dead letter's event is emitted again with: ``x`` → ``x.r1`` → ``x.r2``."""
    match = re.fullmatch(r"(.*)\.r(\d+)", event_id)
    if match:
        return f"{match.group(1)}.r{int(match.group(2)) + 1}"
    return f"{event_id}.r1"
